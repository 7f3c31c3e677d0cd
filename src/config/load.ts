import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { type Document, isMap, LineCounter, parseDocument, parse as parseYaml } from "yaml";
import { z } from "zod";
import type { SyslogSettings } from "../engine/log-sinks.ts";
import { didYouMean } from "../engine/suggest.ts";
import type { Hooks } from "../hooks/hooks.ts";
import type { PluginDefinition } from "../kit/contracts.ts";
import { plainErrno } from "../kit/errno.ts";
import { ConfigError, type ConfigProblem } from "../kit/errors.ts";
import { type LoadedPlugin, loadPlugins, pluginSpecs } from "../plugins/load.ts";
import { createRegistry, type Registry } from "../registry.ts";
import { interpolate } from "./interpolate.ts";
import {
  buildRootSchema,
  type DaemonSettings,
  type JobConfig,
  type PluginOptions,
  type RootConfig,
} from "./schema.ts";

export interface Config {
  /** Absolute path of the file it came from, when it came from one. */
  file: string | undefined;
  /** The text of that file as it was read. */
  text?: string;
  /** Relative paths in the config are relative to this folder. */
  baseDir: string;
  stateDir: string;
  /** Absolute path of the Prometheus textfile to update after backups, if any. */
  metricsFile?: string;
  /** Log destinations besides stderr (file: absolute). */
  log: { file?: string; syslog?: SyslogSettings };
  daemon: DaemonSettings;
  jobs: Record<string, JobConfig>;
  /** Hooks around every job. */
  hooks?: Hooks;
  /** Named notifiers (their common options `on`, `enabled`, `jobs` included). */
  notifications: Record<string, PluginOptions>;
  /** Every secret value in the config (declared secret options, `${file:…}` values): never printed. */
  secrets: string[];
  registry: Registry;
  /** The plugins loaded for it (loadConfigAsync), each with its options from the config. */
  plugins?: LoadedPlugin[];
  /** `plugins:` entries' options, by plugin name. */
  pluginOptions?: Record<string, Record<string, unknown>>;
  /** What the operator should fix though it works (e.g. an inline secret in a file others can read). */
  warnings?: string[];
}

export interface LoadConfigOptions {
  /** Path of the config file; default `$CAIRN_CONFIG`, then `./cairn.yaml`. */
  file?: string;
  /** The file's text, already read (e.g. the version `cairn daemon` validated); `file` still names it. */
  text?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  registry?: Registry;
}

/** The config files looked for in the current folder when neither -c nor $CAIRN_CONFIG names one. */
export const DEFAULT_NAMES = ["cairn.yaml", "cairn.yml", "cairn.json"];

function findConfigFile(options: LoadConfigOptions, env: NodeJS.ProcessEnv, cwd: string): string {
  const explicit = options.file ?? env.CAIRN_CONFIG;
  if (explicit) return resolve(cwd, explicit);
  for (const candidate of DEFAULT_NAMES) {
    const path = join(cwd, candidate);
    try {
      readFileSync(path);
      return path;
    } catch {}
  }
  throw new ConfigError(
    [{ path: "", message: `no configuration file: ${join(cwd, "cairn.yaml")} does not exist` }],
    { hint: "pass -c FILE or set CAIRN_CONFIG" },
  );
}

/**
 * loadConfig with the plugins the config's `plugins:` and $CAIRN_PLUGINS name loaded first, so
 * that their source, destination and notifier types validate; what the CLI uses.
 */
