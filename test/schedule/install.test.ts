/**
 * `cairn schedule show|install`: the units are checked by systemd itself (`systemd-analyze
 * verify`), and the command each unit or cron line runs is run, and must make a snapshot.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { onCalendar } from "../../src/schedule/cron.ts";
import { cairn, ROOT, run, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

const systemd = spawnSync("systemd-analyze", ["--version"]).status === 0;

const job = (schedule: string) => `    schedule: ${schedule}
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations: { here: { type: local, path: ./backups } }`;

/** A config in a folder with a space in its name, so every quoting is exercised. */
function setup(jobs: string) {
  const ws = workspace(tempDir());
  const dir = join(ws.dir, "my conf");
  mkdirSync(join(dir, "site"), { recursive: true });
  writeFileSync(join(dir, "site/a.txt"), "a\n");
  writeFileSync(join(dir, "cairn.yaml"), `jobs:\n${jobs}`);
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    cairn(args, { cwd: dir, env: { ...ws.env, ...env } });
  const snapshots = (name: string) =>
    existsSync(join(dir, "backups", name)) ? readdirSync(join(dir, "backups", name)).length : 0;
  return { ws, dir, cli, snapshots };
}

/** The words of an ExecStart= line, with systemd's double quotes. */
function execWords(line: string): string[] {
  return [...line.matchAll(/"((?:\\.|[^"\\])*)"|(\S+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] as string),
  );
}

const CONFIG = `  www:
${job('{ cron: "30 2 * * *", time_zone: Europe/Paris }')}
  db:
${job('"0 4 1 * mon"')}
  manual:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations: { here: { type: local, path: ./backups } }
`;

test("schedule install: a service and a timer per scheduled job, valid for systemd; the service's command makes a snapshot", {
  skip: systemd ? false : "systemd-analyze is not installed (package systemd)",
}, async () => {
  const { ws, dir, cli, snapshots } = setup(CONFIG);
  const units = join(ws.dir, "units");
  const install = await cli(["schedule", "install", "--dir", units, "--no-enable"]);
  assert.equal(install.code, 0, install.stderr);
  assert.deepEqual(readdirSync(units).sort(), [
    "cairn-db.service",
    "cairn-db.timer",
    "cairn-www.service",
    "cairn-www.timer",
  ]);
  const verify = spawnSync("systemd-analyze", ["verify", ...readdirSync(units).map((f) => join(units, f))], {
    encoding: "utf8",
  });
  assert.equal(verify.status, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), "", "systemd has nothing to say about the units");

  const timer = readFileSync(join(units, "cairn-db.timer"), "utf8");
  const calendar = [...timer.matchAll(/^OnCalendar=(.*)$/gm)].map((m) => m[1]);
  assert.deepEqual(calendar, onCalendar({ cron: "0 4 1 * mon" }));
  assert.match(timer, /^Persistent=true$/m);
  assert.match(
    readFileSync(join(units, "cairn-www.timer"), "utf8"),
    /^OnCalendar=\*-\*-\* 02:30:00 Europe\/Paris$/m,
  );

  const service = readFileSync(join(units, "cairn-www.service"), "utf8");
  const exec = /^ExecStart=(.*)$/m.exec(service)?.[1] ?? "";
  const [program, ...args] = execWords(exec);
  assert.deepEqual(args.slice(-4), ["--config", join(dir, "cairn.yaml"), "backup", "www"]);
  execFileSync(program as string, args, { cwd: "/", env: { ...process.env, ...ws.env }, stdio: "pipe" });
  assert.equal(snapshots("www"), 1);

  // show prints what install writes.
  const show = await cli(["schedule", "show", "--dir", units]);
  assert.equal(show.code, 0, show.stderr);
  for (const name of readdirSync(units))
    assert.ok(show.stdout.includes(readFileSync(join(units, name), "utf8")), name);
  assert.match(show.stdout, /# then: systemctl enable --now cairn-www.timer cairn-db.timer/);
});

