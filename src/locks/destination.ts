/**
 * The lock of a job on a destination shared by several hosts, exclusive on any storage that lists
 * what it has stored (restic's protocol, with one winner): each taker writes a lock object of its
 * own under `.cairn-locks/JOB/`, then lists them; it holds the lock only if no other live one is
 * there, else it removes its own and backs off. Two takers that write at once both see each other
 * and back off (with jitter, then try again); one that comes later sees the first. No storage
 * feature is needed beyond put and list (S3's overwrite-silently put cannot make it racy).
 *
 * A holder refreshes its lock object while it works (a new object, then the old one removed), so
 * `lock_expires` only has to outlast a missed refresh, not the longest run. A lock object is stale
 * once its holder has not refreshed it for that long (by the destination's own object times where
 * it keeps them), or at once when its holder ran on this host and its process is gone. A holder
 * whose lock object was taken over (it could not refresh in time) learns it before it writes
 * anything that counts (`assertHeld`).
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type { Destination } from "../engine/context.ts";
import { readText } from "../engine/snapshot.ts";
import type { ObjectInfo, PluginContext, Storage } from "../kit/contracts.ts";
import { CairnError, LockError, NotFoundError } from "../kit/errors.ts";
import { retryTransient } from "../wrappers/retry.ts";
import { alive, describe, type Lock, type LockHolder } from "./holder.ts";

/** Folder of the lock objects of `job` on a destination, outside every job's snapshot folders. */
export const lockFolder = (job: string): string => `.cairn-locks/${job}/`;

/** Takers that wrote within this long of each other are racing, not holding: they back off and retry. */
const RACE_WINDOW_MS = 10_000;
const ATTEMPTS = 4;
const LOCK_RETRIES = { attempts: ATTEMPTS, baseDelayMs: 500, maxDelayMs: 4000 };

export interface DestinationLock extends Lock {
  /** Throws a LockError unless every lock object of this lock is still there (none was taken over). */
  assertHeld(ctx: PluginContext): Promise<void>;
  /** The current lock object's key on the destination named. */
  keyOn(destination: string): string | undefined;
}

interface Held {
  destination: Destination;
  key: string;
}

/** The lock of `job` on each destination, all or none, refreshed until released. */
export async function lockDestinations(
  destinations: Destination[],
  job: string,
  operation: string,
  expiresAfterMs: number,
  ctx: PluginContext,
): Promise<DestinationLock> {
  const since = new Date().toISOString();
  const held: Held[] = [];
  let lost: LockError | undefined;
  const removeAll = () => Promise.allSettled(held.map((h) => h.destination.storage.delete(h.key, ctx)));
  try {
    for (const destination of destinations)
      held.push({
        destination,
        key: await lockOne(destination, job, { operation, since, expiresAfterMs }, ctx),
      });
  } catch (error) {
    await removeAll();
    throw error;
  }
  let refreshing = Promise.resolve();
  const timer = setInterval(
    () => {
      refreshing = refreshing.then(async () => {
        for (const h of held) {
          const problem = await refresh(h, { operation, since, expiresAfterMs }, ctx);
          if (problem) lost ??= problem;
        }
      });
    },
    Math.max(500, Math.floor(expiresAfterMs / 3)),
  );
  timer.unref();
  return {
    assertHeld: async (checkCtx) => {
      await refreshing;
      if (lost) throw lost;
      for (const h of held) if (!(await h.destination.storage.stat(h.key, checkCtx))) throw takenOver(h);
    },
    keyOn: (name) => held.find((h) => h.destination.name === name)?.key,
    release: async () => {
      clearInterval(timer);
      await refreshing;
      await removeAll();
    },
  };
}

const takenOver = (h: Held) =>
  new LockError(
    `the lock on destination ${h.destination.name} was taken over by another run while this one held it (its refresh came too late); nothing more was written there`,
    {
      hint: "another run may be working on this job there now; raise lock_expires if this host can pause for long",
    },
  );

interface Claim {
  operation: string;
  since: string;
  expiresAfterMs: number;
}

function holderNow(claim: Claim): LockHolder {
  const now = Date.now();
  return {
    host: hostname(),
    pid: process.pid,
    operation: claim.operation,
    since: claim.since,
    refreshed: new Date(now).toISOString(),
    expires: new Date(now + claim.expiresAfterMs).toISOString(),
  };
}

/** Writes a new lock object for `h`, then removes the old one; a LockError if the old one was taken over. */
async function refresh(h: Held, claim: Claim, ctx: PluginContext): Promise<LockError | undefined> {
  const storage = h.destination.storage;
  try {
    if (!(await storage.stat(h.key, ctx))) return takenOver(h);
    const key = await writeClaim(storage, h.key.slice(0, h.key.lastIndexOf("/") + 1), holderNow(claim), ctx);
    const old = h.key;
    h.key = key;
    await storage.delete(old, ctx);
  } catch (error) {
    ctx.logger.warn(`could not refresh the lock on destination ${h.destination.name}; trying again later`, {
      error: (error as Error).message,
    });
  }
  return undefined;
}

