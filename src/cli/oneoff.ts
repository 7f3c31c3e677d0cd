/**
 * One-off runs without a config (C4): `cairn backup postgres --db app mysql --db blog files
 * --path /var/www --to ./backups`. Source words start a segment; each segment's flags are that
 * source's options (kebab-case of the config keys), typed by the source's own schema. The result is
 * an ordinary config object, validated by the same schema as a config file.
 */
import { readFileSync } from "node:fs";
import type { z } from "zod";
import { UsageError } from "../kit/errors.ts";
import type { Registry } from "../registry.ts";

/** Shorter or familiar names for source types on the command line. */
export const SOURCE_ALIASES: Record<string, string> = {
  pg: "postgres",
  postgresql: "postgres",
  mariadb: "mysql",
  mongo: "mongodb",
  file: "files",
};

/** Flags that are spelled differently from the option they set. */
const FLAG_ALIASES: Record<string, string> = { db: "database", path: "paths" };

/** Flags commander reads for the whole program or for `backup` itself: never a source's option. */
const RUN_FLAGS_WITHOUT_VALUE = new Set([
  "-q",
  "--quiet",
  "-v",
  "--verbose",
  "--syslog",
  "--show-commands",
  "--confirm-commands",
  "--config-stdin",
  "--dry-run",
  "--force",
]);
const RUN_FLAGS_WITH_VALUE = new Set([
  "-c",
  "--config",
  "--log-format",
  "--log-file",
  "--metrics-file",
  "-n",
  "--notify",
  "--sentry-dsn",
]);

/** Options of the whole run, not of one source. */
export interface OneOffRun {
  job: string;
  sources: Record<string, Record<string, unknown>>;
  to: string[];
  stdout: boolean;
  /** With stdout: end the stream with a trailer `cairn upload - --trailer` checks. */
  trailer: boolean;
  compression: string | undefined;
  recipients: string[];
  passphraseFile: string | undefined;
  json: boolean;
}

export function sourceType(word: string, registry: Registry): string | undefined {
  const type = SOURCE_ALIASES[word] ?? word;
  return registry.sources.has(type) ? type : undefined;
}

/** The zod type under optional/default/prefault wrappers: "array", "number", "boolean", "string", "union" … */
function baseType(schema: z.ZodType | undefined): string | undefined {
  let current = schema as unknown as { _zod: { def: { type: string; innerType?: unknown } } } | undefined;
  while (current && ["optional", "default", "prefault", "nullable"].includes(current._zod.def.type))
    current = current._zod.def.innerType as typeof current;
  return current?._zod.def.type;
}

function takeValue(args: string[], i: number, flag: string): string {
  const value = args[i + 1];
  if (value === undefined || value.startsWith("--")) throw new UsageError(`${flag} needs a value`);
  return value;
}

export function parseOneOff(args: string[], registry: Registry): OneOffRun {
  const run: OneOffRun = {
    job: "",
    sources: {},
    to: [],
    stdout: false,
    trailer: false,
    compression: undefined,
    recipients: [],
    passphraseFile: undefined,
    json: false,
  };
  let current: { type: string; options: Record<string, unknown>; dbs: string[] } | undefined;
  const segments: (typeof current & {})[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-")) {
      const type = sourceType(arg, registry);
      if (!type)
        throw new UsageError(`"${arg}" is not a source type`, {
          hint: `source types: ${[...registry.sources.keys()].join(", ")}`,
        });
      current = { type, options: { type }, dbs: [] };
      segments.push(current);
      continue;
    }
    const [flag, inline] = arg.includes("=")
      ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)]
      : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = takeValue(args, i, flag);
      i++;
      return v;
    };
    if (RUN_FLAGS_WITHOUT_VALUE.has(flag)) continue;
    if (RUN_FLAGS_WITH_VALUE.has(flag)) {
      value();
      continue;
    }
    switch (flag) {
      case "--to":
        run.to.push(value());
        continue;
      case "--stdout":
        run.stdout = true;
        continue;
      case "--trailer":
        run.trailer = true;
        continue;
      case "--json":
        run.json = true;
        continue;
      case "--name":
        run.job = value();
        continue;
      case "--compression":
        run.compression = value();
        continue;
      case "-r":
      case "--recipient":
        run.recipients.push(value());
        continue;
      case "--passphrase-file":
        run.passphraseFile = value();
        continue;
    }
    if (!current)
      throw new UsageError(
        `${flag} comes before any source: write the source type first, e.g. postgres ${flag} …`,
      );
    const definition = registry.sources.get(current.type)!;
    let key = flag.replace(/^--/, "").replace(/-/g, "_");
    const shape = definition.schema.shape as Record<string, z.ZodType>;
    if (!(key in shape)) key = FLAG_ALIASES[key] ?? key;
    const fromFile = key.endsWith("_file") && definition.secrets?.includes(key.slice(0, -5));
    if (fromFile) key = key.slice(0, -5);
    if (!(key in shape))
      throw new UsageError(`${current.type} has no option ${flag}`, {
        hint: `its options: ${Object.keys(shape)
          .map((k) => `--${k.replace(/_/g, "-")}`)
          .join(" ")} (see docs/reference.md)`,
      });
    const kind = baseType(shape[key]);
    if (kind === "boolean") {
      current.options[key] = inline === undefined ? true : inline !== "false";
      continue;
    }
    let text = value();
    if (fromFile) text = readSecretFile(text, flag);
    else if (definition.secrets?.includes(key) && !credentialFree(text))
      throw new UsageError(
        `a secret on the command line (${flag}) is visible to every user of this machine`,
        {
          hint: `put it in a file and pass --${key.replace(/_/g, "-")}-file FILE`,
        },
      );
    if (key === "database" && "databases" in shape) current.dbs.push(text);
    else if (kind === "record")
      current.options[key] = { ...(current.options[key] as object), ...keyValue(text, flag) };
    else if (kind === "union" && key in current.options)
      // `--command tar --command -c`: a repeated flag whose option also takes a list gives the list.
      current.options[key] = [...[current.options[key]].flat(), text];
    else if (kind === "array") current.options[key] = [...((current.options[key] as unknown[]) ?? []), text];
    else if (kind === "number") current.options[key] = Number(text);
    else current.options[key] = text;
  }
  if (segments.length === 0)
    throw new UsageError("name a source type, e.g. cairn backup postgres --db app --to ./backups");
  const counts = new Map<string, number>();
  for (const segment of segments) {
    if (segment.dbs.length === 1 && segment.dbs[0] !== "all") segment.options.database = segment.dbs[0];
    else if (segment.dbs.length === 1) segment.options.databases = "all";
    else if (segment.dbs.length > 1) segment.options.databases = segment.dbs;
    const n = (counts.get(segment.type) ?? 0) + 1;
    counts.set(segment.type, n);
    run.sources[n === 1 ? segment.type : `${segment.type}-${n}`] = segment.options;
  }
  run.job ||= [...new Set(segments.map((s) => s.type))].join("-");
  if (run.stdout && run.to.length > 0) throw new UsageError("choose --stdout or --to, not both");
  if (run.trailer && !run.stdout) throw new UsageError("--trailer goes with --stdout");
  if (!run.stdout && run.to.length === 0)
    throw new UsageError("say where the backup goes: --to DIR (repeatable) or --stdout");
  return run;
}

