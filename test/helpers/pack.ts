/** `npm pack` for the package tests: the tarball of the package in `dir`, written into `into`. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { run } from "./env.ts";

/** Packs without running prepack (npm test has built dist/ already); returns the tarball's path. */
export async function pack(dir: string, into: string): Promise<string> {
  const packed = await run("npm", ["pack", "--ignore-scripts", "--pack-destination", into], { cwd: dir });
  assert.equal(packed.code, 0, packed.stderr);
  return join(into, packed.stdout.trim().split("\n").pop()!);
}
