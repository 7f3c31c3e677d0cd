import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

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
