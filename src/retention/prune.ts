/**
 * Pruning: for each destination of a job that has a retention policy, read the snapshots from the
 * destination itself, plan with `planRetention`, and remove what the plan removes — each
 * snapshot's manifest first, so a half-removed snapshot never looks good. Nothing is removed from a
 * destination whose listing failed or that holds a manifest cairn cannot read. Folders of runs that
 * died before writing their manifest are removed once older than `leftovers_grace`.
 */

import {
  closeDestinations,
  type Destination,
  openDestinations,
  type RunOptions,
  withContext,
} from "../engine/context.ts";
import { crashPoint } from "../engine/crash.ts";
import { planOf } from "../engine/plan.ts";
import { choose, type Selection } from "../engine/select.ts";
import {
  listingPrefix,
  listSnapshots,
  type SnapshotRef,
  snapshotFolderPattern,
  snapshotTime,
  type UnfinishedFolder,
} from "../engine/snapshot.ts";
import { events, newSession } from "../events/events.ts";
import { MANIFEST_NAME, type PluginContext } from "../kit/contracts.ts";
import { type DestinationLock, type Lock, lockDestinations, lockLocally } from "../locks/locks.ts";
import { type Decision, futureSnapshots, planRetention, type SnapshotFacts } from "./policy.ts";
import { policyOf } from "./schema.ts";

export interface PruneOptions extends RunOptions, Selection {
  /** One job, or every configured job. */
  job?: string;
  /** Only this destination of the job. */
  destination?: string;
  /** Plan and report, remove nothing. */
  dryRun?: boolean;
  /** "now" for max_age and leftovers (tests). */
  now?: Date;
  /** The session of the action this prune belongs to (a backup's, after it); default a new one per job. */
  session?: string;
  /** Destinations of `job` already open (a backup's, after it): pruned through them, left open. */
  opened?: Destination[];
}

export interface DestinationPrune {
  job: string;
  destination: string;
  /** Why nothing was pruned here, when nothing was. */
  skipped?: string;
  keep: Decision[];
  remove: Decision[];
  /** Snapshot folders without a manifest, older than the grace period. */
  leftovers: string[];
  /** Temporary objects of uploads that never finished (killed runs), older than the grace period. */
  temporary: string[];
  /** Removals that failed (the rest went on). */
  errors: { id: string; error: string }[];
}

export interface PruneResult {
  dryRun: boolean;
  destinations: DestinationPrune[];
}

export async function prune(options: PruneOptions): Promise<PruneResult> {
  const chosen = choose(
    options.config,
    options.job ? [options.job] : Object.keys(options.config.jobs),
    options,
  );
  const now = options.now ?? new Date();
  const dryRun = options.dryRun ?? false;
  return withContext(options, async (outer) => {
    const destinations: DestinationPrune[] = [];
    for (const job of chosen.jobs) {
      const session = options.session ?? newSession();
      const ctx = { ...outer, logger: outer.logger.child({ session }) };
      const done = destinations.length;
      await events.around(
        "before_prune",
        { session, job },
        ctx.logger,
        () => pruneJob(job, session, ctx),
        () => ({ result: destinations.slice(done) }),
      );
    }
    return { dryRun, destinations };

    async function pruneJob(job: string, session: string, ctx: PluginContext): Promise<void> {
      const opened =
        options.opened ??
        (await openDestinations(options.config, job, options.destination, {
          include: chosen.destinations(job),
        }));
      const locks: Lock[] = [];
      let held: DestinationLock | undefined;
      try {
        if (!dryRun) {
          locks.push(lockLocally(options.config.stateDir, job, "prune"));
          const { lock_expires } = planOf(options.config, job).settings;
          held = await lockDestinations(opened, job, "prune", lock_expires, ctx);
          locks.push(held);
          crashPoint("prune:locked");
        }
        for (const destination of opened) {
          const clock = held ? await destinationClock(destination, held, ctx) : undefined;
          destinations.push(await pruneOne(job, destination, { now, clock, dryRun, held, session }, ctx));
        }
      } finally {
        for (const lock of locks.reverse()) await lock.release().catch(() => {});
        if (!options.opened) await closeDestinations(opened);
      }
    }
  });
}

/** Clocks may be off by this much before pruning refuses to trust them. */
const CLOCK_TOLERANCE_MS = 5 * 60_000;

/**
 * The destination's own "now": the time it gave the lock object this prune just wrote, where it
 * keeps object times, with the local clock read at the same moment.
 */
