/**
 * A job never runs twice at once. Two locks, both named after who holds them:
 * - a local lock file in the state folder, taken with O_EXCL; one left by a process that died on
 *   this host (its pid is gone) is taken over;
 * - a lock object on each destination, for several hosts sharing one: written with the storage's
 *   never-overwrite put, so only one writer gets it; one whose holder ran on this host and is
 *   gone is taken over at once, one from another host once it expires (`expiresAfterMs`).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Destination } from "../core/context.ts";
import { readText } from "../core/snapshot.ts";
import { CairnError, LockError } from "../errors.ts";
import type { PluginContext } from "../types.ts";

export interface LockHolder {
  host: string;
  pid: number;
  /** What it is doing: `backup`, `prune` … */
  operation: string;
  since: string;
  /** Destination locks only: when another host may take it over. */
  expires?: string;
}

const describe = (holder: LockHolder) =>
  `${holder.operation} by pid ${holder.pid} on ${holder.host}, since ${holder.since}`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface Lock {
  release(): Promise<void>;
}

/** The local lock of `job` in `stateDir`. */
export function lockLocally(stateDir: string, job: string, operation: string): Lock {
  const dir = join(stateDir, "locks");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${job}.lock`);
  const me: LockHolder = { host: hostname(), pid: process.pid, operation, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, `${JSON.stringify(me)}\n`, { flag: "wx", mode: 0o600 });
      return {
        release: async () => rmSync(file, { force: true }),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(readFileSync(file, "utf8")) as LockHolder;
    } catch {
      holder = undefined; // half-written by a process killed at that moment
    }
    const stale = !holder || (holder.host === me.host && !alive(holder.pid));
    if (!stale)
      throw new LockError(`job ${job} is already running: ${describe(holder as LockHolder)}`, {
        hint:
          holder?.host === me.host
            ? "wait for it to finish (cairn never runs a job twice at once)"
            : `it runs on another host sharing this state folder; if it is gone, remove ${file}`,
      });
    rmSync(file, { force: true }); // the holder died: take over
  }
  throw new LockError(`job ${job}: could not take the lock ${file}`);
}

/**
 * Key of the lock object of `job` on a destination: in a folder of its own at the destination's
 * top, outside every job's snapshot folders (listings, pruning and clean-ups never meet it).
 */
export function lockKey(job: string): string {
  return `.cairn-locks/${job}`;
}

/** The lock object of `job` on each destination; all or none. */
export async function lockDestinations(
  destinations: Destination[],
  job: string,
  operation: string,
  expiresAfterMs: number,
  ctx: PluginContext,
): Promise<Lock> {
  const taken: Destination[] = [];
  const release = async () => {
    await Promise.allSettled(taken.map((d) => d.storage.delete(lockKey(job), ctx)));
  };
  try {
    for (const destination of destinations) {
      await lockOne(destination, job, operation, expiresAfterMs, ctx);
      taken.push(destination);
    }
  } catch (error) {
    await release();
    throw error;
  }
  return { release };
}

async function lockOne(
  destination: Destination,
  job: string,
  operation: string,
  expiresAfterMs: number,
  ctx: PluginContext,
): Promise<void> {
  const key = lockKey(job);
  const now = new Date();
  const me: LockHolder = {
    host: hostname(),
    pid: process.pid,
    operation,
    since: now.toISOString(),
    expires: new Date(now.getTime() + expiresAfterMs).toISOString(),
  };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await destination.storage.put(key, Readable.from([Buffer.from(JSON.stringify(me))]), ctx);
      return;
    } catch (error) {
      if (!(error instanceof CairnError) || !/already exists/.test(error.message)) throw error;
    }
    let holder: LockHolder | undefined;
    try {
      holder = JSON.parse(await readText(destination.storage, key, ctx)) as LockHolder;
    } catch {
      holder = undefined;
    }
    const expired = !holder?.expires || new Date(holder.expires).getTime() < now.getTime();
    // A holder on this host can be checked: one whose process is gone (kill -9, a crash, a
    // reboot) does not hold the job for the rest of lock_expires.
    const deadHere = holder?.host === me.host && !alive(holder.pid);
    if (!expired && !deadHere)
      throw new LockError(
        `job ${job} is locked on destination ${destination.name}: ${describe(holder as LockHolder)}, until ${holder?.expires}`,
        {
          hint: `another host is working on this job there; if it is gone, wait until the lock expires or delete ${key} on ${destination.name}`,
        },
      );
    await destination.storage.delete(key, ctx); // expired, or its process is gone: take over
  }
  throw new LockError(`job ${job}: could not take the lock ${key} on destination ${destination.name}`);
}
