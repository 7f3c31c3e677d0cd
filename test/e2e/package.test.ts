/** What `npm pack` ships works when installed globally: the `cairn` bin runs from compiled JavaScript. */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT, run, tempDir } from "../helpers/env.ts";

test("npm pack → npm install -g → cairn --version and --help work", async () => {
  assert.ok(
    existsSync(join(ROOT, "dist/cli/main.js")),
    "dist/ is built by `npm ci` (prepare) and `npm test`",
  );
  const dir = tempDir();
  const packed = await run("npm", ["pack", "--ignore-scripts", "--pack-destination", dir], { cwd: ROOT });
  assert.equal(packed.code, 0, packed.stderr);
  const tarball = join(dir, packed.stdout.trim().split("\n").pop()!);
  const prefix = join(dir, "prefix");
  const installed = await run(
    "npm",
    ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", "--prefer-offline", tarball],
    { cwd: dir },
  );
  assert.equal(installed.code, 0, installed.stderr);
  const bin = join(prefix, "bin/cairn");
  // Users need Node ≥ 22.18; run the bin with the Node that runs the tests.
  const env = { PATH: `${join(process.execPath, "..")}:${process.env.PATH}` };
  const version = await run(bin, ["--version"], { env });
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  const help = await run(bin, ["backup", "--help"], { env });
  assert.match(help.stdout, /Examples:/);
});

test("an old Node.js gets a clear message, not a crash", async (t) => {
  // The machine's own Node (20 on these machines), not the Node 24 that runs the tests.
  const system = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => existsSync(p));
  const version = system ? (await run(system, ["--version"])).stdout.trim() : "";
  const major = Number(version.replace(/^v/, "").split(".")[0]);
  if (!system || major >= 22) {
    t.skip(`no Node older than 22 installed here (found ${version || "none"})`);
    return;
  }
  const r = await run(system, [join(ROOT, "dist/cli/main.js"), "--version"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Node\.js 20\.\d+\.\d+ is too old; cairn needs Node\.js 22\.18 or newer/);
});
