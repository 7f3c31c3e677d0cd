/** A job never runs twice at once: the local lock (stale ones taken over) and the lock object on a destination. */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

function setUp(seconds: number) {
  const ws = workspace(tempDir());
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      slow: { type: command, command: [sh, -c, "sleep ${seconds}; echo data"] }
    compression: none
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
  return { ws, cli, state: ws.env.CAIRN_STATE_DIR as string };
}

test("locks: a second run of a running job fails at once, naming who holds it; the first one finishes", async () => {
  const { cli } = setUp(3);
  const first = cli(["backup"]);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const second = await cli(["backup"]);
  assert.equal(second.code, 11, "the job is locked");
  assert.match(second.stdout + second.stderr, /job app is already running: backup by pid \d+ on /);
  assert.equal((await first).code, 0);
  // Both locks are gone afterwards: the next run works.
  assert.equal((await cli(["backup"])).code, 0);
});

test("locks: a local lock left by a process that died is taken over", async () => {
  const { cli, state } = setUp(0);
  mkdirSync(join(state, "locks"), { recursive: true });
  writeFileSync(
    join(state, "locks/app.lock"),
    JSON.stringify({
      host: hostname(),
      pid: 2 ** 22 + 12345,
      operation: "backup",
      since: "2026-01-01T00:00:00Z",
    }),
  );
  const run = await cli(["backup"]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(readdirSync(join(state, "locks")), []);
});

/** A lock object of another run in the destination's lock folder, its object time `ageMs` ago. */
function lockObject(ws: { dir: string }, holder: Record<string, unknown>, ageMs = 0): string {
  const folder = join(ws.dir, "backups/.cairn-locks/app");
  mkdirSync(folder, { recursive: true });
  const file = join(folder, `${holder.host}-${holder.pid}-0badf00d.json`);
  writeFileSync(file, JSON.stringify(holder));
  const when = new Date(Date.now() - ageMs);
  utimesSync(file, when, when);
  return file;
}

test("locks: a lock object another host holds on the destination stops the run until it has not been refreshed for its lifetime", async () => {
  const { ws, cli } = setUp(0);
  const refreshed = new Date();
  const holder = {
    host: "db2.example.net",
    pid: 4242,
    operation: "backup",
    since: "2026-11-25T01:00:00Z",
    refreshed: refreshed.toISOString(),
    expires: new Date(refreshed.getTime() + 3_600_000).toISOString(),
  };
  const lock = lockObject(ws, holder);
  const blocked = await cli(["backup"]);
  assert.equal(blocked.code, 11, "the job is locked");
  assert.match(
    blocked.stdout + blocked.stderr,
    /locked on destination here: backup by pid 4242 on db2\.example\.net/,
  );
  assert.ok(!existsSync(join(ws.dir, "backups/app")), "nothing stored");
  assert.ok(existsSync(lock), "the other host's lock left as it was");
  assert.deepEqual(
    readdirSync(join(ws.dir, "backups/.cairn-locks/app")),
    [basename(lock)],
    "and ours removed",
  );
  // Its host stopped refreshing it two hours ago (by the destination's clock): stale.
  lockObject(ws, holder, 2 * 3_600_000);
  const taken = await cli(["backup"]);
  assert.equal(taken.code, 0, taken.stderr);
  assert.equal(readdirSync(join(ws.dir, "backups/app")).length, 1, "one snapshot");
  const locks = join(ws.dir, "backups/.cairn-locks/app");
  assert.deepEqual(existsSync(locks) ? readdirSync(locks) : [], [], "and the lock released");
});

test("locks: a destination lock left by a process of this host that died (kill -9) is taken over at once", async () => {
  const { ws, cli } = setUp(0);
  const now = new Date();
  lockObject(ws, {
    host: hostname(),
    pid: 2 ** 22 + 4321,
    operation: "backup",
    since: now.toISOString(),
    refreshed: now.toISOString(),
    expires: new Date(now.getTime() + 86_400_000).toISOString(),
  });
  const run = await cli(["backup"]);
  assert.equal(run.code, 0, run.stderr);
});
