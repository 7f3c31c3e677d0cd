import { createWriteStream, readFileSync } from "node:fs";
import { mkdir, readdir, rename, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { type Duplex, pipeline, Readable } from "node:stream";
import { finished, pipeline as pipe } from "node:stream/promises";
import { parseIdentityFile } from "../age/index.ts";
import type { Config } from "../config/load.ts";
import { events, newSession } from "../events/events.ts";
import type {
  ArtifactRecord,
  DecodeKeys,
  Manifest,
  PluginContext,
  RestoreTarget,
  Source,
  Storage,
} from "../kit/contracts.ts";
import { CairnError, DecryptError, IntegrityError, RestoreError, UsageError } from "../kit/errors.ts";
import { silentLogger } from "../kit/logger.ts";
import { HoldBackLast, ObjectVerifier, through } from "../kit/streams.ts";
import type { RunOptions } from "./context.ts";
import { refuseOpenKeyFile } from "./key-files.ts";
import { type SnapshotSummary, summarize, withSnapshot } from "./list.ts";
import { createSource, planOf } from "./plan.ts";
import { type Progress, safely } from "./progress.ts";
import { requireProtected } from "./signing.ts";

export interface KeyOptions {
  /** age identities (`AGE-SECRET-KEY-1…`). */
  identities?: string[];
  /** Paths of age identity files, as written by age-keygen. */
  identityFiles?: string[];
  passphrase?: string;
}

export interface RestoreOptions extends RunOptions, KeyOptions {
  job: string;
  /** Snapshot id, unique prefix, or `latest` (default). */
  snapshot?: string;
  /** Restore only this source's artifacts; required when the snapshot holds several sources. */
  source?: string;
  /**
   * Restore only this artifact: its file name, the database it holds (`meta.database`) or its kind
   * (`globals`). Required when a source produced several artifacts that restore into databases.
   */
  artifact?: string;
  /** Read from this destination instead of the first that has the snapshot. */
  destination?: string;
  /** Called about twice a second while an artifact is read. */
  onProgress?: (progress: Progress) => void;
  toDir?: string;
  toDatabase?: string;
  /** Restore into an existing database that holds tables (PostgreSQL; refused without it). */
  force?: boolean;
  /** Read a snapshot that is less protected than the job requires (unencrypted, unsigned). */
  allowUnprotected?: boolean;
}

export interface RestoreResult {
  job: string;
  snapshot: string;
  destination: string;
  restored: { source: string; artifact: string; summary: string }[];
}

export function resolveKeys(options: KeyOptions): DecodeKeys {
  const identities = [...(options.identities ?? [])];
  for (const file of options.identityFiles ?? []) {
    refuseOpenKeyFile(file, "identity file");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new UsageError(`cannot read identity file ${file}: ${(error as NodeJS.ErrnoException).code}`);
    }
    try {
      identities.push(...parseIdentityFile(text));
    } catch (error) {
      throw new UsageError(`${file}: ${(error as Error).message}`);
    }
  }
  return { identities, ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}) };
}

function asCairnError(error: unknown): unknown {
  if (error instanceof CairnError || !(error instanceof Error)) return error;
  // Only a key that does not open the header is a key problem; anything else is damaged data.
  if (error.name === "AgeNoMatchError" || error.name === "AgeKeyError")
    return new DecryptError(error.message, {
      cause: error,
      hint: "use the identity or passphrase the backup was encrypted for",
    });
  const object = (error as { object?: string }).object;
  const at = object ? `${object}: ` : "";
  const hint = "verify the other copies (cairn verify --destination NAME) and restore from a good one";
  if (error.name.startsWith("Age") || /age /.test(error.message))
    return new IntegrityError(`${at}the encrypted data is damaged or was altered: ${error.message}`, {
      cause: error,
      hint,
    });
  const code = (error as NodeJS.ErrnoException).code;
  if (code?.startsWith("ERR_ZSTD") || code === "Z_DATA_ERROR")
    return new IntegrityError(`${at}decompression failed: ${error.message}`, { cause: error, hint });
  // Any other failure of a decoder (an age header that does not parse …) is damaged data too.
  if (object)
    return new IntegrityError(`${at}the stored data cannot be decoded: ${error.message}`, {
      cause: error,
      hint,
    });
  return error;
}

