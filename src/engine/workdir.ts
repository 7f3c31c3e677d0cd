/**
 * The private work folders of runs: `TMPDIR/cairn-PID-XXXXXX`, 0700, removed when the run ends. A
 * run killed with kill -9 cannot remove its own, and it may hold a 0600 password file (pgpass,
 * my.cnf): the next run removes every such folder of this user whose process is gone.
 */
import { readdirSync, rmSync, statSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { alive } from "../locks/holder.ts";

const PATTERN = /^cairn-(\d+)-[A-Za-z0-9]{6}$/;

/** A new private work folder for this process. */
export function makeWorkDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), `cairn-${process.pid}-`));
}

let swept = false;

/** Removes the work folders left by this user's runs that died (once per process). */
export function removeDeadWorkDirs(): string[] {
  if (swept) return [];
  swept = true;
  const removed: string[] = [];
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = PATTERN.exec(name)?.[1];
    if (!pid || Number(pid) === process.pid || alive(Number(pid))) continue;
    const dir = join(tmpdir(), name);
    try {
      const stats = statSync(dir);
      if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid)) continue;
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}
