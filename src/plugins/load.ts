/**
 * Plugins from packages and files, named by the config's `plugins:` and $CAIRN_PLUGINS: each module
 * exports (default) a `definePlugin({ apiVersion, plugins })`, whose definitions join the built-ins
 * in the one registry. Every failure is a ConfigError that names the plugin.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { isSea } from "node:sea";
import { pathToFileURL } from "node:url";
import { events } from "../events/events.ts";
import type { Logger } from "../kit/contracts.ts";
import { ConfigError } from "../kit/errors.ts";
import { PLUGIN_API_VERSION, type PluginModule } from "./module.ts";

export interface LoadedPlugin {
  spec: string;
  /** Its `options` from the config's `plugins:` entry (`{ name, options }`), expanded. */
  options?: Record<string, unknown>;
  /** Where it came from: `package@version` or the file's path. */
  origin: string;
  module: PluginModule;
}

/** `plugins:` of the config, then $CAIRN_PLUGINS (comma-separated), each once. */
export function pluginSpecs(configured: readonly string[] | undefined, env: NodeJS.ProcessEnv): string[] {
  const fromEnv = (env.CAIRN_PLUGINS ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return [...new Set([...(configured ?? []), ...fromEnv])];
}

const isFile = (spec: string) => spec.startsWith(".") || isAbsolute(spec);

/** Folders a package is looked up in: the config's folder upwards, then the global installs. */
function searchRoots(baseDir: string): string[] {
  const globalRoot = join(dirname(dirname(process.execPath)), "lib", "node_modules");
  const nodePath = (process.env.NODE_PATH ?? "").split(":").filter(Boolean);
  return [baseDir, ...nodePath, globalRoot];
}

function packageVersion(entry: string, name: string): string {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version?: string };
    if (pkg.name === name) return pkg.version ?? "?";
  }
  return "?";
}

function resolveSpec(spec: string, baseDir: string): { path: string; origin: string } {
  if (isFile(spec)) {
    const path = resolve(baseDir, spec);
    if (!existsSync(path)) throw problem(spec, `file ${path} does not exist`);
    return { path, origin: path };
  }
  try {
    const path = createRequire(join(baseDir, "cairn.yaml")).resolve(spec, { paths: searchRoots(baseDir) });
    return { path, origin: `${spec}@${packageVersion(path, spec)}` };
  } catch {
    throw problem(
      spec,
      `package not found (looked in ${searchRoots(baseDir).join(", ")}): npm install ${spec} beside the config, or -g`,
    );
  }
}

function problem(spec: string, message: string): ConfigError {
  return new ConfigError([{ path: "plugins", message: `plugin ${spec}: ${message}` }]);
}

async function importModule(path: string): Promise<unknown> {
  // A single executable has no module loader for files; Node's require loads ES modules too.
  if (isSea()) return createRequire(process.execPath)(path);
  return import(pathToFileURL(path).href);
}

async function check(spec: string, loaded: unknown): Promise<PluginModule> {
  let exported = (loaded as { default?: unknown }).default ?? loaded;
  if (typeof exported === "function") {
    try {
      exported = (exported as (cairn: unknown) => unknown)(await import("../plugin.ts"));
    } catch (error) {
      throw problem(spec, `its plugin function failed: ${(error as Error).message}`);
    }
  }
  const module = exported as Partial<PluginModule> | undefined;
  if (!module || typeof module !== "object" || !Array.isArray(module.plugins))
    throw problem(spec, "exports no plugin: export default definePlugin({ apiVersion: 1, plugins: [...] })");
  if (module.apiVersion !== PLUGIN_API_VERSION)
    throw problem(
      spec,
      `built for plugin API ${String(module.apiVersion)}, and this cairn offers ${PLUGIN_API_VERSION}: use a version of the plugin made for it`,
    );
  for (const definition of module.plugins)
    if (
      !definition ||
      !["source", "storage", "transform", "notifier"].includes(definition.kind) ||
      !definition.type
    )
      throw problem(
        spec,
        "a plugin definition without kind and type: make it with defineSource, defineStorage, …",
      );
  return module as PluginModule;
}

export async function loadPlugins(specs: readonly string[], baseDir: string): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  for (const spec of specs) {
    const { path, origin } = resolveSpec(spec, baseDir);
    let module: unknown;
    try {
      module = await importModule(path);
    } catch (error) {
      throw problem(spec, `failed to load: ${(error as Error).message.split("\n")[0]}`);
    }
    loaded.push({ spec, origin, module: await check(spec, module) });
  }
  return loaded;
}

/**
 * Activates every plugin of the config, in order; returns what deactivates them (in reverse). A
 * plugin that fails to activate is a ConfigError naming it; the ones before it are deactivated.
 */
export async function activatePlugins(
  plugins: readonly LoadedPlugin[],
  logger: Logger,
): Promise<() => Promise<void>> {
  const active: LoadedPlugin[] = [];
  const deactivate = async () => {
    for (const plugin of active.splice(0).reverse())
      try {
        await plugin.module.deactivate?.();
      } catch (error) {
        logger.warn(`plugin ${plugin.spec}: deactivate failed`, { error: (error as Error).message });
      }
  };
  for (const plugin of plugins) {
    try {
      await plugin.module.activate?.({
        logger: logger.child({ plugin: plugin.spec }),
        events,
        options: plugin.options ?? {},
      });
    } catch (error) {
      await deactivate();
      throw problem(plugin.spec, `activate failed: ${(error as Error).message}`);
    }
    active.push(plugin);
  }
  return deactivate;
}