async function destinationClock(destination: Destination, held: DestinationLock, ctx: PluginContext) {
  const local = Date.now();
  const key = held.keyOn(destination.name);
  const info = key ? await destination.storage.stat(key, ctx).catch(() => undefined) : undefined;
  return info?.modified ? { remote: info.modified.getTime(), local } : undefined;
}

interface PruneTimes {
  /** "now" for the policy (the real clock, unless a test pretends). */
  now: Date;
  /** The destination's clock against this host's, when it has one. */
  clock: { remote: number; local: number } | undefined;
  dryRun: boolean;
  session: string;
  /** The destination locks of this prune: checked before each removal. */
  held?: DestinationLock | undefined;
}

/** Why the clocks cannot be trusted for pruning, or undefined when they can. */
function clockProblem(
  snapshots: SnapshotRef[],
  facts: SnapshotFacts[],
  times: PruneTimes,
): string | undefined {
  const { clock, now } = times;
  if (clock && Math.abs(clock.local - clock.remote) > CLOCK_TOLERANCE_MS) {
    const minutes = Math.round((clock.local - clock.remote) / 60_000);
    return `this host's clock is ${Math.abs(minutes)} minutes ${minutes > 0 ? "ahead of" : "behind"} the destination's: nothing was removed — fix the clock (NTP) and prune again`;
  }
  const future = futureSnapshots(
    facts,
    clock ? new Date(Math.max(now.getTime(), clock.remote)) : now,
    CLOCK_TOLERANCE_MS,
  );
  if (future.length === 0) return undefined;
  const first = snapshots.find((s) => s.id === future[0]!.id)!;
  return `${future.length} snapshot(s) are dated in the future (${first.id}, made on ${first.manifest.host} at ${first.manifest.startedAt}): a host's clock is wrong, so nothing was removed — fix that host's clock; the snapshot's time is what its host said`;
}

function factsOf(snapshots: SnapshotRef[], times: PruneTimes): SnapshotFacts[] {
  const { clock } = times;
  return snapshots.map((s) => ({
    id: s.id,
    time: new Date(s.manifest.startedAt),
    good: (s.manifest.status ?? "complete") === "complete",
    ...(clock && s.stored ? { storedAge: clock.remote - s.stored.getTime() } : {}),
  }));
}

async function pruneOne(
  job: string,
  destination: Destination,
  times: PruneTimes,
  ctx: PluginContext,
): Promise<DestinationPrune> {
  const { now, dryRun } = times;
  const report: DestinationPrune = {
    job,
    destination: destination.name,
    keep: [],
    remove: [],
    leftovers: [],
    temporary: [],
    errors: [],
  };
  const settings = destination.retention;
  if (!settings) return { ...report, skipped: "no retention policy: every snapshot is kept" };
  const { storage } = destination;
  let found: Awaited<ReturnType<typeof listSnapshots>>;
  try {
    found = await listSnapshots(storage, destination.name, destination.template, job, ctx);
  } catch (error) {
    return { ...report, skipped: `the listing failed, so nothing was removed: ${(error as Error).message}` };
  }
  if (found.unreadable.length > 0)
    return {
      ...report,
      skipped: `${found.unreadable.length} manifest(s) could not be read (${found.unreadable[0]?.key}: ${found.unreadable[0]?.error}); nothing was removed — check them with cairn verify`,
    };
  const facts = factsOf(found.snapshots, times);
  const distrust = clockProblem(found.snapshots, facts, times);
  if (distrust) return { ...report, skipped: distrust };
  const plan = planRetention(facts, policyOf(settings), now);
  // Objects the service bills for a minimum time anyway are removed once that time is over.
  const minimumDays = storage.capabilities.minimumStorageDays ?? 0;
  if (minimumDays > 0 && settings.early_deletion === "keep") {
    const billedUntil = (d: Decision) => new Date(d.time.getTime() + minimumDays * 86_400_000);
    for (const decision of plan.remove.filter((d) => billedUntil(d) > now)) {
      const until = billedUntil(decision)
        .toISOString()
        .replace(/\.\d+Z$/, "Z");
      plan.keep.push({
        ...decision,
        reasons: [
          ...decision.reasons,
          `kept until ${until}: ${storage.location} bills ${minimumDays} days anyway`,
        ],
      });
    }
    plan.remove = plan.remove.filter((d) => billedUntil(d) <= now);
    plan.keep.sort((a, b) => b.time.getTime() - a.time.getTime());
  }
  report.keep = plan.keep;
  report.remove = plan.remove;

  report.leftovers = leftovers(found.unfinished, destination.template, settings.leftovers_grace, times);
  report.temporary = await staleTemporaries(destination, job, settings.leftovers_grace, times, ctx);
  if (dryRun) return report;

  const folderOf = new Map(found.snapshots.map((s) => [s.id, s.folder]));
  const reasonsOf = new Map(plan.remove.map((d) => [d.id, d.reasons.join("; ")]));
  const where = { job, destination: destination.name };
  const removing = { report, held: times.held, ctx };
  await removeEach(
    plan.remove.map((d) => d.id),
    async (id) => {
      const folder = folderOf.get(id) as string;
      const facts = { session: times.session, job, destination: destination.name, snapshot: id };
      await events.around("before_delete", facts, ctx.logger, async () => {
        // The manifest goes first: from then on the snapshot is not good, whatever remains.
        await storage.delete(`${folder}/${MANIFEST_NAME}`, ctx);
        crashPoint("prune:manifest-removed");
        await removeFolder(destination, folder, ctx);
        ctx.logger.info("removed snapshot", { ...where, id, why: reasonsOf.get(id) });
      });
    },
    removing,
  );
  await removeEach(
    report.leftovers,
    async (folder) => {
      await removeFolder(destination, folder, ctx);
      ctx.logger.info("removed the leftovers of a run that died", { ...where, folder });
    },
    removing,
  );
  await removeEach(
    report.temporary,
    async (key) => {
      await storage.delete(key, ctx);
      ctx.logger.info("removed the temporary object of an upload that never finished", { ...where, key });
    },
    removing,
  );
  return report;
}

