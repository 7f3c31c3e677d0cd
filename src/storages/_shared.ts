/** Small helpers several destinations share. */
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { type Readable, Transform } from "node:stream";
import { StorageError } from "../errors.ts";

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

/** `body` passed through a counter; a failure of `body` fails the counted stream too. */
export function counted(body: Readable): { stream: Readable; bytes: () => number } {
  let bytes = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  body.once("error", (error) => stream.destroy(error));
  body.pipe(stream);
  return { stream, bytes: () => bytes };
}
