/**
 * One job's backup, phase by phase: lock, check what is due, run the before hook, store every
 * source's artifacts, confirm them, write the manifest (last: until it is stored the snapshot does
 * not exist), then the after or on_error hook. The run's state lives in the fields; the
 * destinations stay open after `run` (a prune after the backup reuses them) until `close`.
 */
import { hostname } from "node:os";
import { resolve } from "node:path";
import { Readable } from "node:stream";
import type { Catalog } from "../catalog/catalog.ts";
import { type HookName, runHook } from "../hooks/hooks.ts";
import {
  type ArtifactRecord,
  MANIFEST_FORMAT,
  MANIFEST_NAME,
  type Manifest,
  type PluginContext,
  type Transform,
} from "../kit/contracts.ts";
import { AbortedError, CairnError, describeError, SourceError, StorageError } from "../kit/errors.ts";
import { createRedactor } from "../kit/logger.ts";
import { VERSION } from "../kit/version.ts";
import { type DestinationLock, type Lock, lockDestinations, lockLocally } from "../locks/locks.ts";
import { dueDestinations } from "../schedule/due.ts";
import type { BackupOptions, JobResult } from "./backup.ts";
import { closeDestinations, type Destination, openPlanned, withContext } from "./context.ts";
import { crashPoint } from "./crash.ts";
import { createSource, createTransforms, type JobPlan, type SourcePlan } from "./plan.ts";
import { restorePipeline } from "./restore-hint.ts";
import { loadSigningKey, SIGNATURE_NAME, signManifest } from "./signing.ts";
import { checkArtifactName, newSnapshotId, snapshotFolder } from "./snapshot.ts";
import { confirmOnEach, removeObjects, storeArtifact, warnAboutSize } from "./store.ts";

type Previous = ReturnType<Catalog["lastArtifactSizes"]>;

export class JobRun {
  readonly job: string;
  readonly started = new Date();
  readonly id = newSnapshotId(this.started);
  /** Every destination opened for the run, due or not: closed by `close`. */
  opened: Destination[] = [];
  /** The destinations written in this run (the due ones). */
  private destinations: Destination[] = [];
  private readonly artifacts: ArtifactRecord[] = [];
  private readonly folders: Record<string, string> = {};
  /** Destinations that received the whole snapshot, manifest included. */
  private readonly complete = new Set<string>();
  /** Destinations that failed during the run: out of it from then on, the others go on. */
  private readonly lost = new Map<string, unknown>();
  private readonly notDue: Record<string, string> = {};
  private failures: { source: string; error: unknown }[] = [];
  private readonly locks: Lock[] = [];
  private held: DestinationLock | undefined;
  /** Hooks run once the job is past its locks and due: on_error and finally only then. */
  private hooksStarted = false;
  private hookError: string | undefined;
  private runId: number | undefined;
  private readonly redact: (text: string) => string;
  private readonly plan: JobPlan;
  private readonly options: BackupOptions;
  private readonly catalog: Catalog | undefined;
  private readonly include: Set<string> | undefined;

  constructor(plan: JobPlan, options: BackupOptions, catalog: Catalog | undefined, include?: Set<string>) {
    this.plan = plan;
    this.options = options;
    this.catalog = catalog;
    this.include = include;
    this.job = plan.job;
    this.redact = createRedactor(options.config.secrets);
  }

  private get dryRun(): boolean {
    return this.options.dryRun ?? false;
  }

  run(): Promise<JobResult> {
    return withContext(this.options, (ctx) => this.phases(ctx), { job: this.job, snapshot: this.id });
  }

  async close(): Promise<void> {
    await closeDestinations(this.opened);
  }