/**
 * The artifact's original bytes: every stored object read in order and checked against the
 * manifest, then decrypted and decompressed. The stream errors on any mismatch, and its last chunk
 * is released only after every check passed.
 */
export function openArtifact(
  config: Config,
  storage: Storage,
  folder: string,
  artifact: ArtifactRecord,
  keys: DecodeKeys,
  ctx: PluginContext,
  onRead?: (bytes: number) => void,
): Readable {
  // Decoders first: a missing key fails here, before anything is read or written.
  const decoders: Duplex[] = [...artifact.transforms].reverse().map((record) => {
    const definition = config.registry.transforms.get(record.type);
    if (!definition)
      throw new RestoreError(
        `this cairn does not know the transform "${record.type}" used by ${artifact.name}`,
      );
    return definition.decode(record, keys);
  });
  // A decoder's error names the object being read when it happened (a flipped bit fails age's
  // authentication before the object's SHA-256 can be compared at its end).
  let reading = "";
  for (const decoder of decoders)
    decoder.once("error", (error: Error & { object?: string }) => {
      error.object ??= reading;
    });
  async function* objects() {
    for (const object of artifact.objects) {
      const where = `${storage.location}/${folder}/${object.key}`;
      reading = where;
      const input = await storage.get(`${folder}/${object.key}`, ctx);
      const verifier = through(input, new ObjectVerifier(object, where));
      if (!onRead) yield* verifier;
      else
        for await (const chunk of verifier) {
          onRead((chunk as Buffer).length);
          yield chunk;
        }
    }
  }
  // The callback form returns the last stream, which the pipeline destroys with the first error.
  return pipeline(
    [Readable.from(objects()), ...decoders, new HoldBackLast()] as unknown as [Readable, ...Duplex[]],
    () => {},
  ) as unknown as Readable;
}

function sourceFor(config: Config, job: string, artifact: ArtifactRecord): Source {
  const options = config.jobs[job]?.sources[artifact.source];
  if (!options || options.type !== artifact.type)
    throw new RestoreError(
      `source ${artifact.source} (${artifact.type}) is no longer in the configuration of job ${job}`,
      {
        hint: `restore it without cairn: ${artifact.restoreWithoutCairn}`,
      },
    );
  return createSource(config, { name: artifact.source, options });
}

function artifactMatches(artifact: ArtifactRecord, wanted: string): boolean {
  return artifact.name === wanted || artifact.meta.database === wanted || artifact.meta.kind === wanted;
}

function pickArtifacts(
  artifacts: ArtifactRecord[],
  source: string | undefined,
  wanted: string | undefined,
  target: RestoreTarget,
): ArtifactRecord[] {
  let chosen = artifacts;
  if (source) {
    chosen = artifacts.filter((a) => a.source === source);
    if (chosen.length === 0)
      throw new UsageError(`the snapshot has no source named "${source}"`, {
        hint: `sources in it: ${[...new Set(artifacts.map((a) => a.source))].join(", ")}`,
      });
  }
  if (wanted !== undefined) {
    const matching = chosen.filter((a) => artifactMatches(a, wanted));
    if (matching.length === 0)
      throw new UsageError(`no artifact named "${wanted}"${source ? ` in source ${source}` : ""}`, {
        hint: `artifacts: ${chosen.map((a) => a.name).join(", ")}`,
      });
    chosen = matching;
  }
  const sources = [...new Set(chosen.map((a) => a.source))];
  if (sources.length > 1)
    throw new UsageError(
      `the snapshot holds several sources (${sources.join(", ")}): choose one with --source NAME`,
    );
  if (chosen.length > 1 && target.dir === undefined)
    throw new UsageError(
      `source ${sources[0]} produced several artifacts (${chosen.map((a) => a.name).join(", ")}): choose one with --artifact NAME`,
      { hint: "a database name or the file name both work, e.g. --artifact app" },
    );
  return chosen;
}

/**
 * The artifact's bytes as one file in `dir` (new or empty), for a source that has no restore of
 * its own: written under a temporary name and renamed only once every check passed.
 */
