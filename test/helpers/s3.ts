/** A real S3 protocol server (s3rver) on 127.0.0.1, in a child process, stopped after the test file. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { stopAtEnd, tempDir } from "./env.ts";

export async function startS3rver(buckets: string[]): Promise<{ endpoint: string }> {
  const child = spawn(
    process.execPath,
    ["--openssl-legacy-provider", join(import.meta.dirname, "s3rver-process.ts"), tempDir(), ...buckets],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  stopAtEnd(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once("data", (data: Buffer) => resolve(Number(data.toString().trim())));
    child.once("exit", (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}` };
}
