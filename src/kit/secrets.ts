import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { posix } from "node:path";
import type { PluginContext } from "./contracts.ts";
import { StorageError } from "./errors.ts";

/** The password in `file` (for destinations given as URLs, where a password may not be written). */
export function readPasswordFile(file: string, baseDir: string, destination: string): string {
  const path = posix.resolve(baseDir, file);
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    throw new StorageError(
      `destination ${destination}: cannot read password_file ${path} (${(error as NodeJS.ErrnoException).code})`,
    );
  }
}

/**
 * Writes `content` to `name` in the call's private work folder, readable by this user only, and
 * returns its path: how a secret reaches a program (a passfile, a defaults file) without argv.
 */
export async function privateFile(ctx: PluginContext, name: string, content: string): Promise<string> {
  const path = posix.join(ctx.workDir, name);
  await writeFile(path, content, { mode: 0o600, flag: "wx" });
  return path;
}
