import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** PATH with a configured tools folder searched first. */
export function searchPath(binDir: string | undefined): string {
  const path = process.env.PATH ?? "";
  return binDir ? `${binDir}${delimiter}${path}` : path;
}

/** The full path of `program` on PATH, or undefined. */
export function findProgram(program: string, path = process.env.PATH ?? ""): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, program);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}
