/**
 * The plugin module contract (plugin API version 1): what a package or file named in `plugins:`
 * exports. Published as part of `@cairn-backup/cairn/plugin`.
 */
import type { CairnEvents } from "../events/events.ts";
import type { Logger, PluginDefinition } from "../kit/contracts.ts";

/** The plugin API this cairn offers; a plugin built for another major version is refused. */
export const PLUGIN_API_VERSION = 1;

export interface PluginModule {
  apiVersion: number;
  plugins: readonly PluginDefinition[];
  /** Keys of its `options` (in the config's `plugins:` entry) whose values are secrets: never logged or printed. */
  secrets?: readonly string[];
  /** Called before a command uses the config: the logger, the events, its `options` from the config. */
  activate?(ctx: PluginActivation): void | Promise<void>;
  /** Called when the command ends, whatever happened. */
  deactivate?(): void | Promise<void>;
}

export interface PluginActivation {
  logger: Logger;
  events: CairnEvents;
  options: Record<string, unknown>;
}

export const definePlugin = (plugin: PluginModule): PluginModule => plugin;

/**
 * What a plugin module exports: the plugin, or a function that receives cairn's plugin kit (the
 * `@cairn-backup/cairn/plugin` module: define* helpers, zod as `z`, the errors, the helpers) and returns it. The function form needs no import of
 * cairn, so the same file works with the npm package and the single executable, and its schemas
 * are made by cairn's own zod.
 */
export type PluginExport = PluginModule | ((cairn: typeof import("../plugin.ts")) => PluginModule);