async function restoreAsFile(artifact: ArtifactRecord, stream: Readable, dir: string): Promise<string> {
  const name = artifact.name;
  if (!name || name !== basename(name) || name === "." || name === "..")
    throw new IntegrityError(`artifact name ${JSON.stringify(name)} is not a plain file name: refused`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if ((await readdir(dir)).length > 0)
    throw new UsageError(`${dir} is not empty`, { hint: "restore into a new or empty folder" });
  const partial = join(dir, `.${name}.partial`);
  try {
    await pipe(stream, createWriteStream(partial, { flags: "wx", mode: 0o600 }));
    await rename(partial, join(dir, name));
  } catch (error) {
    await rm(partial, { force: true });
    throw error;
  }
  return `written to ${join(dir, name)}`;
}

/** `withSnapshot`, once the snapshot is as protected as its job requires (or the user said to go on). */
function withTrustedSnapshot<T>(
  options: Parameters<typeof withSnapshot>[0] & { allowUnprotected?: boolean },
  fn: Parameters<typeof withSnapshot<T>>[1],
): Promise<T> {
  return withSnapshot(options, async (located, ctx) => {
    const { settings } = planOf(options.config, options.job);
    await requireProtected(
      located.ref,
      located.destination.storage,
      settings,
      !!options.allowUnprotected,
      ctx,
    );
    return fn(located, ctx);
  });
}

/** Restores one source of a snapshot into a folder or a database. */
/** Reports the stored bytes read of an artifact about twice a second, until stopped. */
function readProgress(
  ctx: PluginContext,
  onProgress: ((progress: Progress) => void) | undefined,
  phase: "restore" | "verify",
  job: string,
  artifact: ArtifactRecord,
): { onRead?: (bytes: number) => void; stop: () => void } {
  if (!onProgress) return { stop: () => {} };
  const total = artifact.objects.reduce((sum, o) => sum + o.size, 0);
  const started = Date.now();
  let bytes = 0;
  const report = () =>
    onProgress({
      phase,
      job,
      source: artifact.source,
      artifact: artifact.name,
      bytes,
      total,
      elapsed: (Date.now() - started) / 1000,
    });
  const timer = setInterval(() => safely(ctx, report), 500);
  return {
    onRead: (n) => {
      bytes += n;
    },
    stop: () => clearInterval(timer),
  };
}

export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const session = newSession();
  const logger = (options.logger ?? silentLogger).child({ session });
  const facts = { session, job: options.job, snapshot: options.snapshot ?? "latest" };
  return events.around(
    "before_restore",
    facts,
    logger,
    () => restoreSnapshot({ ...options, logger }),
    (result) => ({ snapshot: result.snapshot, result }),
  );
}

async function restoreSnapshot(options: RestoreOptions): Promise<RestoreResult> {
  const target: RestoreTarget = {
    ...(options.toDir !== undefined ? { dir: options.toDir } : {}),
    ...(options.toDatabase !== undefined ? { database: options.toDatabase } : {}),
    ...(options.force ? { force: true } : {}),
  };
  const keys = resolveKeys(options);
  return withTrustedSnapshot(options, async ({ ref, destination }, ctx) => {
    const chosen = pickArtifacts(ref.manifest.artifacts, options.source, options.artifact, target);
    const restored: RestoreResult["restored"] = [];
    for (const artifact of chosen) {
      const source = sourceFor(options.config, options.job, artifact);
      if (!source.restore && target.dir === undefined)
        throw new RestoreError(`source type ${artifact.type} cannot restore into a database`, {
          hint: "pass --to-dir DIR to get the artifact as a file",
        });
      ctx.logger.info("restoring", {
        source: artifact.source,
        artifact: artifact.name,
        from: destination.name,
      });
      const progress = readProgress(ctx, options.onProgress, "restore", options.job, artifact);
      const stream = openArtifact(
        options.config,
        destination.storage,
        ref.folder,
        artifact,
        keys,
        ctx,
        progress.onRead,
      );
      try {
        const summary = source.restore
          ? await source.restore(artifact, stream, target, ctx)
          : await restoreAsFile(artifact, stream, target.dir!);
        restored.push({ source: artifact.source, artifact: artifact.name, summary });
      } catch (error) {
        stream.destroy();
        throw asCairnError(error);
      } finally {
        progress.stop();
      }
    }
    return { job: options.job, snapshot: ref.id, destination: destination.name, restored };
  });
}