  private async phases(ctx: PluginContext): Promise<JobResult> {
    this.runId = this.catalog?.startRun(this.job, this.id, this.started);
    ctx.logger.info("backup started");
    let status = "";
    try {
      const transforms = createTransforms(this.options.config, this.plan);
      const signingKey = this.signingKey();
      await this.openAndLock(ctx);
      const skipped = await this.leaveOutNotDue(ctx);
      if (skipped) return skipped;
      for (const d of this.destinations)
        this.folders[d.name] = snapshotFolder(d.template, this.job, this.id, this.started);
      if (!this.dryRun) await this.hook("before", "", ctx);
      await this.storeSources(transforms, ctx);
      // A lock taken over while this run worked means another run may have removed what it stored.
      await this.held?.assertHeld(ctx);
      if (!this.dryRun) await confirmOnEach(this.destinations, this.folders, this.artifacts, this.lost, ctx);
      await this.writeManifest(signingKey, ctx);
      this.failIfIncomplete();
      if (!this.dryRun) await this.hook("after", "success", ctx);
      status = "success";
      return this.succeeded(ctx);
    } catch (caught) {
      status = "failed";
      return await this.failed(caught, ctx);
    } finally {
      if (!this.dryRun && this.hooksStarted)
        await this.hook("finally", status, ctx).catch((e: unknown) => ctx.logger.error(describeError(e)));
      for (const lock of this.locks.reverse()) await lock.release().catch(() => {});
    }
  }

  /** A signing key that cannot be used fails the run before anything is stored. */
  private signingKey() {
    const file = this.plan.settings.signing?.key_file;
    return file ? loadSigningKey(resolve(this.options.config.baseDir, file)) : undefined;
  }

  private async openAndLock(ctx: PluginContext): Promise<void> {
    const { config } = this.options;
    if (!this.dryRun) this.locks.push(lockLocally(config.stateDir, this.job, "backup"));
    this.opened = await openPlanned(config, this.plan, { include: this.include, dryRun: this.dryRun });
    this.destinations = this.opened;
    if (this.dryRun) return;
    this.held = await lockDestinations(this.opened, this.job, "backup", this.plan.settings.lock_expires, ctx);
    this.locks.push(this.held);
    crashPoint("backup:locked");
  }

  /** Leaves out the destinations whose frequency says not yet; the whole run's result when none is due. */
  private async leaveOutNotDue(ctx: PluginContext): Promise<JobResult | undefined> {
    if (this.options.force || !this.opened.some((d) => d.frequency)) return undefined;
    const checks = await dueDestinations(this.opened, this.job, this.started, ctx);
    for (const check of checks.filter((c) => !c.due)) this.notDue[check.destination] = check.reason;
    if (checks.every((c) => !c.due)) {
      const why = checks.map((c) => `${c.destination}: ${c.reason}`).join("; ");
      ctx.logger.info(`not due, skipped (--force runs it): ${why}`);
      if (this.runId !== undefined) this.catalog?.finishRun(this.runId, { status: "skipped", error: why });
      return { ...this.result(), skipped: why };
    }
    this.destinations = this.opened.filter((d) => this.notDue[d.name] === undefined);
    for (const d of this.opened.filter((d) => this.notDue[d.name] !== undefined))
      ctx.logger.info("destination not due, left out of this run", {
        destination: d.name,
        why: this.notDue[d.name],
      });
    return undefined;
  }

  private hook(name: HookName, status: string, ctx: PluginContext): Promise<void> {
    this.hooksStarted = true;
    const { config, session } = this.options;
    return runHook(
      name,
      config.hooks,
      this.plan.settings.hooks,
      {
        job: this.job,
        snapshot: this.id,
        status,
        folders: this.folders,
        ...(session ? { session } : {}),
        ...(this.hookError ? { error: this.hookError } : {}),
      },
      ctx,
      config.baseDir,
    );
  }

