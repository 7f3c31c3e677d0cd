import { hostname } from "node:os";
import { resolve } from "node:path";
import { type Duplex, PassThrough, Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Catalog } from "../catalog/catalog.ts";
import type { Config } from "../config/load.ts";
import { splitDestinationOptions } from "../config/schema.ts";
import { events, newSession } from "../events/events.ts";
import { type HookName, runHook } from "../hooks/hooks.ts";
import {
  type Artifact,
  type ArtifactRecord,
  type Logger,
  MANIFEST_FORMAT,
  MANIFEST_NAME,
  type Manifest,
  type PluginContext,
  type RunEvent,
  type Transform,
} from "../kit/contracts.ts";
import { AbortedError, CairnError, describeError, SourceError, StorageError } from "../kit/errors.ts";
import { createRedactor, silentLogger } from "../kit/logger.ts";
import { ByteCounter, Coalesce, ObjectSink } from "../kit/streams.ts";
import { VERSION } from "../kit/version.ts";
import { type DestinationLock, type Lock, lockDestinations, lockLocally } from "../locks/locks.ts";
import { type DestinationPrune, prune } from "../retention/prune.ts";
import { dueDestinations } from "../schedule/due.ts";
import { confirmStored } from "./confirm.ts";
import {
  closeDestinations,
  createSource,
  type Destination,
  jobConfig,
  openDestinations,
  type RunOptions,
  withContext,
} from "./context.ts";
import { crashPoint } from "./crash.ts";
import { disabledJobs } from "./jobs.ts";
import { notify } from "./notify.ts";
import { restorePipeline } from "./restore-hint.ts";
import { choose, type Selection } from "./select.ts";
import { loadSigningKey, SIGNATURE_NAME, signManifest } from "./signing.ts";
import { checkArtifactName, newSnapshotId, snapshotFolder } from "./snapshot.ts";

export interface Progress {
  /** What is under way: a backup reads the source, restore and verify read stored objects. */
  phase?: "backup" | "restore" | "verify";
  job: string;
  source: string;
  artifact?: string;
  /** Bytes read so far: from the source (backup), or stored bytes (restore, verify). */
  bytes: number;
  /** How many bytes there are: exact for restore and verify, the last snapshot's for backup. */
  total?: number;
  /** Seconds since this artifact started. */
  elapsed: number;
}

/** A progress callback that throws is logged; it never stops the backup (nor crashes the process). */
export function safely(ctx: { logger: Logger }, report: () => void): void {
  try {
    report();
  } catch (error) {
    ctx.logger.debug(`the progress callback failed: ${(error as Error).message}`);
  }
}

export interface BackupOptions extends RunOptions, Selection {
  /** Jobs to run; all configured jobs when empty or absent. */
  jobs?: string[];
  /** Called about twice a second while data flows. */
  onProgress?: (progress: Progress) => void;
  /** Record runs in the catalog (default true). */
  catalog?: boolean;
  /** The session id of the runs (default: a new one per job), in their logs, hooks and events. */
  session?: string;
  /** Run the sources and transforms, store nothing, record nothing. */
  dryRun?: boolean;
  /** Run even where the frequency says the job (or a destination) is not due. */
  force?: boolean;
  /** Notifiers to use in this run even if `enabled: false` (`--notify NAME`). */
  notify?: string[];
  /** Report failures to this Sentry DSN (`--sentry-dsn`), besides the configured notifiers. */
  sentryDsn?: string;
}

export interface ArtifactSummary {
  source: string;
  name: string;
  rawBytes: number;
  storedBytes: number;
  objects: number;
}

export interface JobResult {
  job: string;
  ok: boolean;
  snapshot: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  rawBytes: number;
  storedBytes: number;
  artifacts: ArtifactSummary[];
  /** Where the snapshot was stored: destination name → snapshot folder key. */
  destinations: Record<string, string>;
  /** Destinations that failed in this run, with why (the others keep the snapshot). */
  failedDestinations?: Record<string, string>;
  /** Some of it was stored: a source failed (the snapshot is partial) or a destination did. */
  partial?: boolean;
  error?: { code: string; message: string; hint?: string; stderr?: string };
  /** Destinations pruned after the backup (`retention.prune: after_backup`). */
  pruned?: DestinationPrune[];
  /** Set when the job did not run because no destination was due: why. */
  skipped?: string;
  /** Destinations left out of this run because they were not due, with why. */
  notDue?: Record<string, string>;
  /** Notifiers that could not be told (the job's result stands). */
  notifyFailures?: { notifier: string; error: string }[];
}