export interface VerifyOptions extends RunOptions, KeyOptions {
  job: string;
  snapshot?: string;
  destination?: string;
  /** Called about twice a second while an artifact is read. */
  onProgress?: (progress: Progress) => void;
  /** Check a snapshot that is less protected than the job requires (unencrypted, unsigned). */
  allowUnprotected?: boolean;
}

export interface VerifyResult {
  job: string;
  snapshot: string;
  destination: string;
  /** `full`: decrypted, decompressed and read by the source's own tool; `stored`: stored bytes checked only. */
  level: "full" | "stored";
  artifacts: { source: string; artifact: string; objects: number; bytes: number; summary: string }[];
}

/**
 * Reads every object of a snapshot back and checks it against the manifest; with the keys, also
 * decrypts, decompresses and lets the source's tool read the result (pg_restore --list, tar …).
 */
export async function verify(options: VerifyOptions): Promise<VerifyResult> {
  const keys = resolveKeys(options);
  return withTrustedSnapshot(options, async ({ ref, destination }, ctx) => {
    // Encrypted by any encryption transform, not one by name (a plugin's encryption counts too).
    const encryption = (type: string) => options.config.registry.transforms.get(type)?.role === "encryption";
    const encrypted = ref.manifest.artifacts.some((a) => a.transforms.some((t) => encryption(t.type)));
    const level =
      encrypted && keys.identities.length === 0 && keys.passphrase === undefined ? "stored" : "full";
    if (level === "stored")
      ctx.logger.warn(
        "no identity or passphrase given: checking stored bytes only, not the decrypted content",
      );
    const artifacts: VerifyResult["artifacts"] = [];
    for (const artifact of ref.manifest.artifacts) {
      const bytes = artifact.objects.reduce((s, o) => s + o.size, 0);
      const decodeKeys = level === "full" ? keys : undefined;
      const summary = await verifyArtifact(
        options,
        destination.storage,
        ref.folder,
        artifact,
        decodeKeys,
        ctx,
      );
      artifacts.push({
        source: artifact.source,
        artifact: artifact.name,
        objects: artifact.objects.length,
        bytes,
        summary,
      });
      ctx.logger.info("verified", { artifact: artifact.name, result: summary });
    }
    return { job: options.job, snapshot: ref.id, destination: destination.name, level, artifacts };
  });
}

async function verifyArtifact(
  options: VerifyOptions,
  storage: Storage,
  folder: string,
  artifact: ArtifactRecord,
  keys: DecodeKeys | undefined,
  ctx: PluginContext,
): Promise<string> {
  const stored = { ...artifact, transforms: keys ? artifact.transforms : [] };
  const progress = readProgress(ctx, options.onProgress, "verify", options.job, artifact);
  const stream = openArtifact(
    options.config,
    storage,
    folder,
    stored,
    keys ?? { identities: [] },
    ctx,
    progress.onRead,
  );
  try {
    if (!keys) {
      stream.resume();
      await finished(stream);
      return `${artifact.objects.length} object(s), checksums match`;
    }
    let source: Source | undefined;
    try {
      source = sourceFor(options.config, options.job, artifact);
    } catch {
      ctx.logger.warn("source not in the configuration: checking decryption and decompression only", {
        source: artifact.source,
      });
    }
    if (source?.verify) return await source.verify(artifact, stream, ctx);
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
    });
    await finished(stream);
    if (bytes !== artifact.rawSize)
      throw new IntegrityError(`${artifact.name} decodes to ${bytes} bytes, not ${artifact.rawSize}`);
    return `decodes to ${bytes} bytes`;
  } catch (error) {
    stream.destroy();
    throw asCairnError(error);
  } finally {
    progress.stop();
  }
}

export interface ShowOptions extends RunOptions {
  job: string;
  snapshot?: string;
  destination?: string;
}

export interface ShowResult extends SnapshotSummary {
  folder: string;
  manifest: Manifest;
}

/** One snapshot's manifest, as found on the first destination that has it. */
export async function show(options: ShowOptions): Promise<ShowResult> {
  return withSnapshot(options, async ({ ref }) => ({
    ...summarize(ref.manifest, [ref.destination]),
    folder: ref.folder,
    manifest: ref.manifest,
  }));
}