  /** Every source in turn; one that fails is left out (its objects removed) and the others go on. */
  private async storeSources(transforms: Transform[], ctx: PluginContext): Promise<void> {
    const previous = this.catalog?.lastArtifactSizes(this.job);
    for (const sourcePlan of this.plan.sources) {
      const sourceCtx = { ...ctx, logger: ctx.logger.child({ source: sourcePlan.name }) };
      const before = this.artifacts.length;
      try {
        await this.storeSource(sourcePlan, transforms, previous, sourceCtx);
      } catch (error) {
        if (ctx.signal.aborted) throw error;
        if (this.lost.size === this.destinations.length) throw error; // no destination is left: not the source's fault
        this.failures.push({ source: sourcePlan.name, error });
        this.artifacts.splice(before);
        sourceCtx.logger.error(
          `source ${sourcePlan.name} failed: ${errorSummary(error, this.redact).message}`,
        );
        await removeObjects(this.destinations, this.folders, this.artifacts, ctx);
      }
    }
    if (this.failures.length > 0 && this.artifacts.length === 0) throw this.failures[0]!.error;
  }

  private async storeSource(
    sourcePlan: SourcePlan,
    transforms: Transform[],
    previous: Previous,
    ctx: PluginContext,
  ): Promise<void> {
    const { name, options } = sourcePlan;
    const source = createSource(this.options.config, sourcePlan);
    const onProgress = this.options.onProgress;
    for await (const artifact of source.backup(ctx)) {
      const badName = checkArtifactName(
        artifact.name,
        this.artifacts.map((a) => a.name),
      );
      if (badName) {
        artifact.stream.destroy();
        throw new SourceError(badName);
      }
      const total = previous?.sizes.get(artifact.name);
      const record = await storeArtifact(
        artifact,
        name,
        options.type,
        transforms,
        this.destinations,
        this.folders,
        {
          ctx,
          lost: this.lost,
          partSize: this.plan.settings.split,
          onProgress:
            onProgress &&
            ((bytes, elapsed) =>
              onProgress({
                phase: "backup",
                job: this.job,
                source: name,
                artifact: artifact.name,
                bytes,
                elapsed,
                ...(total ? { total } : {}),
              })),
        },
      );
      record.restoreWithoutCairn = restorePipeline(
        record,
        this.options.config,
        source.restoreCommand?.(record),
      );
      this.artifacts.push(record);
      warnAboutSize(record, previous, ctx.logger);
      ctx.logger.info("artifact stored", {
        name: record.name,
        bytes: record.rawSize,
        objects: record.objects.length,
      });
      crashPoint("backup:artifact-stored");
    }
  }

  private manifest(): Manifest {
    return {
      format: MANIFEST_FORMAT,
      tool: { name: "cairn", version: VERSION },
      job: this.job,
      id: this.id,
      host: hostname(),
      startedAt: this.started.toISOString(),
      finishedAt: new Date().toISOString(),
      tags: this.plan.settings.tags,
      ...(this.failures.length > 0
        ? {
            status: "partial" as const,
            failures: this.failures.map((f) => ({
              source: f.source,
              message: errorSummary(f.error, this.redact).message,
            })),
          }
        : {}),
      artifacts: this.artifacts,
    };
  }

  /** The manifest on every destination still in the run (its signature first). */
  private async writeManifest(
    signingKey: ReturnType<JobRun["signingKey"]>,
    ctx: PluginContext,
  ): Promise<void> {
    const live = this.destinations.filter((d) => !this.lost.has(d.name));
    const manifest = this.manifest();
    const body = `${JSON.stringify(manifest, null, 2)}\n`;
    const signature = signingKey ? signManifest(body, signingKey) : undefined;
    crashPoint("backup:before-manifest");
    const written = await Promise.allSettled(
      live.map(async (d) => {
        // The signature first: a manifest is never visible without it.
        if (signature)
          await d.storage.put(`${this.folders[d.name]}/${SIGNATURE_NAME}`, Readable.from([signature]), ctx);
        await d.storage.put(`${this.folders[d.name]}/${MANIFEST_NAME}`, Readable.from([body]), ctx);
      }),
    );
    live.forEach((d, i) => {
      const outcome = written[i]!;
      if (outcome.status === "rejected") {
        this.lost.set(
          d.name,
          new StorageError(`could not store the manifest: ${describeError(outcome.reason)}`),
        );
        return;
      }
      // A destination that has its manifest holds a complete, good snapshot: it stays.
      this.complete.add(d.name);
      this.catalog?.recordSnapshot({
        job: this.job,
        id: this.id,
        destination: d.name,
        folder: this.folders[d.name]!,
        manifest,
        text: body,
      });
    });
    crashPoint("backup:manifest-written");
  }

