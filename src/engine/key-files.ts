import { statSync } from "node:fs";
import { UsageError } from "../kit/errors.ts";

/**
 * A secret key file others can read or change is refused, as ssh and libpq refuse theirs: whoever
 * else can read it can read every backup. Not a regular file (a pipe, /dev/stdin): not checked.
 */
export function refuseOpenKeyFile(file: string, what: string): void {
  let mode: number;
  try {
    const stats = statSync(file);
    if (!stats.isFile()) return;
    mode = stats.mode & 0o777;
  } catch {
    return; // reading it says what is wrong
  }
  if ((mode & 0o027) === 0) return;
  throw new UsageError(
    `${what} ${file} can be ${mode & 0o022 ? "changed" : "read"} by other users of this host (mode ${mode.toString(8).padStart(3, "0")}): cairn does not use a secret key others can ${mode & 0o022 ? "change" : "read"}`,
    { hint: `chmod 600 ${file}` },
  );
}
