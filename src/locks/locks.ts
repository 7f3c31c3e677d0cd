/**
 * A job never runs twice at once. Two locks, both named after who holds them:
 * - a local lock file in the state folder, taken with O_EXCL; one left by a process that died on
 *   this host (its pid is gone) is taken over;
 * - a lock object on each destination, for several hosts sharing one (destination.ts).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { LockError } from "../kit/errors.ts";
import { alive, describe, type Lock, type LockHolder } from "./holder.ts";

export type { Lock, LockHolder } from "./holder.ts";

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

export { type DestinationLock, lockDestinations, lockFolder } from "./destination.ts";