  /** A lost destination or a failed source fails the run, after the good part is stored. */
  private failIfIncomplete(): void {
    if (this.lost.size > 0) {
      const why = [...this.lost].map(([name, e]) => `${name}: ${describeError(e)}`).join("; ");
      const stored = [...this.complete];
      throw new StorageError(
        stored.length > 0
          ? `stored on ${stored.join(", ")} only; failed on ${why}`
          : `no destination stored the snapshot: ${why}`,
        stored.length > 0
          ? { hint: "the snapshot is good where it was stored; fix the failed destination and back up again" }
          : {},
      );
    }
    if (this.failures.length > 0) {
      const names = this.failures.map((f) => f.source).join(", ");
      const first = this.failures[0]!.error;
      throw new SourceError(
        `${this.failures.length} of ${this.plan.sources.length} sources failed (${names}): ${describeError(first)}`,
        {
          hint: "the snapshot keeps the other sources and is marked partial",
          ...((first as SourceError).stderrTail ? { stderrTail: (first as SourceError).stderrTail! } : {}),
        },
      );
    }
  }

  private succeeded(ctx: PluginContext): JobResult {
    const done = this.result();
    if (this.runId !== undefined)
      this.catalog?.finishRun(this.runId, {
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
  }

  private async failed(caught: unknown, ctx: PluginContext): Promise<JobResult> {
    const error = ctx.signal.aborted ? interrupted(ctx.signal) : caught;
    this.hookError = describeError(error);
    if (!this.dryRun && this.hooksStarted)
      await this.hook("on_error", "failed", ctx).catch((e: unknown) => ctx.logger.error(describeError(e)));
    const failed = this.result(error);
    ctx.logger.error(
      `backup failed: ${failed.error!.message}`,
      failed.error?.hint ? { hint: failed.error.hint } : {},
    );
    if (failed.error?.stderr) ctx.logger.error(`last output of the failing program:\n${failed.error.stderr}`);
    if (this.runId !== undefined)
      this.catalog?.finishRun(this.runId, {
        status: this.complete.size > 0 ? "partial" : "failed",
        error: failed.error!.message,
        rawBytes: failed.rawBytes,
        storedBytes: failed.storedBytes,
      });
    await removeObjects(
      this.destinations.filter((d) => !this.complete.has(d.name)),
      this.folders,
      [],
      ctx,
    );
    return failed;
  }

  private result(error?: unknown): JobResult {
    const finished = new Date();
    const storedOf = (a: ArtifactRecord) => a.objects.reduce((t, o) => t + o.size, 0);
    return {
      job: this.job,
      ok: error === undefined,
      snapshot: this.id,
      startedAt: this.started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - this.started.getTime(),
      rawBytes: this.artifacts.reduce((s, a) => s + a.rawSize, 0),
      storedBytes: this.artifacts.reduce((s, a) => s + storedOf(a), 0),
      artifacts: this.artifacts.map((a) => ({
        source: a.source,
        name: a.name,
        rawBytes: a.rawSize,
        storedBytes: storedOf(a),
        objects: a.objects.length,
      })),
      destinations: Object.fromEntries(
        Object.entries(this.folders).filter(([name]) => this.complete.has(name)),
      ),
      ...(this.lost.size
        ? {
            failedDestinations: Object.fromEntries(
              [...this.lost].map(([name, e]) => [name, errorSummary(e, this.redact).message]),
            ),
          }
        : {}),
      ...(error !== undefined && this.complete.size > 0 && (this.lost.size > 0 || this.failures.length > 0)
        ? { partial: true }
        : {}),
      ...(error === undefined ? {} : { error: errorSummary(error, this.redact) }),
      ...(Object.keys(this.notDue).length ? { notDue: { ...this.notDue } } : {}),
    };
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
