/** Shell hooks around a job: order, environment, and what a failing hook does. */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

function setUp(jobHooks: string) {
  const ws = workspace(tempDir());
  mkdirSync(join(ws.dir, "site"));
  writeFileSync(join(ws.dir, "site/a.txt"), "a\n");
  const log = join(ws.dir, "hooks.log");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `hooks:
  before: 'echo "global before $CAIRN_JOB" >> hooks.log'
  finally: 'echo "global finally $CAIRN_STATUS" >> hooks.log'
jobs:
  app:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    hooks:
${jobHooks}
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
  const lines = () => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []);
  return { ws, cli, lines };
}

test("hooks: global around the job's own, in order, with the job described in CAIRN_* variables", async () => {
  const { cli, lines } = setUp(`      before: ['echo "job before" >> hooks.log']
      after: 'echo "job after $CAIRN_STATUS $CAIRN_SNAPSHOT $CAIRN_DESTINATIONS $CAIRN_FOLDERS" >> hooks.log'
      on_error: 'echo "job on_error" >> hooks.log'
      finally: 'echo "job finally $CAIRN_STATUS" >> hooks.log'`);
  const run = await cli(["backup", "--json"]);
  assert.equal(run.code, 0, run.stderr);
  const snapshot = JSON.parse(run.stdout).jobs[0].snapshot;
  assert.deepEqual(lines(), [
    "global before app",
    "job before",
    `job after success ${snapshot} here here=app/${snapshot}`,
    "job finally success",
    "global finally success",
  ]);
});

test("hooks: a failing before hook fails the job before any source runs; on_error and finally see why", async () => {
  const { ws, cli, lines } = setUp(`      before: 'echo "db is busy" >&2; exit 3'
      on_error: 'echo "job on_error $CAIRN_STATUS: $CAIRN_ERROR" >> hooks.log'
      finally: 'echo "job finally $CAIRN_STATUS" >> hooks.log'`);
  const run = await cli(["backup"]);
  assert.equal(run.code, 1);
  assert.match(run.stdout + run.stderr, /the before hook failed \(echo "db is busy"/);
  assert.match(run.stderr, /db is busy/);
  assert.ok(
    !existsSync(join(ws.dir, "backups/app")) || readdirSync(join(ws.dir, "backups/app")).length === 0,
  );
  const logged = lines();
  assert.equal(logged[0], "global before app");
  assert.match(logged[1] ?? "", /^job on_error failed: the before hook failed/);
  assert.deepEqual(logged.slice(2), ["job finally failed", "global finally failed"]);
});

test("hooks: a failing after hook fails the run, and the snapshot stays", async () => {
  const { ws, cli } = setUp(`      after: 'exit 1'`);
  const run = await cli(["backup"]);
  assert.equal(run.code, 1);
  assert.match(run.stdout + run.stderr, /the after hook failed/);
  assert.equal(readdirSync(join(ws.dir, "backups/app")).length, 1);
  assert.equal(JSON.parse((await cli(["list", "--json"])).stdout).snapshots.length, 1);
});
