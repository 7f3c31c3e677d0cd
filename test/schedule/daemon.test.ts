/**
 * `cairn daemon` as an operator runs it: the real CLI, real jobs writing real snapshots, on
 * schedules with seconds so a test takes seconds; signals sent as systemd or a shell would.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startDaemon, stop, until } from "../helpers/daemon.ts";
import { configured } from "../helpers/jobs.ts";

const snapshots = (dir: string, job: string) => {
  const folder = join(dir, "backups", job);
  return existsSync(folder)
    ? readdirSync(folder).filter((id) => existsSync(join(folder, id, "manifest.json"))).length
    : 0;
};

const job = (name: string, schedule: string, extra = "") => `  ${name}:
    schedule: "${schedule}"
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations: { here: { type: local, path: ./backups } }
${extra}`;

test("daemon: jobs run on time; a job never overlaps itself; a job that crashes does not stop the others; SIGTERM stops it", async () => {
  const { ws } = configured(`daemon: { max_parallel: 3 }
jobs:
${job("quick", "*/2 * * * * *")}
${job("slow", "* * * * * *", `    hooks:\n      before: 'echo "start $(date +%s.%N)" >> slow.log; sleep 2.5; echo "end $(date +%s.%N)" >> slow.log'\n`)}
${job("crash", "*/3 * * * * *", "    hooks: { before: 'kill -9 $PPID' }\n")}`);
  const daemon = startDaemon(ws.dir, ws.env);
  await until(() => snapshots(ws.dir, "quick") >= 3, 20_000, "three snapshots of quick", daemon);
  await until(
    () => (daemon.log().match(/crash: killed by SIGKILL/g) ?? []).length >= 2,
    10_000,
    "two crashes of crash",
    daemon,
  );
  await until(() => snapshots(ws.dir, "slow") >= 2, 15_000, "two snapshots of slow", daemon);
  assert.equal(await stop(daemon), 0, daemon.log());

  // slow was due every second but took 2.5 s: its runs follow each other, never overlap.
  const marks = readFileSync(join(ws.dir, "slow.log"), "utf8")
    .trim()
    .split("\n")
    .map((line) => line.split(" "));
  for (let i = 0; i + 1 < marks.length; i++)
    assert.notEqual(marks[i]?.[0], marks[i + 1]?.[0], `two runs of slow at once:\n${marks.join("\n")}`);
  assert.match(daemon.log(), /slow: still running; this run is skipped/);
  assert.match(daemon.log(), /quick: finished in/);
  assert.match(daemon.log(), /stopped/);
});

test("daemon: SIGTERM during a run aborts the job cleanly (no snapshot that looks complete), waits for it, exits 0", async () => {
  const marker = `cairn-daemon-test-${process.pid}`;
  const { ws } = configured(`jobs:
  long:
    schedule: "* * * * * *"
    sources: { dump: { type: command, command: [sh, -c, "sleep 60 # ${marker}"] } }
    compression: none
    destinations: { here: { type: local, path: ./backups } }
`);
  const daemon = startDaemon(ws.dir, ws.env);
  await until(() => /long: started/.test(daemon.log()), 10_000, "long started", daemon);
  await sleep(1000);
  const started = Date.now();
  assert.equal(await stop(daemon), 0, daemon.log());
  assert.ok(Date.now() - started < 15_000, "stopped promptly");
  assert.match(daemon.log(), /waiting for long to stop/);
  assert.equal(snapshots(ws.dir, "long"), 0);
  const left = spawn("pgrep", ["-f", marker]);
  const code = await new Promise((resolve) => left.once("exit", resolve));
  assert.equal(code, 1, "the job's program is gone too");
});

test("daemon: SIGHUP reloads the config; a broken config is refused and the old one kept", async () => {
  const { ws } = configured(`jobs:\n${job("first", "* * * * * *")}`);
  const daemon = startDaemon(ws.dir, ws.env);
  await until(() => snapshots(ws.dir, "first") >= 1, 15_000, "a snapshot of first", daemon);

  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:\n${job("first", "* * * * * *")}\n${job("second", "* * * * * *")}`,
  );
  daemon.process.kill("SIGHUP");
  await until(() => snapshots(ws.dir, "second") >= 1, 15_000, "a snapshot of second after SIGHUP", daemon);
  assert.match(daemon.log(), /configuration reloaded/);

  writeFileSync(join(ws.dir, "cairn.yaml"), "jobs:\n  first: { schedule: 'not cron' }\n");
  daemon.process.kill("SIGHUP");
  await until(() => /configuration not reloaded/.test(daemon.log()), 5_000, "the refusal", daemon);
  const before = snapshots(ws.dir, "second");
  await until(() => snapshots(ws.dir, "second") > before, 15_000, "second still running", daemon);
  assert.equal(await stop(daemon), 0, daemon.log());
});

test("daemon: a run missed while the daemon was down runs once at start (catch_up), not with catch_up: false", async () => {
  for (const catchUp of [true, false]) {
    const { ws } = configured(`daemon: { catch_up: ${catchUp} }\njobs:\n${job("hourly", "0 * * * *")}`);
    // The daemon last handled a fire three hours ago; the top of this hour has passed since.
    mkdirSync(join(ws.dir, "state"), { recursive: true });
    const threeHoursAgo = new Date(Date.now() - 3 * 3600_000).toISOString();
    writeFileSync(
      join(ws.dir, "state/daemon.json"),
      JSON.stringify({ jobs: { hourly: { last_due: threeHoursAgo } } }),
    );
    const daemon = startDaemon(ws.dir, ws.env);
    if (catchUp) {
      await until(() => snapshots(ws.dir, "hourly") === 1, 15_000, "the caught-up run", daemon);
      assert.match(
        daemon.log(),
        /hourly: the run due at .* was missed while the daemon was down; running it now/,
      );
    } else {
      await until(() => /scheduled: hourly next at/.test(daemon.log()), 10_000, "the plan", daemon);
      await sleep(2000);
      assert.equal(snapshots(ws.dir, "hourly"), 0, daemon.log());
    }
    assert.equal(await stop(daemon), 0, daemon.log());
    // Restarting right away runs nothing more: the missed fire is handled.
    const again = startDaemon(ws.dir, ws.env);
    await until(() => /scheduled: hourly next at/.test(again.log()), 10_000, "the plan", again);
    await sleep(1500);
    assert.equal(snapshots(ws.dir, "hourly"), catchUp ? 1 : 0, again.log());
    assert.equal(await stop(again), 0, again.log());
  }
});
