/**
 * `cairn backup` as a library call: the jobs one after another, each a JobRun (job-run.ts) with
 * its events, notifications and the prune after it.
 */
import { hostname } from "node:os";
import { Catalog } from "../catalog/catalog.ts";
import { events, newSession } from "../events/events.ts";
import type { RunEvent } from "../kit/contracts.ts";
import { silentLogger } from "../kit/logger.ts";
import { type DestinationPrune, prune } from "../retention/prune.ts";
import type { Destination, RunOptions } from "./context.ts";
import { JobRun } from "./job-run.ts";
import { disabledJobs } from "./jobs.ts";
import { notify } from "./notify.ts";
import { type JobPlan, planOf } from "./plan.ts";
import type { Progress } from "./progress.ts";
import { choose, type Selection } from "./select.ts";

export type { Progress } from "./progress.ts";

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
  for (const name of names) planOf(options.config, name);
  const chosen = choose(options.config, names, options);
  for (const job of chosen.left) options.logger?.info("left out by --only/--skip", { job });
  const catalog =
    options.catalog === false || options.dryRun ? undefined : await Catalog.open(options.config.stateDir);
  try {
    const jobs: JobResult[] = [];
    for (const name of chosen.jobs)
      jobs.push(await backupOne(name, options, catalog, chosen.destinations(name)));
    return { ok: jobs.every((j) => j.ok), jobs };
  } finally {
    catalog?.close();
  }
}

/**
 * One job: its events and notifications around the run, and the prune after it (on the run's
 * destinations, still open), all under one session id.
 */
async function backupOne(
  name: string,
  options: BackupOptions,
  catalog: Catalog | undefined,
  include: Set<string> | undefined,
): Promise<JobResult> {
  // One session per job's run: its log lines, hooks and events carry the id.
  const session = options.session ?? newSession();
  const run = { ...options, logger: (options.logger ?? silentLogger).child({ session }), session };
  const notifyOptions = {
    ...(options.notify ? { only: options.notify } : {}),
    ...(options.sentryDsn ? { env: { SENTRY_DSN: options.sentryDsn } } : {}),
    logger: run.logger,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const plan = planOf(options.config, name);
  const jobRun = new JobRun(plan, run, catalog, include);
  await events.emit("before_backup", { session, job: name }, run.logger);
  if (!options.dryRun) await notify(options.config, { ...startEvent(jobRun), session }, notifyOptions);
  let done: JobResult;
  try {
    done = await jobRun.run();
    if (done.ok && !done.skipped && !options.dryRun) {
      const pruned = await pruneAfterBackup(plan, run, jobRun.opened);
      if (pruned.length) done.pruned = pruned;
    }
  } finally {
    await jobRun.close();
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
  return done;
}

/** The start of a run, with the id its snapshot will have. */
function startEvent(run: JobRun): RunEvent {
  return {
    kind: "start",
    job: run.job,
    snapshot: run.id,
    host: hostname(),
    startedAt: run.started.toISOString(),
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
 * Prunes the run's destinations whose retention says `prune: after_backup`, through the storages
 * the backup opened. A pruning problem is reported with the job, never turned into a failed
 * backup: the snapshot is stored either way.
 */
async function pruneAfterBackup(
  plan: JobPlan,
  options: BackupOptions,
  opened: Destination[],
): Promise<DestinationPrune[]> {
  const due = new Set(
    plan.destinations.filter((d) => d.retention?.prune === "after_backup").map((d) => d.name),
  );
  const reports: DestinationPrune[] = [];
  for (const destination of opened.filter((d) => due.has(d.name))) {
    try {
      const result = await prune({
        config: options.config,
        ...(options.session ? { session: options.session } : {}),
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        job: plan.job,
        destination: destination.name,
        opened: [destination],
      });
      reports.push(...result.destinations);
    } catch (error) {
      reports.push({
        job: plan.job,
        destination: destination.name,
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
        `pruning ${plan.job} on ${report.destination} after the backup: ${report.skipped ?? report.errors.map((e) => `${e.id}: ${e.error}`).join("; ")}`,
      );
  return reports;
}