export async function loadConfigAsync(options: LoadConfigOptions = {}): Promise<Config> {
  if (options.registry) return loadConfig(options);
  const env = options.env ?? process.env;
  const file = findConfigFile(options, env, options.cwd ?? process.cwd());
  let raw: unknown;
  let text: string | undefined;
  try {
    text = options.text ?? readFileSync(file, "utf8");
    raw = parseYaml(text);
  } catch {
    return loadConfig(options); // it reports what is wrong with the file
  }
  const configured = (raw as { plugins?: unknown } | null)?.plugins;
  const names = (Array.isArray(configured) ? configured : []).map((entry) =>
    typeof entry === "object" && entry !== null ? (entry as { name?: unknown }).name : entry,
  );
  const specs = pluginSpecs(
    names.filter((s): s is string => typeof s === "string"),
    env,
  );
  // The file is read again: given no text, loadConfig also checks who may read it.
  if (specs.length === 0) return loadConfig(options);
  const loaded = await loadPlugins(specs, dirname(file));
  const config = loadConfig({ ...options, registry: registryWith(loaded) });
  // Each plugin's options as validated and expanded (${VAR}, ${file:…}) with the rest of the config.
  const plugins = loaded.map((plugin) => ({ ...plugin, options: config.pluginOptions?.[plugin.spec] ?? {} }));
  const secrets = plugins.flatMap((plugin) =>
    (plugin.module.secrets ?? [])
      .map((key) => plugin.options[key])
      .filter((v): v is string => typeof v === "string" && v !== ""),
  );
  return { ...config, plugins, secrets: [...config.secrets, ...secrets] };
}

/** The built-ins and the loaded plugins; a type two of them define is a ConfigError naming both. */
export function registryWith(loaded: LoadedPlugin[]): Registry {
  const registry = createRegistry();
  for (const plugin of loaded)
    for (const definition of plugin.module.plugins) {
      if (registry.has(definition))
        throw new ConfigError([
          {
            path: "plugins",
            message: `plugin ${plugin.spec}: its ${definition.kind} "${definition.type}" clashes with the one from ${registry.originOf(definition)}`,
          },
        ]);
      registry.register(definition, plugin.origin);
    }
  return registry;
}

/** Reads, interpolates and validates a config file, reporting every problem at once. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = findConfigFile(options, env, cwd);
  let text: string;
  try {
    text = options.text ?? readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError([
      {
        file,
        path: "",
        message: code === "ENOENT" ? "file does not exist" : `cannot read file: ${plainErrno(code)}`,
      },
    ]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        return {
          file,
          line: pos.line,
          column: pos.col,
          path: "",
          message: e.message.split("\n")[0] ?? e.message,
        };
      }),
    );
  }
  const locate = (path: (string | number | symbol)[]) => locateInDocument(doc, lineCounter, path);
  const config = configFromObject(doc.toJS(), { ...options, env, baseDir: dirname(file), file, locate });
  const exposed = options.text === undefined ? exposedSecrets(file, text, config) : undefined;
  const warnings = [...(config.warnings ?? []), ...(exposed ? [exposed] : [])];
  return { ...config, text, ...(warnings.length > 0 ? { warnings } : {}) };
}

function rawJobEncryption(input: unknown, job: string): unknown {
  return (input as { jobs?: Record<string, { encryption?: unknown }> }).jobs?.[job]?.encryption;
}

const unencryptedWarning = (job: string) =>
  `job ${job} stores its backups UNENCRYPTED: anyone who can read a destination can read them; add encryption: { age: { recipients: [age1…] } } (cairn keygen makes a key), or write encryption: none to say it is meant`;

/**
 * A warning when `file` can be read by every user of the host and holds a secret written inline
 * (not through `${VAR}` or `${file:…}`), as ssh and libpq warn about their key files.
 */
function exposedSecrets(file: string, text: string, config: Config): string | undefined {
  const mode = statSync(file).mode;
  if ((mode & 0o004) === 0) return undefined;
  const inline = config.secrets.filter((secret) => secret.length >= 4 && text.includes(secret));
  if (inline.length === 0) return undefined;
  return `${file} is readable by every user of this host (mode ${(mode & 0o777).toString(8)}) and holds ${inline.length} secret(s) inline: chmod 600 ${file}, or move them to \${file:…} or \${VAR}`;
}

/**
 * A file read through `${file:…}` that holds only public keys (age recipients, ssh public keys, a
 * cairn signing key) is no secret: redacting it would hide which recipient an error talks about.
 */
function isPublicKeys(text: string): boolean {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  return (
    lines.length > 0 &&
    lines.every((l) => /^(age1[0-9a-z]{58}|ssh-(ed25519|rsa) \S+.*|cairn-ed25519:\S+)$/.test(l))
  );
}

interface FromObjectOptions {
  env?: NodeJS.ProcessEnv;
  registry?: Registry;
  baseDir?: string;
  file?: string;
  locate?: (path: (string | number | symbol)[]) => { line: number; column: number } | undefined;
}

