/**
 * Pruning must never lose a snapshot it should keep, nor touch another job's data, whatever the
 * template or the clocks say (issue #13, items 3 and 10). Real backups on a local destination; a
 * wrong clock is a real `cairn` process under libfaketime, the destination's object times are the
 * kernel's (a destination that keeps its own time, as S3 or an NFS server does).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLI, hasProgram, run } from "../helpers/env.ts";
import { configured } from "../helpers/jobs.ts";

const DAY = 86_400_000;

/** Job `app`: the folder ./site, uncompressed, to ./backups, with this retention (YAML flow keys). */
const appWith = (retention: string) =>
  configured(`jobs:
  app:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    retention: { ${retention} }
    destinations:
      here: { type: local, path: ./backups }
`);
const idAt = (time: Date, suffix: string) =>
  `${time
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/:/g, "-")}-${suffix}`;

/** A folder of a run that died (objects, no manifest), its objects `age` ms old. */
function deadRun(dir: string, age: number, suffix: string): string {
  const time = new Date(Date.now() - age);
  const folder = join(dir, idAt(time, suffix));
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "site.tar"), "partial");
  utimesSync(join(folder, "site.tar"), time, time);
  return folder;
}

test("prune: a template whose prefix covers another job's folders touches only the pruned job's own (#13.3)", async () => {
  const { ws, cli } = configured(`jobs:
  a:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    retention: { keep_last: 1, leftovers_grace: 1h }
    destinations:
      here: { type: local, path: ./backups, template: "{job}-%Y" }
  a-b:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations:
      here: { type: local, path: ./backups, template: "{job}-%Y" }
`);
  for (const job of ["a", "a", "a-b"]) assert.equal((await cli(["backup", job])).code, 0);
  const year = new Date().getFullYear();
  const own = deadRun(join(ws.dir, `backups/a-${year}`), 2 * DAY, "dead");
  // The other job's: a run that died, and one that is writing right now.
  const othersDead = deadRun(join(ws.dir, `backups/a-b-${year}`), 2 * DAY, "dea0");
  const othersRunning = deadRun(join(ws.dir, `backups/a-b-${year}`), 0, "0001");
  const before = readdirSync(join(ws.dir, `backups/a-b-${year}`)).sort();

  const pruned = await cli(["prune", "a"]);
  assert.equal(pruned.code, 0, pruned.stdout + pruned.stderr);
  assert.ok(!existsSync(own), "the pruned job's own dead run is cleaned");
  assert.ok(existsSync(othersDead) && existsSync(othersRunning), "the other job's folders are untouched");
  assert.deepEqual(readdirSync(join(ws.dir, `backups/a-b-${year}`)).sort(), before);
  const listed = JSON.parse((await cli(["list", "a-b", "--json"])).stdout);
  assert.equal(listed.snapshots.length, 1, "the other job's snapshot is still listed");
  assert.equal((await cli(["verify", "a-b"])).code, 0, "and still verifies");
});

test("prune: the leftovers of a run whose objects are still being written are never removed (#13.3, #13.9)", async () => {
  const { ws, cli } = appWith("keep_last: 1, leftovers_grace: 1h");
  assert.equal((await cli(["backup"])).code, 0);
  // Named two days ago (its host's clock was behind), but its objects are being written now.
  const folder = deadRun(join(ws.dir, "backups/app"), 2 * DAY, "beef");
  const recent = new Date();
  utimesSync(join(folder, "site.tar"), recent, recent);
  const pruned = await cli(["prune"]);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.ok(existsSync(folder), "objects written within the grace period are not leftovers");
});

const faketime = hasProgram("faketime");

/** `cairn ARGS` with this process's clock moved by `offset` (libfaketime; file times stay the kernel's). */
function cairnAt(offset: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) {
  return run("faketime", ["-f", offset, process.execPath, CLI, ...args], {
    ...options,
    env: { ...options.env, NO_FAKE_STAT: "1" },
  });
}

test("prune: a snapshot dated in the future stops pruning, says why, and removes nothing (#13.10)", {
  skip: !faketime && "faketime is not installed (.ci/system-deps installs it)",
}, async () => {
  const { ws, cli } = appWith("keep_last: 1");
  for (let i = 0; i < 2; i++) assert.equal((await cli(["backup"])).code, 0);
  // A host whose clock runs three hours ahead backs up to the same destination.
  const ahead = await cairnAt("+3h", ["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(ahead.code, 0, ahead.stderr);
  const pruned = await cli(["prune"]);
  assert.equal(pruned.code, 1, pruned.stdout);
  assert.match(pruned.stdout, /dated in the future .*nothing was removed/);
  assert.equal(readdirSync(join(ws.dir, "backups/app")).length, 3);
});

test("prune: a host whose clock is 400 days ahead of the destination's removes nothing (#13.10)", {
  skip: !faketime && "faketime is not installed (.ci/system-deps installs it)",
}, async () => {
  const { ws, cli } = appWith("max_age: 30d");
  for (let i = 0; i < 3; i++) assert.equal((await cli(["backup"])).code, 0);
  const pruned = await cairnAt("+400d", ["prune"], { cwd: ws.dir, env: ws.env });
  assert.equal(pruned.code, 1, pruned.stdout + pruned.stderr);
  assert.match(pruned.stdout, /clock is \d+ minutes ahead of the destination's: nothing was removed/);
  assert.equal(readdirSync(join(ws.dir, "backups/app")).length, 3);
  // With the clock right, the same policy keeps all three (they are days, not months, old).
  const right = await cli(["prune"]);
  assert.equal(right.code, 0, right.stdout);
  assert.match(right.stdout, /keep 3, removed 0/);
});

test("config check refuses keep_last: 0 and says what to write instead (#13.17)", async () => {
  const { cli } = configured(`jobs:
  app:
    sources: { site: { type: files, paths: [./site] } }
    retention: { keep_last: 0 }
    destinations:
      here: { type: local, path: ./backups }
`);
  const checked = await cli(["config", "check"]);
  assert.equal(checked.code, 2, checked.stdout + checked.stderr);
  assert.match(checked.stderr, /keep_last: 0 keeps nothing by this rule/);
});
