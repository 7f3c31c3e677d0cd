import { Catalog } from "../catalog/catalog.ts";
import type { Manifest, PluginContext } from "../kit/contracts.ts";
import { NotFoundError, UsageError } from "../kit/errors.ts";
import {
  closeDestinations,
  type Destination,
  openDestinations,
  type RunOptions,
  withContext,
} from "./context.ts";
import { planOf } from "./plan.ts";
import { byStart, listSnapshots, type SnapshotRef, type UnreadableManifest } from "./snapshot.ts";

export interface SnapshotSummary {
  job: string;
  id: string;
  startedAt: string;
  finishedAt: string;
  host: string;
  tags: string[];
  /** `partial`: some sources failed in that run; the ones listed in `artifacts` are good. */
  status: "complete" | "partial";
  failures: { source: string; message: string }[];
  rawBytes: number;
  storedBytes: number;
  artifacts: { source: string; type: string; name: string; rawBytes: number }[];
  /** Destinations that hold it. */
  destinations: string[];
}

export interface ListOptions extends RunOptions {
  /** One job, or every configured job. */
  job?: string;
}

export interface ListResult {
  snapshots: SnapshotSummary[];
  /** Manifests that could not be read: such snapshots are not good, and not listed. */
  unreadable: UnreadableManifest[];
}

export function summarize(manifest: Manifest, destinations: string[]): SnapshotSummary {
  return {
    job: manifest.job,
    id: manifest.id,
    startedAt: manifest.startedAt,
    finishedAt: manifest.finishedAt,
    host: manifest.host,
    tags: manifest.tags,
    status: manifest.status ?? "complete",
    failures: manifest.failures ?? [],
    rawBytes: manifest.artifacts.reduce((s, a) => s + a.rawSize, 0),
    storedBytes: manifest.artifacts.reduce((s, a) => s + a.objects.reduce((t, o) => t + o.size, 0), 0),
    artifacts: manifest.artifacts.map((a) => ({
      source: a.source,
      type: a.type,
      name: a.name,
      rawBytes: a.rawSize,
    })),
    destinations,
  };
}

async function snapshotsOf(job: string, destinations: Destination[], ctx: PluginContext) {
  const refs: SnapshotRef[] = [];
  const unreadable: UnreadableManifest[] = [];
  for (const d of destinations) {
    const found = await listSnapshots(d.storage, d.name, d.template, job, ctx);
    refs.push(...found.snapshots);
    unreadable.push(...found.unreadable);
  }
  return { refs, unreadable };
}

/** Good snapshots, read from the destinations themselves (the truth), oldest first. */
export async function list(options: ListOptions): Promise<ListResult> {
  const jobs = options.job ? [options.job] : Object.keys(options.config.jobs);
  return withContext(options, async (ctx) => {
    const byKey = new Map<string, { manifest: Manifest; destinations: string[] }>();
    const unreadable: UnreadableManifest[] = [];
    for (const job of jobs) {
      const destinations = await openDestinations(options.config, job);
      try {
        const found = await snapshotsOf(job, destinations, ctx);
        unreadable.push(...found.unreadable);
        for (const ref of found.refs) {
          const key = `${job}@${ref.id}`;
          const entry = byKey.get(key) ?? { manifest: ref.manifest, destinations: [] };
          entry.destinations.push(ref.destination);
          byKey.set(key, entry);
        }
      } finally {
        await closeDestinations(destinations);
      }
    }
    const snapshots = [...byKey.values()].map((e) => summarize(e.manifest, e.destinations));
    snapshots.sort((a, b) => a.job.localeCompare(b.job) || byStart(a, b) || a.id.localeCompare(b.id));
    return { snapshots, unreadable };
  });
}

/** `job`, `job@latest`, `job@<id>` or `job@<unique id prefix>`. */
export function parseSnapshotSpec(spec: string): { job: string; snapshot: string } {
  const at = spec.indexOf("@");
  if (at === 0) throw new UsageError(`"${spec}" names no job: write JOB or JOB@SNAPSHOT`);
  return at === -1
    ? { job: spec, snapshot: "latest" }
    : { job: spec.slice(0, at), snapshot: spec.slice(at + 1) || "latest" };
}

export interface Located {
  ref: SnapshotRef;
  destination: Destination;
  destinations: Destination[];
}

/**
 * Finds a snapshot on the first destination (in config order) that has it, or on the one named.
 * `latest` means the newest that holds `source` when one is named, else the newest complete one.
 */
export async function locateSnapshot(
  options: RunOptions & { job: string; snapshot?: string; destination?: string; source?: string },
  ctx: PluginContext,
): Promise<Located> {
  planOf(options.config, options.job);
  const wanted = options.snapshot ?? "latest";
  const destinations = await openDestinations(options.config, options.job, options.destination);
  try {
    for (const destination of destinations) {
      const { snapshots } = await listSnapshots(
        destination.storage,
        destination.name,
        destination.template,
        options.job,
        ctx,
      );
      if (wanted === "latest") {
        const usable = snapshots.filter((s) =>
          options.source
            ? s.manifest.artifacts.some((a) => a.source === options.source)
            : (s.manifest.status ?? "complete") === "complete",
        );
        if (usable.length > 0) return { ref: usable[usable.length - 1]!, destination, destinations };
        continue;
      }
      const matches = snapshots.filter((s) => s.id.startsWith(wanted));
      if (matches.length > 1)
        throw new UsageError(
          `"${wanted}" matches ${matches.length} snapshots of ${options.job}: give more of the id`,
        );
      if (matches[0]) return { ref: matches[0], destination, destinations };
    }
  } catch (error) {
    await closeDestinations(destinations);
    throw error;
  }
  await closeDestinations(destinations);
  throw new NotFoundError(
    wanted !== "latest"
      ? `no snapshot ${wanted} of job ${options.job}`
      : options.source
        ? `no snapshot of job ${options.job} holds source ${options.source}`
        : `job ${options.job} has no good snapshot yet`,
    { hint: `run: cairn list ${options.job}` },
  );
}

/** Runs `fn` on a located snapshot, closing the destinations afterwards. */
export function withSnapshot<T>(
  options: RunOptions & { job: string; snapshot?: string; destination?: string; source?: string },
  fn: (located: Located, ctx: PluginContext) => Promise<T>,
): Promise<T> {
  return withContext(
    options,
    async (ctx) => {
      const located = await locateSnapshot(options, ctx);
      try {
        return await fn(located, ctx);
      } finally {
        await closeDestinations(located.destinations);
      }
    },
    { job: options.job },
  );
}

export interface RefreshResult {
  job: string;
  snapshots: number;
  unreadable: UnreadableManifest[];
}

/** Recreates the catalog's snapshot table from the manifests on every destination. */
export async function rebuildCatalog(options: ListOptions): Promise<RefreshResult[]> {
  const jobs = options.job ? [options.job] : Object.keys(options.config.jobs);
  const catalog = await Catalog.open(options.config.stateDir);
  try {
    return await withContext(options, async (ctx) => {
      const results: RefreshResult[] = [];
      for (const job of jobs) {
        const destinations = await openDestinations(options.config, job);
        try {
          const found = await snapshotsOf(job, destinations, ctx);
          catalog.replaceSnapshots(job, found.refs);
          results.push({ job, snapshots: found.refs.length, unreadable: found.unreadable });
        } finally {
          await closeDestinations(destinations);
        }
      }
      return results;
    });
  } finally {
    catalog.close();
  }
}