/** Validates a config given as an object (library use); same rules as a file. */
export function configFromObject(input: unknown, options: FromObjectOptions = {}): Config {
  const env = options.env ?? process.env;
  const registry = options.registry ?? createRegistry();
  const baseDir = resolve(options.baseDir ?? process.cwd());
  const problem = (path: (string | number | symbol)[], message: string): ConfigProblem => ({
    file: options.file,
    ...options.locate?.(path),
    path: path.map(String).join("."),
    message,
  });
  const expanded = interpolate(input ?? {}, env, baseDir);
  const problems = expanded.problems.map((p) => problem(p.path, p.message));
  const rootSchema = buildRootSchema(registry);
  const parsed = rootSchema.safeParse(expanded.value);
  if (!parsed.success) {
    // A value that failed to expand already has its problem; its schema complaint would only repeat it.
    const expandedBadly = new Set(expanded.problems.map((p) => p.path.join(".")));
    for (const found of issueProblems(rootSchema, expanded.value, parsed.error))
      if (!expandedBadly.has(found.path.map(String).join(".")))
        problems.push(problem(found.path, found.message));
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(uniqueProblems(problems));
  const root = parsed.data as RootConfig;
  const unencrypted = Object.keys(root.jobs).filter(
    (name) => rawJobEncryption(expanded.value, name) === undefined,
  );
  return {
    file: options.file,
    ...(unencrypted.length > 0 ? { warnings: unencrypted.map(unencryptedWarning) } : {}),
    baseDir,
    stateDir: resolveStateDir(root.state_dir, baseDir, env),
    ...(root.metrics_file ? { metricsFile: resolve(baseDir, root.metrics_file) } : {}),
    log: {
      ...(root.log?.file ? { file: resolve(baseDir, root.log.file) } : {}),
      ...(root.log?.syslog ? { syslog: root.log.syslog } : {}),
    },
    daemon: root.daemon,
    jobs: root.jobs,
    ...(root.hooks ? { hooks: root.hooks } : {}),
    notifications: root.notifications ?? {},
    pluginOptions: Object.fromEntries(
      (root.plugins ?? []).flatMap((entry) =>
        typeof entry === "string" ? [] : [[entry.name, entry.options ?? {}]],
      ),
    ),
    secrets: [...collectSecrets(root, registry), ...expanded.fileValues.filter((v) => !isPublicKeys(v))],
    registry,
  };
}

/**
 * zod's complaints about `value` as cairn words them: each at its path, an unknown key with the
 * known one it most resembles, a wrong value saying what was written and what is expected.
 */
function issueProblems(
  schema: z.ZodType,
  value: unknown,
  error: z.ZodError,
): { path: PropertyKey[]; message: string }[] {
  const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  return error.issues.flatMap(unionBranch).flatMap((issue) => {
    const keys = (issue as { keys?: string[] }).keys;
    if (issue.code === "invalid_key")
      return [{ path: issue.path, message: `invalid name: ${issue.issues[0]?.message ?? issue.message}` }];
    if (issue.code === "unrecognized_keys" && keys) {
      const known = knownKeys(json, value, issue.path);
      return keys.map((key) => ({
        path: [...issue.path, key],
        message: `unknown key "${key}"${didYouMean(key, known)}`,
      }));
    }
    return [{ path: issue.path, message: friendlyMessage(issue, valueAt(value, issue.path)) }];
  });
}

/** `value` parsed by `schema`, or a ConfigError with every problem, its paths under `at`. */
export function parseOptions<S extends z.ZodType>(schema: S, value: unknown, at: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ConfigError(
    uniqueProblems(
      issueProblems(schema, value, parsed.error).map((p) => ({
        path: [at, ...p.path.map(String)].join("."),
        message: p.message,
      })),
    ),
  );
}

/**
 * A union every branch refused (`encryption: none | { age: … }`): the complaints of the branch
 * that got furthest, where the input has the branch's shape, instead of zod's "Invalid input".
 */
function unionBranch(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== "invalid_union" || !("errors" in issue) || issue.errors.length === 0) return [issue];
  const branches = issue.errors.filter(
    (errors) =>
      errors.length > 0 &&
      !errors.some((e) => e.path.length === 0 && ["invalid_type", "invalid_value"].includes(e.code)),
  );
  const best = branches.sort((a, b) => a.length - b.length)[0];
  if (!best) return [issue];
  return best
    .map((e) => ({ ...e, path: [...issue.path, ...e.path] }) as z.core.$ZodIssue)
    .flatMap(unionBranch);
}