/**
 * Removes each item while this prune's lock is held (a lock taken over stops the prune, exit 11);
 * a removal that fails is reported and the others go on.
 */
async function removeEach(
  items: string[],
  remove: (item: string) => Promise<void>,
  { report, held, ctx }: { report: DestinationPrune; held: DestinationLock | undefined; ctx: PluginContext },
): Promise<void> {
  for (const item of items) {
    await held?.assertHeld(ctx);
    try {
      await remove(item);
    } catch (error) {
      report.errors.push({ id: item, error: (error as Error).message });
    }
  }
}

/**
 * Temporary objects (which listings hide) in the job's own snapshot folders whose last write, by the
 * destination's clock where it has one, is older than the grace period: an upload still running
 * keeps writing its own, so it is never one of them.
 */
async function staleTemporaries(
  destination: Destination,
  job: string,
  grace: number,
  times: PruneTimes,
  ctx: PluginContext,
): Promise<string[]> {
  const { storage, template } = destination;
  if (!storage.listTemporary || !ownsFolders(template)) return [];
  const own = snapshotFolderPattern(template, job);
  const now = times.clock?.remote ?? times.now.getTime();
  const stale: string[] = [];
  for await (const object of storage.listTemporary(listingPrefix(template, job), ctx)) {
    const folder = object.key.slice(0, object.key.lastIndexOf("/"));
    if (own.test(folder) && object.modified && now - object.modified.getTime() > grace)
      stale.push(object.key);
  }
  return stale;
}

/**
 * Folders of runs that died, once older than the grace period by the id's time and by the
 * destination's time of their newest object (a run still writing is never one). Only where the
 * template names the job: without `{job}`, a folder without a manifest cannot say whose it is.
 */
function leftovers(
  unfinished: UnfinishedFolder[],
  template: string,
  grace: number,
  times: PruneTimes,
): string[] {
  if (!ownsFolders(template)) return [];
  const { now, clock } = times;
  return unfinished
    .filter(({ folder, newest }) => {
      const id = folder.slice(folder.lastIndexOf("/") + 1);
      if (now.getTime() - snapshotTime(id).getTime() <= grace) return false;
      return !(clock && newest && clock.remote - newest.getTime() <= grace);
    })
    .map((f) => f.folder);
}

/**
 * Whether a folder the template makes can only be one job's: it names `{job}`, and never in the
 * same folder name as `{hostname}` (where `web-a` could be host `web` and job `a`, or host `web-a`).
 */
function ownsFolders(template: string): boolean {
  const segments = template.split("/");
  return (
    segments.some((s) => s.includes("{job}")) &&
    !segments.some((s) => s.includes("{job}") && s.includes("{hostname}"))
  );
}

async function removeFolder(destination: Destination, folder: string, ctx: PluginContext): Promise<void> {
  const keys: string[] = [];
  for await (const object of destination.storage.list(`${folder}/`, ctx)) keys.push(object.key);
  for (const key of keys) await destination.storage.delete(key, ctx);
}
