import type { Duplex, Readable } from "node:stream";
import type { z } from "zod";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Handed to every plugin call. `signal` is the one way to cancel. */
export interface PluginContext {
  signal: AbortSignal;
  logger: Logger;
  /** A private folder for the duration of the call, removed afterwards (0700). */
  workDir: string;
}

/** Where a plugin's options came from: lets a plugin resolve relative paths like the user expects. */
export interface PluginEnvironment {
  /** The name the user gave this source or destination in the config. */
  name: string;
  /** Folder of the config file; relative paths in options are relative to it. */
  baseDir: string;
}

// ── Sources ────────────────────────────────────────────────────────────────

/** One named byte stream produced by a source. It must error (never end) when the producer failed. */
export interface Artifact {
  /** File name of the raw artifact, e.g. `db.pgdump`, `uploads.tar`. */
  name: string;
  stream: Readable;
  /** Facts worth keeping in the manifest (server version, format, counts). Never secrets. */
  meta: Record<string, unknown>;
  /** An empty stream is an error unless the source says empty is fine. */
  allowEmpty?: boolean;
  /**
   * Set when `stream` is the raw stdout of a program (see `spawnProducer`): the artifact is good
   * only once this resolves, and a transform that runs a program may read the stream's pipe
   * directly (`Transform.encodeFrom`), so the bytes never pass through Node.
   */
  completion?: Promise<unknown>;
  /** The artifact's size when the pipeline could not count it itself; read after `completion`. */
  rawSize?: () => number | undefined;
}

export interface RestoreTarget {
  dir?: string;
  database?: string;
  /** Restore into an existing database that holds data (its rows merge with the dump's). */
  force?: boolean;
}

export interface Source {
  backup(ctx: PluginContext): AsyncIterable<Artifact>;
  /**
   * `cairn doctor`: connects and checks what a backup needs (the server answers, the data can be
   * read, a client fits the server's version) without dumping; returns a one-line summary or throws
   * a CairnError that says what to fix.
   */
  check?(ctx: PluginContext): Promise<string>;
  /**
   * Restores one artifact from its decoded stream. The stream errors if any check fails; the source
   * must then leave the target as it was.
   */
  restore?(
    artifact: ArtifactRecord,
    stream: Readable,
    target: RestoreTarget,
    ctx: PluginContext,
  ): Promise<string>;
  /** Reads a decoded artifact and checks that its own tools understand it; returns a short summary. */
  verify?(artifact: ArtifactRecord, stream: Readable, ctx: PluginContext): Promise<string>;
  /** The shell commands that restore the decoded artifact (read from stdin) without cairn. */
  restoreCommand?(artifact: ArtifactRecord): RestoreCommand;
}

export interface RestoreCommand {
  /** Run first, on its own (e.g. `createdb NEWDB`). */
  prepare?: string;
  /** The last stage of the pipeline, reading the decoded artifact on stdin. */
  consume: string;
}

// ── Storages ───────────────────────────────────────────────────────────────

export interface ObjectInfo {
  key: string;
  size: number;
  modified?: Date;
}

export interface StorageCapabilities {
  /** A put that fails never leaves a visible object at the key. */
  atomicPut: boolean;
  maxConcurrency: number;
  /**
   * The service bills an object for at least this many days (archive and infrequent-access
   * classes, some providers): deleting it sooner costs as much as keeping it.
   */
  minimumStorageDays?: number;
}

export interface Storage {
  readonly capabilities: StorageCapabilities;
  /** Human description of the location, without secrets (e.g. `/srv/backups`, `s3://bucket/prefix`). */
  readonly location: string;
  /** Stores the stream under `key`; the object is visible only once whole. Never overwrites. */
  put(key: string, body: Readable, ctx: PluginContext): Promise<ObjectInfo>;
  /** Throws NotFoundError when absent. */
  get(key: string, ctx: PluginContext): Promise<Readable>;
  stat(key: string, ctx: PluginContext): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, recursively, in no particular order. */
  list(prefix: string, ctx: PluginContext): AsyncIterable<ObjectInfo>;
  /**
   * Optional: temporary objects of puts that never finished (a run killed mid-upload), which
   * `list` hides, so prune can remove the old ones with `delete`.
   */
  listTemporary?(prefix: string, ctx: PluginContext): AsyncIterable<ObjectInfo>;
  /** Idempotent: deleting a missing key is not an error. */
  delete(key: string, ctx: PluginContext): Promise<void>;
  close?(): Promise<void>;
  /**
   * Optional: the shell command that would do this write by hand, the object's bytes on stdin
   * (`aws s3 cp - URL`, `rm -f -- PATH`), shown by --show-commands and --confirm-commands.
   */
  handCommand?(key: string, op: WriteOp): string;
}

export type WriteOp = "put" | "delete";

// ── Transforms ─────────────────────────────────────────────────────────────

/** What the manifest records about a transform: enough to undo it later without the config. */
export interface TransformRecord {
  type: string;
  [key: string]: unknown;
}

/** Keys a decoder may need; only encryption uses them. */
export interface DecodeKeys {
  /** age identities (`AGE-SECRET-KEY-1…`) */
  identities: string[];
  passphrase?: string;
}

export interface Transform {
  readonly record: TransformRecord;
  /** Appended to object names, e.g. `.zst`, `.age`; empty for none. */
  readonly extension: string;
  encode(ctx: PluginContext): Duplex;
  /**
   * Optional: encode a program's stdout by handing its pipe to another program (no copy through
   * Node). Returns that program's own stdout, unread, and its completion, so chains can form.
   */
  encodeFrom?(input: Readable, ctx: PluginContext): ProcessOutput;
}

/** A program's stdout, not read yet, and the promise of its exit status (rejects on failure). */
export interface ProcessOutput {
  stdout: Readable;
  completion: Promise<unknown>;
}

