/** Finding every installed copy of a client program and asking each its version, to pick the one that fits a server. */
import { existsSync, readdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import type { PluginContext } from "../kit/contracts.ts";
import { runProgram } from "../kit/exec.ts";
import { findProgram } from "../kit/which.ts";

export interface InstalledClient {
  path: string;
  /** `major.minor[.patch]` as the program reports it. */
  version: string;
  /** Extra facts from the version line, e.g. `mariadb` vs `mysql`. */
  flavor?: string;
}

/** Subfolders of `parent` that exist, each joined with `child` (e.g. /usr/lib/postgresql/<v>/bin). */
export function versionedDirs(parent: string, child: string): string[] {
  try {
    return readdirSync(parent).map((v) => join(parent, v, child));
  } catch {
    return [];
  }
}

/**
 * Every distinct executable named one of `names`: in `binDir` only when given, else in `dirs`
 * and on PATH. Copies reached through several links count once.
 */
export function installedCopies(names: string[], binDir: string | undefined, dirs: string[]): string[] {
  const paths = binDir
    ? names.map((name) => join(binDir, name))
    : names.flatMap((name) => [...dirs.map((dir) => join(dir, name)), findProgram(name) ?? ""]);
  const seen = new Set<string>();
  return paths.filter((path) => {
    if (!path || !existsSync(path)) return false;
    const real = realpathSync(path);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

/** Runs `PROGRAM --version` for each path; those that do not answer are left out. */
export async function probeVersions(
  paths: string[],
  parse: (versionLine: string) => Omit<InstalledClient, "path"> | undefined,
  ctx: PluginContext,
): Promise<InstalledClient[]> {
  const found: InstalledClient[] = [];
  for (const path of paths) {
    try {
      const { stdout } = await runProgram(path, ["--version"], {
        signal: ctx.signal,
        logger: ctx.logger,
        captureStdout: true,
      });
      const parsed = parse(stdout);
      if (parsed) found.push({ path, ...parsed });
    } catch {}
  }
  return found;
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function describeClients(found: InstalledClient[]): string {
  return found.length ? found.map((c) => `${c.version} (${c.path})`).join(", ") : "none";
}