export interface BackupReport {
  ok: boolean;
  jobs: JobResult[];
}

/** Runs the given jobs (all when none are named), one after another. Never throws for a failed job. */
export async function backup(options: BackupOptions): Promise<BackupReport> {
  const disabled = disabledJobs(options.config);
  const names = options.jobs?.length
    ? options.jobs
    : Object.keys(options.config.jobs).filter((job) => !disabled.has(job));
  for (const job of options.jobs?.length ? [] : disabled)
    if (options.config.jobs[job])
      options.logger?.info("skipping disabled job (cairn enable to turn it back on)", { job });
  for (const name of names) jobConfig(options.config, name);
  const chosen = choose(options.config, names, options);
  for (const job of chosen.left) options.logger?.info("left out by --only/--skip", { job });
  const catalog =
    options.catalog === false || options.dryRun ? undefined : await Catalog.open(options.config.stateDir);
  try {
    const jobs: JobResult[] = [];
    const notifyOptions = {
      ...(options.notify ? { only: options.notify } : {}),
      ...(options.sentryDsn ? { sentryDsn: options.sentryDsn } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    for (const name of chosen.jobs) {
      // One session per job's run: its log lines, hooks and events carry the id.
      const session = options.session ?? newSession();
      const run = { ...options, logger: (options.logger ?? silentLogger).child({ session }), session };
      await events.emit("before_backup", { session, job: name }, run.logger);
      if (!options.dryRun) await notify(options.config, { ...startEvent(name), session }, notifyOptions);
      const done = await backupJob(name, run, catalog, chosen.destinations(name));
      if (done.ok && !done.skipped && !options.dryRun) {
        const pruned = await pruneAfterBackup(name, run, chosen.destinations(name));
        if (pruned.length) done.pruned = pruned;
      }
      await events.emit("on_backup", { session, job: name, result: done }, run.logger);
      if (!options.dryRun) {
        const failures = await notify(
          options.config,
          { ...eventOf(done), session },
          notifyOptions,
          done.skipped !== undefined,
        );
        if (failures.length) done.notifyFailures = failures;
      }
      jobs.push(done);
    }
    return { ok: jobs.every((j) => j.ok), jobs };
  } finally {
    catalog?.close();
  }
}

function startEvent(job: string): RunEvent {
  return {
    kind: "start",
    job,
    snapshot: "",
    host: hostname(),
    startedAt: new Date().toISOString(),
    durationMs: 0,
    rawBytes: 0,
    storedBytes: 0,
    destinations: [],
  };
}

function eventOf(done: JobResult): RunEvent {
  return {
    kind: done.ok ? "success" : "failure",
    job: done.job,
    snapshot: done.snapshot,
    host: hostname(),
    startedAt: done.startedAt,
    durationMs: done.durationMs,
    rawBytes: done.rawBytes,
    storedBytes: done.storedBytes,
    destinations: Object.keys(done.destinations),
    ...(done.error
      ? {
          error: {
            message: done.error.message,
            ...(done.error.hint ? { hint: done.error.hint } : {}),
            ...(done.error.stderr ? { stderr: done.error.stderr } : {}),
          },
        }
      : {}),
  };
}

/**
 * Prunes the job's destinations whose retention says `prune: after_backup`. A pruning problem is
 * reported with the job, never turned into a failed backup: the snapshot is stored either way.
 */
async function pruneAfterBackup(
  job: string,
  options: BackupOptions,
  selected: Set<string> | undefined,
): Promise<DestinationPrune[]> {
  const settings = jobConfig(options.config, job);
  const names = Object.entries(settings.destinations)
    .filter(
      ([name, d]) =>
        (!selected || selected.has(name)) &&
        (splitDestinationOptions(d).common.retention ?? settings.retention)?.prune === "after_backup",
    )
    .map(([name]) => name);
  const reports: DestinationPrune[] = [];
  for (const destination of names) {
    try {
      const result = await prune({
        config: options.config,
        ...(options.session ? { session: options.session } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        job,
        destination,
      });
      reports.push(...result.destinations);
    } catch (error) {
      reports.push({
        job,
        destination,
        skipped: `pruning failed: ${(error as Error).message}`,
        keep: [],
        remove: [],
        leftovers: [],
        temporary: [],
        errors: [],
      });
    }
  }
  for (const report of reports)
    if (report.skipped || report.errors.length)
      options.logger?.error(
        `pruning ${job} on ${report.destination} after the backup: ${report.skipped ?? report.errors.map((e) => `${e.id}: ${e.error}`).join("; ")}`,
      );
  return reports;
}

export function transformsOf(config: Config, job: string): Transform[] {
  const settings = jobConfig(config, job);
  const env = { name: job, baseDir: config.baseDir };
  const chosen = [settings.compression, settings.encryption].filter((t) => t !== undefined);
  return chosen.map((options) => config.registry.transforms.get(options.type)!.create(options, env));
}

async function backupJob(
  job: string,
  options: BackupOptions,
  catalog: Catalog | undefined,
  destinationNames?: Set<string>,
): Promise<JobResult> {
  const { config } = options;
  const settings = jobConfig(config, job);
  const started = new Date();
  const id = newSnapshotId(started);
  const runId = catalog?.startRun(job, id, started);
  const artifacts: ArtifactRecord[] = [];
  const folders: Record<string, string> = {};
  /** Destinations that received the whole snapshot, manifest included. */
  const complete = new Set<string>();
  /** Destinations that failed during the run: out of it from then on, the others go on. */
  const lost = new Map<string, unknown>();
  /** Set when a source failed and the others' artifacts were stored. */
  let partialSources = false;
  let destinations: Destination[] = [];
  /** Destinations not due this run: opened (and locked), then closed, never written. */
  let idle: Destination[] = [];
  const notDue: Record<string, string> = {};
  const redact = createRedactor(config.secrets);
  const result = (error?: unknown): JobResult => {
    const finished = new Date();
    const rawBytes = artifacts.reduce((s, a) => s + a.rawSize, 0);
    const storedBytes = artifacts.reduce((s, a) => s + a.objects.reduce((t, o) => t + o.size, 0), 0);
    return {
      job,
      ok: error === undefined,
      snapshot: id,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      rawBytes,
      storedBytes,
      artifacts: artifacts.map((a) => ({
        source: a.source,
        name: a.name,
        rawBytes: a.rawSize,
        storedBytes: a.objects.reduce((t, o) => t + o.size, 0),
        objects: a.objects.length,
      })),
      destinations: Object.fromEntries(Object.entries(folders).filter(([name]) => complete.has(name))),
      ...(lost.size
        ? {
            failedDestinations: Object.fromEntries(
              [...lost].map(([name, e]) => [name, errorSummary(e, redact).message]),
            ),
          }
        : {}),
      ...(error !== undefined && complete.size > 0 && (lost.size > 0 || partialSources)
        ? { partial: true }
        : {}),
      ...(error === undefined ? {} : { error: errorSummary(error, redact) }),
      ...(Object.keys(notDue).length ? { notDue: { ...notDue } } : {}),
    };
  };

  return withContext(
    options,
    async (ctx) => {
      ctx.logger.info("backup started");
      const locks: Lock[] = [];
      let held: DestinationLock | undefined;
      let status = "";
      let hookError: string | undefined;
      /** Hooks run once the job is past its locks and due: on_error and finally only then. */
      let hooksStarted = false;
      const hook = (name: HookName, now: string) => {
        hooksStarted = true;
        return runHook(
          name,
          config.hooks,
          settings.hooks,
          {
            job,
            snapshot: id,
            status: now,
            folders,
            ...(options.session ? { session: options.session } : {}),
            ...(hookError ? { error: hookError } : {}),
          },
          ctx,
          config.baseDir,
        );
      };
      try {
        const transforms = transformsOf(config, job);
        // A signing key that cannot be used fails the run before anything is stored.
        const signingKey = settings.signing?.key_file
          ? loadSigningKey(resolve(config.baseDir, settings.signing.key_file))
          : undefined;
        if (!options.dryRun) locks.push(lockLocally(config.stateDir, job, "backup"));
        destinations = await openDestinations(config, job, undefined, {
          dryRun: options.dryRun ?? false,
          include: destinationNames,
        });
        if (!options.dryRun) {
          held = await lockDestinations(destinations, job, "backup", settings.lock_expires, ctx);
          locks.push(held);
          crashPoint("backup:locked");
        }
        if (!options.force && destinations.some((d) => d.frequency)) {
          const checks = await dueDestinations(destinations, job, started, ctx);
          for (const check of checks.filter((c) => !c.due)) notDue[check.destination] = check.reason;
          if (checks.every((c) => !c.due)) {
            const why = checks.map((c) => `${c.destination}: ${c.reason}`).join("; ");
            ctx.logger.info(`not due, skipped (--force runs it): ${why}`);
            if (runId !== undefined) catalog?.finishRun(runId, { status: "skipped", error: why });
            return { ...result(), skipped: why };
          }
          idle = destinations.filter((d) => notDue[d.name] !== undefined);
          destinations = destinations.filter((d) => notDue[d.name] === undefined);
          for (const d of idle)
            ctx.logger.info("destination not due, left out of this run", {
              destination: d.name,
              why: notDue[d.name],
            });
        }
        for (const d of destinations) folders[d.name] = snapshotFolder(d.template, job, id, started);
        const previous = catalog?.lastArtifactSizes(job);
        if (!options.dryRun) await hook("before", "");
        const failures: { source: string; error: unknown }[] = [];
        for (const [sourceName, sourceOptions] of Object.entries(settings.sources)) {
          const source = createSource(config, sourceName, sourceOptions);
          const sourceCtx = { ...ctx, logger: ctx.logger.child({ source: sourceName }) };
          const before = artifacts.length;
          try {
            for await (const artifact of source.backup(sourceCtx)) {
              const badName = checkArtifactName(
                artifact.name,
                artifacts.map((a) => a.name),
              );
              if (badName) {
                artifact.stream.destroy();
                throw new SourceError(badName);
              }
              const record = await storeArtifact(
                artifact,
                sourceName,
                sourceOptions.type,
                transforms,
                destinations,
                folders,
                {
                  ctx: sourceCtx,
                  lost,
                  partSize: settings.split,
                  onProgress:
                    options.onProgress &&
                    ((bytes, elapsed) => {
                      const total = previous?.sizes.get(artifact.name);
                      options.onProgress!({
                        phase: "backup",
                        job,
                        source: sourceName,
                        artifact: artifact.name,
                        bytes,
                        elapsed,
                        ...(total ? { total } : {}),
                      });
                    }),
                },
              );
              record.restoreWithoutCairn = restorePipeline(record, config, source.restoreCommand?.(record));
              artifacts.push(record);
              warnAboutSize(record, previous, sourceCtx.logger);
              sourceCtx.logger.info("artifact stored", {
                name: record.name,
                bytes: record.rawSize,
                objects: record.objects.length,
              });
              crashPoint("backup:artifact-stored");
            }
          } catch (error) {
            // One failing source fails the run, but the others' artifacts are kept (a partial snapshot).
            if (ctx.signal.aborted) throw error;
            if (lost.size === destinations.length) throw error; // no destination is left: not the source's fault
            failures.push({ source: sourceName, error });
            artifacts.splice(before);
            sourceCtx.logger.error(`source ${sourceName} failed: ${errorSummary(error, redact).message}`);
            await removeObjects(destinations, folders, artifacts, ctx);
          }
        }
        if (failures.length > 0 && artifacts.length === 0) throw failures[0]!.error;
        partialSources = failures.length > 0;
        // A lock taken over while this run worked means another run may have removed what it stored.
        await held?.assertHeld(ctx);
        if (!options.dryRun) await confirmOnEach(destinations, folders, artifacts, lost, ctx);
        const live = destinations.filter((d) => !lost.has(d.name));
        const manifest: Manifest = {
          format: MANIFEST_FORMAT,
          tool: { name: "cairn", version: VERSION },
          job,
          id,
          host: hostname(),
          startedAt: started.toISOString(),
          finishedAt: new Date().toISOString(),
          tags: settings.tags,
          ...(failures.length > 0
            ? {
                status: "partial" as const,
                failures: failures.map((f) => ({
                  source: f.source,
                  message: errorSummary(f.error, redact).message,
                })),
              }
            : {}),
          artifacts,
        };
        // The manifest goes last: until it is stored, the snapshot does not exist.
        const body = `${JSON.stringify(manifest, null, 2)}\n`;
        const signature = signingKey ? signManifest(body, signingKey) : undefined;
        crashPoint("backup:before-manifest");
        const written = await Promise.allSettled(
          live.map(async (d) => {
            // The signature first: a manifest is never visible without it.
            if (signature)
              await d.storage.put(`${folders[d.name]}/${SIGNATURE_NAME}`, Readable.from([signature]), ctx);
            await d.storage.put(`${folders[d.name]}/${MANIFEST_NAME}`, Readable.from([body]), ctx);
          }),
        );
        live.forEach((d, i) => {
          if (written[i]?.status === "fulfilled") {
            // A destination that has its manifest holds a complete, good snapshot: it stays.
            complete.add(d.name);
            catalog?.recordSnapshot({
              job,
              id,
              destination: d.name,
              folder: folders[d.name]!,
              manifest,
              text: body,
            });
          } else {
            const reason = (written[i] as PromiseRejectedResult).reason;
            lost.set(d.name, new StorageError(`could not store the manifest: ${describeError(reason)}`));
          }
        });
        crashPoint("backup:manifest-written");
        if (lost.size > 0) {
          const why = [...lost].map(([name, e]) => `${name}: ${describeError(e)}`).join("; ");
          throw new StorageError(
            complete.size > 0
              ? `stored on ${[...complete].join(", ")} only; failed on ${why}`
              : `no destination stored the snapshot: ${why}`,
            complete.size > 0
              ? {
                  hint: "the snapshot is good where it was stored; fix the failed destination and back up again",
                }
              : {},
          );
        }
        if (failures.length > 0) {
          const names = failures.map((f) => f.source).join(", ");
          const first = failures[0]!.error;
          throw new SourceError(
            `${failures.length} of ${Object.keys(settings.sources).length} sources failed (${names}): ${describeError(first)}`,
            {
              hint: "the snapshot keeps the other sources and is marked partial",
              ...((first as SourceError).stderrTail
                ? { stderrTail: (first as SourceError).stderrTail! }
                : {}),
            },
          );
        }
        if (!options.dryRun) await hook("after", "success");
        status = "success";
        const done = result();
        if (runId !== undefined)
          catalog?.finishRun(runId, {
            status: "success",
            rawBytes: done.rawBytes,
            storedBytes: done.storedBytes,
          });
        ctx.logger.info("backup finished", {
          bytes: done.rawBytes,
          stored: done.storedBytes,
          seconds: done.durationMs / 1000,
        });
        return done;
      } catch (caught) {
        const error = ctx.signal.aborted ? interrupted(ctx.signal) : caught;
        status = "failed";
        hookError = describeError(error);
        if (!options.dryRun && hooksStarted)
          await hook("on_error", status).catch((e: unknown) => ctx.logger.error(describeError(e)));
        const failed = result(error);
        ctx.logger.error(
          `backup failed: ${failed.error!.message}`,
          failed.error?.hint ? { hint: failed.error.hint } : {},
        );
        if (failed.error?.stderr)
          ctx.logger.error(`last output of the failing program:\n${failed.error.stderr}`);
        if (runId !== undefined)
          catalog?.finishRun(runId, {
            status: complete.size > 0 ? "partial" : "failed",
            error: failed.error!.message,
            rawBytes: failed.rawBytes,
            storedBytes: failed.storedBytes,
          });
        await removeObjects(
          destinations.filter((d) => !complete.has(d.name)),
          folders,
          [],
          ctx,
        );
        return failed;
      } finally {
        if (!options.dryRun && hooksStarted)
          await hook("finally", status).catch((e: unknown) => ctx.logger.error(describeError(e)));
        for (const lock of locks.reverse()) await lock.release().catch(() => {});
        await closeDestinations([...destinations, ...idle]);
      }
    },
    { job, snapshot: id },
  );
}

/** A dump much smaller than the last one is the classic silent failure: a database emptied by mistake. */
const SHRINK_WARNING = { ratio: 0.5, minimumBytes: 64 * 1024 };

function warnAboutSize(
  record: ArtifactRecord,
  previous: { snapshot: string; sizes: Map<string, number> } | undefined,
  logger: Logger,
): void {
  if (record.rawSize === 0) {
    logger.warn(`${record.name} is empty (allowed by the source): check that nothing was lost`);
    return;
  }
  const before = previous?.sizes.get(record.name);
  if (before === undefined || before < SHRINK_WARNING.minimumBytes) return;
  if (record.rawSize < before * SHRINK_WARNING.ratio)
    logger.warn(
      `${record.name} is ${record.rawSize} bytes, down from ${before} in snapshot ${previous!.snapshot} (${Math.round((100 * record.rawSize) / before)}%): check that no data was deleted by mistake`,
    );
}

/** Confirms the stored objects on every destination still in the run; one that fails drops out. */
async function confirmOnEach(
  destinations: Destination[],
  folders: Record<string, string>,
  artifacts: ArtifactRecord[],
  lost: Map<string, unknown>,
  ctx: PluginContext,
): Promise<void> {
  const live = destinations.filter((d) => !lost.has(d.name));
  const checked = await Promise.allSettled(
    live.map((d) => confirmStored(d, folders[d.name]!, artifacts, ctx)),
  );
  checked.forEach((outcome, i) => {
    if (outcome.status === "fulfilled") return;
    const name = live[i]!.name;
    lost.set(name, outcome.reason);
    ctx.logger.error(`destination ${name} failed: ${describeError(outcome.reason)}`);
  });
}

interface StoreOptions {
  ctx: PluginContext;
  /** Destinations out of the run, shared by every artifact of it. */
  lost: Map<string, unknown>;
  partSize: number | undefined;
  onProgress: ((bytes: number, elapsed: number) => void) | undefined;
}

async function storeArtifact(
  artifact: Artifact,
  sourceName: string,
  sourceType: string,
  transforms: Transform[],
  destinations: Destination[],
  folders: Record<string, string>,
  { ctx, lost, partSize, onProgress }: StoreOptions,
): Promise<ArtifactRecord> {
  const key = artifact.name + transforms.map((t) => t.extension).join("");
  const sink = new ObjectSink(key, partSize, {
    open: (objectKey) =>
      destinations
        .filter((d) => !lost.has(d.name))
        .map((d) => {
          const body = new PassThrough({ highWaterMark: 1024 * 1024 });
          const where = `${folders[d.name]}/${objectKey}`;
          const stored = d.storage.put(where, body, ctx).then(
            () => undefined,
            (error: unknown) => {
              throw error instanceof CairnError
                ? error
                : new StorageError(`destination ${d.name}: ${describeError(error)}`, { cause: error });
            },
          );
          return { destination: d.name, body, stored };
        }),
    lost: ({ destination: name }, error) => {
      if (ctx.signal.aborted || lost.has(name)) return;
      lost.set(name, error);
      const others = destinations.length - lost.size;
      ctx.logger.error(
        `destination ${name} failed: ${describeError(error)}${others > 0 ? `; the run goes on with ${others} other(s)` : ""}`,
      );
    },
  });
  // A program's output goes straight into the next transform's program when both allow it, and so
  // on down the chain (tar → zstd → age): those bytes never pass through Node (decision 007).
  const programs: Promise<unknown>[] = artifact.completion ? [artifact.completion] : [];
  let output = artifact.stream;
  let chained = 0;
  while (artifact.completion && chained < transforms.length && transforms[chained]!.encodeFrom) {
    const next = transforms[chained]!.encodeFrom!(output, ctx);
    output = next.stdout;
    programs.push(next.completion);
    chained++;
  }
  const direct = chained > 0;
  const completion = programs.length ? Promise.all(programs) : undefined;
  const head: Readable = completion ? untilComplete(output, completion) : output;
  // Counts the source's bytes; when programs are chained, their output (for progress only).
  const counter = new ByteCounter();
  const started = Date.now();
  const timer =
    onProgress &&
    setInterval(() => safely(ctx, () => onProgress(counter.bytes, (Date.now() - started) / 1000)), 500);
  try {
    // Every stage works per write: 1 MiB blocks between stages keep that cost (and the number of
    // file-system writes) small, where tools and pipes deliver 4–64 KiB pieces.
    const encoders = transforms.slice(chained).flatMap((t) => [t.encode(ctx), new Coalesce()]);
    // Blocks help Node's own encoders; a program reading a pipe, or the sink behind a chain of
    // programs, gains nothing from them and would only pay for the copy (measured: 0.4 s per 150 MB).
    const gather = chained === 0 && transforms[0]?.encodeFrom === undefined;
    const stages = [head, ...(gather ? [new Coalesce()] : []), counter, ...encoders, sink];
    const flow = pipeline(stages as unknown as [Readable, ...Duplex[], Writable], { signal: ctx.signal });
    // Every program's exit status decides, even when its reader saw a clean end of input.
    const producers = (completion ?? Promise.resolve()).catch((error: unknown) => {
      head.destroy(error as Error);
      throw error;
    });
    await Promise.all([flow, producers]);
  } catch (error) {
    // Let every started upload finish failing (and remove its temporary object) before cleanup.
    await sink.settled();
    throw error instanceof CairnError
      ? error
      : new SourceError(`source ${sourceName}: ${describeError(error)}`, { cause: error });
  } finally {
    if (timer) clearInterval(timer);
  }
  const rawSize = direct ? artifact.rawSize?.() : counter.bytes;
  if (rawSize === undefined)
    throw new SourceError(`source ${sourceName} did not report how much it produced`, {
      hint: "a bug in the source",
    });
  if (rawSize === 0 && !artifact.allowEmpty)
    throw new SourceError(`source ${sourceName} produced no data`, {
      hint: "an empty dump is treated as a failure",
    });
  return {
    source: sourceName,
    type: sourceType,
    name: artifact.name,
    meta: artifact.meta,
    rawSize,
    transforms: transforms.map((t) => t.record),
    objects: sink.objects,
    restoreWithoutCairn: "",
  };
}

/** A program's stdout as a stream that ends only once the program is known to have succeeded. */
export function untilComplete(stdout: Readable, completion: Promise<unknown>): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  stdout.pipe(out, { end: false });
  stdout.on("end", () =>
    completion.then(
      () => out.end(),
      (error: Error) => out.destroy(error),
    ),
  );
  completion.catch((error: Error) => out.destroy(error));
  out.on("close", () => stdout.destroy());
  return out;
}

/**
 * Best effort: removes from the snapshot folders every object that is not one of `kept`'s —
 * what a failed source left (kept: the good artifacts), or a whole failed run (kept: none).
 * A manifest, if any, goes first: a half-removed snapshot must never look good.
 */
async function removeObjects(
  destinations: Destination[],
  folders: Record<string, string>,
  kept: ArtifactRecord[],
  ctx: PluginContext,
): Promise<void> {
  for (const d of destinations) {
    const folder = folders[d.name];
    if (!folder) continue;
    const keep = new Set(kept.flatMap((a) => a.objects.map((o) => `${folder}/${o.key}`)));
    try {
      const keys: string[] = [];
      for await (const object of d.storage.list(`${folder}/`, ctx))
        if (!keep.has(object.key)) keys.push(object.key);
      keys.sort((x, y) => Number(y.endsWith(`/${MANIFEST_NAME}`)) - Number(x.endsWith(`/${MANIFEST_NAME}`)));
      for (const key of keys) await d.storage.delete(key, ctx);
    } catch (error) {
      ctx.logger.warn("could not remove the objects of a failed backup", {
        destination: d.name,
        error: describeError(error),
      });
    }
  }
}

function interrupted(signal: AbortSignal): AbortedError {
  const reason = signal.reason instanceof Error ? signal.reason.message : undefined;
  return new AbortedError(`the backup was ${reason ?? "interrupted"}; nothing was recorded as good`);
}

/** What the report, the logs and the catalog say about a failure — with every known secret removed. */
function errorSummary(error: unknown, redact: (text: string) => string): NonNullable<JobResult["error"]> {
  if (error instanceof CairnError) {
    const stderr = (error as SourceError).stderrTail;
    return {
      code: error.code,
      message: redact(error.message),
      ...(error.hint ? { hint: redact(error.hint) } : {}),
      ...(stderr ? { stderr: redact(stderr) } : {}),
    };
  }
  if ((error as Error)?.name === "AbortError")
    return { code: "ABORTED", message: "the backup was interrupted" };
  return { code: "INTERNAL", message: redact(describeError(error)) };
}