// ── Plugin definitions ─────────────────────────────────────────────────────

export type Schema = z.ZodObject;

interface PluginDefinitionBase<S extends Schema> {
  type: string;
  /** One line for `cairn plugins` and the docs. */
  description: string;
  schema: S;
  /** Option keys whose values are secrets: redacted in `config show`, never logged. */
  secrets?: readonly string[];
}

/** A program a source runs, for `cairn doctor`: found on PATH under one of its names, or how to install it. */
export interface SourceTool {
  names: readonly string[];
  purpose: string;
  install: string;
  /** How it tells its version, when not with `--version`. */
  versionArgs?: readonly string[];
}

export interface SourceDefinition<S extends Schema = Schema> extends PluginDefinitionBase<S> {
  kind: "source";
  tools?: readonly SourceTool[];
  create(options: z.output<S>, env: PluginEnvironment): Source;
}

export interface StorageDefinition<S extends Schema = Schema> extends PluginDefinitionBase<S> {
  kind: "storage";
  create(options: z.output<S>, env: PluginEnvironment): Storage | Promise<Storage>;
  /**
   * Options from a URL written on the command line (`s3://bucket/prefix`, `sftp://user@host/path`);
   * query parameters are further options. The result is validated by `schema` like a config.
   */
  fromUrl?(url: URL): Record<string, unknown>;
}

export interface TransformDefinition<S extends Schema = Schema> extends PluginDefinitionBase<S> {
  kind: "transform";
  role: "compression" | "encryption";
  create(options: z.output<S>, env: PluginEnvironment): Transform;
  decode(record: TransformRecord, keys: DecodeKeys): Duplex;
  /** The shell pipeline stage that undoes it, e.g. `zstd -d`. */
  shellDecode(record: TransformRecord): string;
}

// ── Notifiers ──────────────────────────────────────────────────────────────

/** What a notifier is told about a job's run. */
export interface RunEvent {
  /** `start`: the job is about to run (for heartbeat services); then `success` or `failure`. */
  kind: "start" | "success" | "failure";
  job: string;
  /** The run's session id, as in its log lines, hooks and events. */
  session?: string;
  snapshot: string;
  host: string;
  startedAt: string;
  durationMs: number;
  rawBytes: number;
  storedBytes: number;
  /** Destinations that hold the snapshot. */
  destinations: string[];
  error?: { message: string; hint?: string; stderr?: string };
}

export interface Notifier {
  send(event: RunEvent, ctx: PluginContext): Promise<void>;
}

export interface NotifierDefinition<S extends Schema = Schema> extends PluginDefinitionBase<S> {
  kind: "notifier";
  /**
   * A heartbeat service (healthchecks): it hears every start and every end whatever `on` says,
   * and a run skipped as not due as a success, so that the service notices when pings stop.
   */
  heartbeat?: boolean;
  /**
   * Options the environment gives (Sentry's $SENTRY_DSN): they fill what a configured notifier of
   * this type leaves out, and make one (on failure) when the config has none.
   */
  fromEnvironment?(env: Record<string, string | undefined>): Record<string, unknown> | undefined;
  create(options: z.output<S>, env: PluginEnvironment): Notifier;
}

export type PluginDefinition =
  | SourceDefinition
  | StorageDefinition
  | TransformDefinition
  | NotifierDefinition;

// The define* helpers keep the literal `type` and the schema's type, so that configs can be typed
// from the definitions (config/typed.ts: a typo in a config object fails to compile).
export const defineSource = <const T extends string, S extends Schema>(
  d: Omit<SourceDefinition<S>, "kind" | "type"> & { type: T },
): SourceDefinition<S> & { type: T } => ({ kind: "source", ...d });
export const defineStorage = <const T extends string, S extends Schema>(
  d: Omit<StorageDefinition<S>, "kind" | "type"> & { type: T },
): StorageDefinition<S> & { type: T } => ({ kind: "storage", ...d });
export const defineNotifier = <const T extends string, S extends Schema>(
  d: Omit<NotifierDefinition<S>, "kind" | "type"> & { type: T },
): NotifierDefinition<S> & { type: T } => ({ kind: "notifier", ...d });
export const defineTransform = <
  const T extends string,
  S extends Schema,
  const R extends TransformDefinition["role"],
>(
  d: Omit<TransformDefinition<S>, "kind" | "type" | "role"> & { type: T; role: R },
): TransformDefinition<S> & { type: T; role: R } => ({ kind: "transform", ...d });

// ── Snapshot format ────────────────────────────────────────────────────────

export const MANIFEST_FORMAT = "cairn-snapshot/1";
export const MANIFEST_NAME = "manifest.json";

export interface ObjectRecord {
  /** Key relative to the snapshot folder. */
  key: string;
  size: number;
  sha256: string;
}

export interface ArtifactRecord {
  /** Name of the source in the config. */
  source: string;
  /** Source plugin type (`postgres`, `files` …). */
  type: string;
  name: string;
  meta: Record<string, unknown>;
  /** Bytes the source produced, before compression and encryption. */
  rawSize: number;
  /** In the order they were applied; undo them in reverse. */
  transforms: TransformRecord[];
  /** The stored objects; several when split, concatenated in this order. */
  objects: ObjectRecord[];
  /** A plain shell pipeline that restores this artifact without cairn. */
  restoreWithoutCairn: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  tool: { name: "cairn"; version: string };
  job: string;
  id: string;
  host: string;
  startedAt: string;
  finishedAt: string;
  tags: string[];
  /** `partial`: some sources failed (see `failures`); the artifacts listed are good. Absent means complete. */
  status?: "complete" | "partial";
  failures?: { source: string; message: string }[];
  artifacts: ArtifactRecord[];
}
