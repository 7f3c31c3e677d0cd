/** The CLI's contract: exit codes, JSON on stdout, JSON logs on stderr, help with examples. */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/program.ts";
import { cairn, tempDir } from "../helpers/env.ts";

function setup(): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data/a.txt"), "a");
  writeFileSync(
    join(dir, "cairn.yaml"),
    "jobs:\n  docs:\n    sources: { data: { type: files, paths: [./data] } }\n    destinations: { here: { type: local, path: ./b } }\n",
  );
  return { dir, env: { CAIRN_STATE_DIR: join(dir, "state") } };
}

test("usage errors exit 2 with a message and no stack trace", async () => {
  const { dir, env } = setup();
  // A snapshot exists, so `restore docs` fails only for its missing target.
  assert.equal((await cairn(["backup"], { cwd: dir, env })).code, 0);
  for (const args of [
    ["frobnicate"],
    ["backup", "--no-such-flag"],
    ["restore"],
    ["backup", "nojob"],
    ["restore", "docs"],
  ]) {
    const r = await cairn(args, { cwd: dir, env });
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.ok(r.stderr.trim().length > 0);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  assert.match(
    (await cairn(["backup", "nojob"], { cwd: dir, env })).stderr,
    /no job named "nojob".*\n.*configured jobs: docs/,
  );
  assert.match(
    (await cairn(["restore", "docs"], { cwd: dir, env })).stderr,
    /a files backup restores into a folder: pass --to-dir DIR/,
  );
});

test("--json results on stdout, --log-format json lines on stderr", async () => {
  const { dir, env } = setup();
  const r = await cairn(["backup", "--json", "--log-format", "json"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.ok, true);
  assert.equal(report.jobs[0].job, "docs");
  assert.equal(report.jobs[0].artifacts[0].name, "data.tar");
  const lines = r.stderr
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.msg === "backup finished" && l.level === "info" && l.job === "docs"));

  const shown = JSON.parse(
    (await cairn(["show", `docs@${report.jobs[0].snapshot}`, "--json"], { cwd: dir, env })).stdout,
  );
  assert.equal(shown.manifest.format, "cairn-snapshot/1");
  const none = await cairn(["show", "docs@2001"], { cwd: dir, env });
  assert.equal(none.code, 10, "no such snapshot");
  assert.match(none.stderr, /no snapshot 2001 of job docs/);
});

test("every command's --help shows examples", async () => {
  // Every command the program has, so a new one cannot be forgotten here.
  const program = buildProgram({ signal: new AbortController().signal, secrets: new Set() });
  const commands: string[][] = [[]];
  const walk = (command: Command, path: string[]) => {
    for (const sub of command.commands) {
      if (sub.name() === "help") continue;
      commands.push([...path, sub.name()]);
      walk(sub, [...path, sub.name()]);
    }
  };
  walk(program, []);
  assert.ok(commands.length > 20, `${commands.length} commands`);
  // Four at a time: each is a Node start.
  for (let i = 0; i < commands.length; i += 4)
    await Promise.all(
      commands.slice(i, i + 4).map(async (command) => {
        const r = await cairn([...command, "--help"]);
        assert.equal(r.code, 0, command.join(" "));
        assert.match(r.stdout, /Examples:\n {2}cairn /, command.join(" "));
      }),
    );
});

test("jobs, enable and disable: a bare backup skips disabled jobs, naming one still runs it", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data/a.txt"), "a");
  const job = (name: string) =>
    `  ${name}:\n    sources: { data: { type: files, paths: [./data] } }\n    destinations: { here: { type: local, path: ./b } }\n`;
  writeFileSync(join(dir, "cairn.yaml"), `jobs:\n${job("web")}${job("mail")}`);
  const env = { CAIRN_STATE_DIR: join(dir, "state") };
  assert.equal((await cairn(["disable", "mail"], { cwd: dir, env })).code, 0);
  const bare = JSON.parse((await cairn(["backup", "--json"], { cwd: dir, env })).stdout);
  assert.deepEqual(
    bare.jobs.map((j: { job: string }) => j.job),
    ["web"],
  );
  const named = JSON.parse((await cairn(["backup", "mail", "--json"], { cwd: dir, env })).stdout);
  assert.deepEqual(
    named.jobs.map((j: { job: string }) => j.job),
    ["mail"],
  );
  const jobs = JSON.parse((await cairn(["jobs", "--json"], { cwd: dir, env })).stdout);
  assert.deepEqual(
    jobs.map((j: { job: string; enabled: boolean; lastRun?: { status: string } }) => [
      j.job,
      j.enabled,
      j.lastRun?.status,
    ]),
    [
      ["web", true, "success"],
      ["mail", false, "success"],
    ],
  );
  assert.equal((await cairn(["enable", "mail"], { cwd: dir, env })).code, 0);
  const again = JSON.parse((await cairn(["backup", "--json"], { cwd: dir, env })).stdout);
  assert.deepEqual(
    again.jobs.map((j: { job: string }) => j.job),
    ["web", "mail"],
  );
  const unknown = await cairn(["disable", "nope"], { cwd: dir, env });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /no job named "nope"/);
});

test("--dry-run: backup runs its source and stores nothing; upload reads the file and stores nothing", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site/index.html"), "<h1>hi</h1>\n");
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  www:
    sources: { site: { type: files, paths: [./site] } }
    destinations:
      local: { type: local, path: ./backups, bandwidth_limit: 50MiB, concurrency: 2, timeout: 2m }
`,
  );
  const env = { CAIRN_STATE_DIR: join(dir, "state") };
  const dry = await cairn(["backup", "--dry-run"], { cwd: dir, env });
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /www@\S+: dry run ok \(nothing stored\)/);
  assert.equal(existsSync(join(dir, "backups")), false);
  assert.equal(JSON.parse((await cairn(["list", "--json"], { cwd: dir, env })).stdout).snapshots.length, 0);

  const up = await cairn(["upload", "--dry-run", join(dir, "cairn.yaml"), join(dir, "up")], {
    cwd: dir,
    env,
  });
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, /dry run: would store .*cairn\.yaml/);
  assert.equal(existsSync(join(dir, "up", "cairn.yaml")), false);

  // Wrapper options are checked like any other: a bad one is a config error, before anything runs.
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  www:
    sources: { site: { type: files, paths: [./missing] } }
    destinations:
      local: { type: local, path: ./backups, timeout: soon }
`,
  );
  const bad = await cairn(["backup", "--dry-run"], { cwd: dir, env });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /timeout.*not a duration/);
});