async function lockOne(
  destination: Destination,
  job: string,
  claim: Claim,
  ctx: PluginContext,
): Promise<string> {
  const folder = lockFolder(job);
  const storage = destination.storage;
  for (let attempt = 1; ; attempt++) {
    const mine = await writeClaim(storage, folder, holderNow(claim), ctx);
    const others = await liveOthers(storage, folder, mine, claim.expiresAfterMs, ctx);
    if (others.length === 0) return mine;
    await storage.delete(mine, ctx);
    const racing = others.every((o) => o.racing);
    if (!racing || attempt >= ATTEMPTS) {
      const holder = others[0]!.holder;
      throw new LockError(
        `job ${job} is locked on destination ${destination.name}: ${holder ? `${describe(holder)}, until ${holder.expires}` : `by ${others[0]!.key}`}`,
        {
          hint: `another host is working on this job there; a lock whose holder is gone is taken over once it has not been refreshed for lock_expires (or delete ${others[0]!.key} on ${destination.name})`,
        },
      );
    }
    await sleep(200 + Math.random() * 800 * attempt, undefined, { signal: ctx.signal });
  }
}

/** Puts a lock object under a name no one else uses; transient failures are tried again. */
async function writeClaim(
  storage: Storage,
  folder: string,
  holder: LockHolder,
  ctx: PluginContext,
): Promise<string> {
  const key = `${folder}${holder.host}-${holder.pid}-${randomBytes(4).toString("hex")}.json`;
  const body = Buffer.from(`${JSON.stringify(holder)}\n`);
  // Puts are not retried by the destination's wrapper (their body is a stream); this one is a buffer.
  return retryTransient(LOCK_RETRIES, ctx, `writing the lock ${key}`, storage.location, async () => {
    try {
      await storage.put(key, Readable.from([body]), ctx);
    } catch (error) {
      // The name is this run's own: "already exists" means an earlier attempt got through.
      if (!(error instanceof CairnError && /already exists/.test(error.message))) throw error;
    }
    return key;
  });
}

interface Other {
  key: string;
  holder: LockHolder | undefined;
  /** Written within the race window of ours and never refreshed: a taker racing this one. */
  racing: boolean;
}

/** The lock objects in `folder` other than `mine` that still hold; stale ones are removed. */
async function liveOthers(
  storage: Storage,
  folder: string,
  mine: string,
  expiresAfterMs: number,
  ctx: PluginContext,
): Promise<Other[]> {
  const objects: ObjectInfo[] = [];
  for await (const object of storage.list(folder, ctx)) objects.push(object);
  const own = objects.find((o) => o.key === mine);
  const now = own?.modified?.getTime();
  const live: Other[] = [];
  for (const object of objects) {
    if (object.key === mine) continue;
    const holder = await readHolder(storage, object.key, ctx);
    if (holder === null) continue; // removed since the listing
    const written = object.modified?.getTime();
    const age = now !== undefined && written !== undefined ? now - written : undefined;
    if (isStale(holder, age, expiresAfterMs)) {
      ctx.logger.info(`taking over a stale lock ${object.key}`, holder ? { holder: describe(holder) } : {});
      await storage.delete(object.key, ctx);
      continue;
    }
    const fresh =
      age !== undefined
        ? age < RACE_WINDOW_MS
        : Date.now() - Date.parse(holder?.since ?? "") < RACE_WINDOW_MS;
    live.push({ key: object.key, holder, racing: fresh && holder?.since === holder?.refreshed });
  }
  return live;
}

/** The holder a lock object names; undefined when unreadable (half-written), null when gone. */
async function readHolder(
  storage: Storage,
  key: string,
  ctx: PluginContext,
): Promise<LockHolder | undefined | null> {
  try {
    return JSON.parse(await readText(storage, key, ctx)) as LockHolder;
  } catch (error) {
    return error instanceof NotFoundError ? null : undefined;
  }
}

/**
 * Stale: its holder ran here and is gone, or it has not been refreshed for its time to live — by the
 * destination's clock (`age`: our object's time minus its) where there is one, else by its own date.
 */
function isStale(holder: LockHolder | undefined, age: number | undefined, expiresAfterMs: number): boolean {
  if (holder && holder.host === hostname() && !alive(holder.pid)) return true;
  const ttl =
    holder?.expires && holder.refreshed
      ? Date.parse(holder.expires) - Date.parse(holder.refreshed)
      : expiresAfterMs;
  if (age !== undefined) return age > ttl;
  return holder?.expires ? Date.parse(holder.expires) < Date.now() : false;
}