function keyValue(text: string, flag: string): Record<string, string> {
  const at = text.indexOf("=");
  if (at <= 0) throw new UsageError(`${flag} takes NAME=VALUE, e.g. ${flag} TZ=UTC`);
  return { [text.slice(0, at)]: text.slice(at + 1) };
}

/** A value that names no credentials (e.g. a URI without a password) may stay on the command line. */
function credentialFree(value: string): boolean {
  try {
    return new URL(value).password === "";
  } catch {
    return false;
  }
}

function readSecretFile(path: string, flag: string): string {
  try {
    return readFileSync(path, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code}`);
  }
}

/** Query parameters as options: `true`/`false` and numbers typed, everything else a string. */
function queryOptions(url: URL): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const [key, value] of url.searchParams)
    options[key] =
      value === "true" ? true : value === "false" ? false : /^\d+$/.test(value) ? Number(value) : value;
  return options;
}

/**
 * A folder on the command line; `./b/%Y/%m/%d` or `/srv/{job}`: the part from the first segment
 * with a field on is the template (a folder named `%Y` is never what was meant).
 */
function localFolder(spec: string): Record<string, unknown> {
  const segments = spec.split("/");
  const first = segments.findIndex((s) => /%[a-zA-Z]|\{(job|hostname)\}/.test(s));
  if (first < 0) return { type: "local", path: spec };
  return {
    type: "local",
    path: segments.slice(0, first).join("/") || (spec.startsWith("/") ? "/" : "."),
    template: segments.slice(first).join("/"),
  };
}

/** A destination written on the command line: a folder, or a URL of a storage that reads URLs. */
export function destinationFromSpec(spec: string, registry: Registry): Record<string, unknown> {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) return localFolder(spec);
  const url = new URL(spec);
  if (url.password)
    throw new UsageError("a password in a URL on the command line is visible to every user of this machine", {
      hint: "use a key, or configure the destination in cairn.yaml with the password from ${file:…}",
    });
  const scheme = url.protocol.slice(0, -1);
  // ftp:// uses explicit TLS too unless ?tls=none; ftps:// says so outright. webdavs:// is https.
  const type =
    ({ ftps: "ftp", webdavs: "webdav", https: "http", "rsync+ssh": "rsync" } as Record<string, string>)[
      scheme
    ] ?? scheme;
  if (type === "file") return { ...localFolder(decodeURIComponent(url.pathname)), ...queryOptions(url) };
  const definition = registry.storages.get(type);
  if (!definition?.fromUrl)
    throw new UsageError(`no destination type for ${type}:// URLs`, {
      hint: `URL types: file, ${[...registry.storages.values()]
        .filter((d) => d.fromUrl)
        .map((d) => d.type)
        .join(", ")}; or configure the destination in cairn.yaml`,
    });
  return { type, ...definition.fromUrl(url), ...queryOptions(url) };
}

/** The config object for the run, as if written in cairn.yaml. */
export function oneOffConfig(run: OneOffRun, registry: Registry): Record<string, unknown> {
  const encryption = run.recipients.length
    ? { age: { recipients: run.recipients } }
    : run.passphraseFile
      ? { age: { passphrase: readSecretFile(run.passphraseFile, "--passphrase-file") } }
      : undefined;
  const destinations = Object.fromEntries(
    run.to.map((spec, i) => [
      run.to.length === 1 ? "to" : `to-${i + 1}`,
      destinationFromSpec(spec, registry),
    ]),
  );
  return {
    jobs: {
      [run.job]: {
        sources: run.sources,
        compression: run.compression ?? (run.stdout ? "none" : "zstd"),
        ...(encryption ? { encryption } : {}),
        destinations: run.stdout ? { stdout: { type: "local", path: "." } } : destinations,
      },
    },
  };
}