/** The same complaint about the same key once (a union's branches repeat theirs). */
function uniqueProblems(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.file}:${p.line}:${p.path}:${p.message}`;
    return !seen.has(key) && Boolean(seen.add(key));
  });
}

function typeName(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "a mapping" : JSON.stringify(value);
}

const A_TYPE: Record<string, string> = {
  number: "a number",
  int: "a whole number",
  string: "text",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
};

/** The value the user wrote at a path (zod's issue may hold a preprocessed one). */
function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let at = input;
  for (const key of path)
    at = at !== null && typeof at === "object" ? (at as Record<PropertyKey, unknown>)[key] : undefined;
  return at;
}

interface JsonSchema {
  properties?: Record<string, JsonSchema>;
  additionalProperties?: JsonSchema | boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  const?: unknown;
}

/** The keys the schema allows at a path of the input, for "did you mean". */
function knownKeys(schema: JsonSchema, input: unknown, path: PropertyKey[]): string[] {
  const branches = (s: JsonSchema): JsonSchema[] => {
    const options = [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])];
    return options.length > 0 ? [s, ...options.flatMap(branches)] : [s];
  };
  let level = [schema];
  let value = input;
  for (const key of path) {
    const type = (value as { type?: unknown } | undefined)?.type;
    level = level
      .flatMap(branches)
      .filter(
        (s) =>
          type === undefined || s.properties?.type?.const === undefined || s.properties.type.const === type,
      )
      .flatMap((s) => {
        const next =
          s.properties?.[String(key)] ??
          (typeof s.additionalProperties === "object" ? s.additionalProperties : undefined);
        return next ? [next] : [];
      });
    value = valueAt(value, [key]);
  }
  const type = (value as { type?: unknown } | undefined)?.type;
  return [
    ...new Set(
      level
        .flatMap(branches)
        .filter(
          (s) =>
            type === undefined || s.properties?.type?.const === undefined || s.properties.type.const === type,
        )
        .flatMap((s) => Object.keys(s.properties ?? {})),
    ),
  ];
}

/** zod's messages, said the way an operator reads them. */
function friendlyMessage(issue: z.core.$ZodIssue, written: unknown): string {
  switch (issue.code) {
    case "invalid_type": {
      const expected = A_TYPE[issue.expected] ?? issue.expected;
      return written === undefined
        ? `required: ${expected}`
        : `expected ${expected}, got ${typeName(written)}`;
    }
    case "too_small": {
      const min = Number(issue.minimum);
      if (issue.origin === "array") return `needs at least ${min} item${min === 1 ? "" : "s"}`;
      if (issue.origin === "string")
        return min === 1 ? "must not be empty" : `needs at least ${min} characters`;
      return `must be at least ${min}`;
    }
    case "too_big":
      return issue.origin === "array" ? `at most ${issue.maximum} items` : `must be at most ${issue.maximum}`;
    case "invalid_union": {
      const roots = ("errors" in issue ? issue.errors : []).flat().filter((e) => e.path.length === 0);
      const values = roots.flatMap((e) => (e.code === "invalid_value" ? e.values.map(String) : []));
      const types = roots.flatMap((e) =>
        e.code === "invalid_type" ? [A_TYPE[e.expected] ?? e.expected] : [],
      );
      const forms = [...values.map((v) => JSON.stringify(v)), ...new Set(types)];
      if (forms.length === 0) return issue.message;
      const mistyped = typeof written === "string" ? didYouMean(written, values) : "";
      return `expected ${forms.join(" or ")}, got ${typeName(written)}${mistyped}`;
    }
    case "invalid_value":
      return `must be one of ${issue.values.map((v: unknown) => JSON.stringify(v)).join(", ")}${
        typeof written === "string" ? didYouMean(written, issue.values.map(String)) : ""
      }`;
    default:
      return issue.message;
  }
}

function resolveStateDir(configured: string | undefined, baseDir: string, env: NodeJS.ProcessEnv): string {
  if (configured) return isAbsolute(configured) ? configured : resolve(baseDir, configured);
  if (env.CAIRN_STATE_DIR) return resolve(env.CAIRN_STATE_DIR);
  const xdg =
    env.XDG_STATE_HOME && isAbsolute(env.XDG_STATE_HOME)
      ? env.XDG_STATE_HOME
      : join(homedir(), ".local", "state");
  return join(xdg, "cairn");
}

function locateInDocument(doc: Document, lineCounter: LineCounter, path: (string | number | symbol)[]) {
  // The deepest node that exists: a missing key points at the object that lacks it.
  for (let depth = path.length; depth >= 0; depth--) {
    const keys = path.slice(0, depth).map((k) => (typeof k === "symbol" ? String(k) : k));
    const node = keys.length === 0 ? doc.contents : doc.getIn(keys, true);
    const keyNode = depth > 0 ? keyNodeOf(doc, keys) : undefined;
    const range = (keyNode ?? node) as { range?: [number, number, number] } | undefined;
    if (range?.range) {
      const pos = lineCounter.linePos(range.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return undefined;
}

function keyNodeOf(doc: Document, keys: (string | number)[]) {
  const parent = keys.length === 1 ? doc.contents : doc.getIn(keys.slice(0, -1), true);
  if (!isMap(parent)) return undefined;
  const last = keys[keys.length - 1];
  const pair = parent.items.find((item) => (item.key as { value?: unknown } | null)?.value === last);
  return pair?.key ?? undefined;
}

type PluginLookup = (
  kind: "source" | "storage" | "transform" | "notifier",
  type: string,
) => PluginDefinition | undefined;

function lookup(registry: Registry): PluginLookup {
  return (kind, type) =>
    kind === "source"
      ? registry.sources.get(type)
      : kind === "storage"
        ? registry.storages.get(type)
        : kind === "notifier"
          ? registry.notifiers.get(type)
          : registry.transforms.get(type);
}

function eachPluginOptions(
  root: Pick<RootConfig, "jobs" | "notifications">,
  visit: (options: PluginOptions, kind: "source" | "storage" | "transform" | "notifier") => void,
): void {
  for (const notifier of Object.values(root.notifications ?? {})) visit(notifier, "notifier");
  for (const job of Object.values(root.jobs)) {
    for (const source of Object.values(job.sources)) visit(source, "source");
    for (const destination of Object.values(job.destinations)) visit(destination, "storage");
    visit(job.compression, "transform");
    if (job.encryption) visit(job.encryption, "transform");
  }
}

function collectSecrets(root: RootConfig, registry: Registry): string[] {
  const find = lookup(registry);
  const secrets: string[] = [];
  eachPluginOptions(root, (options, kind) => {
    for (const key of find(kind, options.type)?.secrets ?? []) {
      const value = options[key];
      const values =
        typeof value === "string"
          ? [value]
          : Array.isArray(value)
            ? value
            : value && typeof value === "object"
              ? Object.values(value)
              : [];
      secrets.push(...values.filter((v): v is string => typeof v === "string"));
    }
  });
  return secrets;
}

/** The validated config as plain data, every secret replaced by `<redacted>` (for `config show`). */
export function redactedConfig(config: Config): {
  state_dir: string;
  jobs: Record<string, JobConfig>;
  notifications?: Record<string, PluginOptions>;
} {
  const find = lookup(config.registry);
  const jobs = structuredClone(config.jobs);
  const notifications = structuredClone(config.notifications);
  eachPluginOptions({ jobs, notifications }, (options, kind) => {
    for (const key of find(kind, options.type)?.secrets ?? [])
      if (options[key] !== undefined) options[key] = "<redacted>";
  });
  const fileSecrets = new Set(config.secrets);
  const scrub = (value: unknown): unknown => {
    if (typeof value === "string") return fileSecrets.has(value) ? "<redacted>" : value;
    if (Array.isArray(value)) return value.map(scrub);
    if (value && typeof value === "object")
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v)]));
    return value;
  };
  return {
    state_dir: config.stateDir,
    jobs: scrub(jobs) as Record<string, JobConfig>,
    ...(Object.keys(notifications).length
      ? { notifications: scrub(notifications) as Record<string, PluginOptions> }
      : {}),
  };
}