test("schedule install: systemctl is called to reload and enable the timers; its failure is reported with what to do", async () => {
  const { ws, cli } = setup(CONFIG);
  const bin = join(ws.dir, "bin");
  mkdirSync(bin);
  const calls = join(ws.dir, "systemctl.log");
  // A stand-in systemctl that records its calls (this machine runs no systemd to enable timers on).
  writeFileSync(
    join(bin, "systemctl"),
    `#!/bin/sh\necho "$*" >> '${calls}'\n[ -z "$FAIL" ] || { echo "System has not been booted with systemd" >&2; exit 1; }\n`,
  );
  chmodSync(join(bin, "systemctl"), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH}` };
  const ok = await cli(["schedule", "install", "--user", "--dir", join(ws.dir, "units")], env);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(readFileSync(calls, "utf8").trim().split("\n"), [
    "--user daemon-reload",
    "--user enable --now cairn-www.timer cairn-db.timer",
  ]);
  const failed = await cli(["schedule", "install", "--dir", join(ws.dir, "units")], { ...env, FAIL: "1" });
  assert.equal(failed.code, 2);
  assert.match(failed.stderr, /systemctl daemon-reload failed: System has not been booted with systemd/);
  assert.match(failed.stderr, /the files are written; enable them by hand, or use `cairn daemon`/);
  assert.doesNotMatch(failed.stderr, /at .*\.ts:\d+/, "no stack trace");
});

test("schedule install --cron: one cron.d line per job, whose command makes a snapshot; what cron cannot say is refused", async () => {
  const { ws, dir, cli, snapshots } = setup(
    `  db:\n${job('"0 4 1 * mon"')}\n  hourly:\n${job("'@hourly'")}\n`,
  );
  const install = await cli(["schedule", "install", "--cron", "--dir", ws.dir]);
  assert.equal(install.code, 0, install.stderr);
  const lines = readFileSync(join(ws.dir, "cairn"), "utf8").trim().split("\n");
  assert.ok(lines.includes("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  const db = lines.find((l) => l.startsWith("0 4 1 * mon root "));
  assert.ok(db, lines.join("\n"));
  assert.ok(lines.some((l) => l.startsWith("0 * * * * root ")));
  // cron hands what follows the user field to /bin/sh.
  execFileSync("/bin/sh", ["-c", db.replace(/^(\S+\s+){5}root /, "")], {
    cwd: "/",
    env: { ...process.env, ...ws.env },
    stdio: "pipe",
  });
  assert.equal(snapshots("db"), 1);
  assert.ok(db.includes(`'${join(dir, "cairn.yaml")}'`), db);

  const zoned = setup(`  www:\n${job('{ cron: "30 2 * * *", time_zone: Europe/Paris }')}\n`);
  const refused = await zoned.cli(["schedule", "show", "--cron"]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /www: cron reads schedules in the machine's time zone, not Europe\/Paris/);
  const seconds = setup(`  fast:\n${job('"*/10 * * * * *"')}\n`);
  const refused2 = await seconds.cli(["schedule", "show", "--cron"]);
  assert.equal(refused2.code, 2);
  assert.match(refused2.stderr, /fast: .* has seconds, which cron cannot express/);
  const lastDay = setup(`  eom:\n${job('"0 3 L * *"')}\n`);
  const refused3 = await lastDay.cli(["schedule", "show"]);
  assert.equal(refused3.code, 2);
  assert.match(refused3.stderr, /eom: systemd timers cannot express L, W and #/);
  assert.match(refused3.stderr, /use `cairn daemon`/);
  const none = setup(
    "  manual:\n    sources: { site: { type: files, paths: [./site] } }\n    destinations: { here: { type: local, path: ./backups } }\n",
  );
  const nothing = await none.cli(["schedule", "show"]);
  assert.equal(nothing.code, 2);
  assert.match(nothing.stderr, /no job has a schedule/);
});

test("schedule refuses to point units at a cairn in npx's cache, which npm may empty", async () => {
  const { dir } = setup(`  nightly:\n${job('"30 2 * * *"')}\n`);
  // What `npx @cairn-backup/cairn` runs: the package's entry inside ~/.npm/_npx/<hash>/.
  const cache = join(tempDir(), "_npx", "4f2a9c");
  mkdirSync(join(cache, "entry"), { recursive: true });
  for (const file of readdirSync(join(ROOT, "entry")))
    writeFileSync(join(cache, "entry", file), readFileSync(join(ROOT, "entry", file)));
  for (const link of ["src", "package.json", "node_modules"])
    symlinkSync(join(ROOT, link), join(cache, link));
  const r = await run(process.execPath, [join(cache, "entry/cairn.js"), "schedule", "show"], { cwd: dir });
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /this cairn runs from npx's cache .*_npx.*, which npm may remove at any time\n {2}→ install cairn/,
  );
});
