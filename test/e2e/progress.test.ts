/**
 * Progress as the user sees it: on a terminal a line per artifact with bytes of the total, rate
 * and ETA, cleared before every log line (never run into); on restore and verify too; nothing on a
 * pipe unless --progress plain asks for log lines.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { describeProgress } from "../../src/cli/progress.ts";
import { CLI, cairn, run, tempDir } from "../helpers/env.ts";

function slowJob() {
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  // 12 MiB through a 6 MiB/s limit: two seconds, four progress updates at least.
  writeFileSync(join(dir, "data/big.bin"), Buffer.alloc(12 * 2 ** 20, 7));
  writeFileSync(
    join(dir, "cairn.yaml"),
    "jobs:\n  site:\n    sources: { files: { type: files, paths: [./data] } }\n    compression: none\n    encryption: none\n    destinations: { d: { type: local, path: ./b, bandwidth_limit: 6MiB } }\n",
  );
  return { dir, env: { CAIRN_STATE_DIR: join(dir, "state") } };
}

/** The command on a terminal (`script`); what the terminal received, carriage returns kept. */
const onTerminal = ({ dir, env }: ReturnType<typeof slowJob>, args: string) =>
  run("script", ["-qec", `'${process.execPath}' '${CLI}' ${args}`, "/dev/null"], {
    cwd: dir,
    env: { ...env, COLUMNS: "120" },
  });

test("on a terminal: a progress line with the total, rate and ETA, cleared before each log line", {
  timeout: 120_000,
}, async () => {
  const job = slowJob();
  const first = await onTerminal(job, "backup");
  assert.equal(first.code, 0, first.stdout);
  assert.match(
    first.stdout,
    /\r\x1b\[Ksite files\.tar: [\d.]+ MiB, [\d.]+ MiB\/s/,
    "no total known on the first run",
  );
  // Every log line starts on a cleared line: the progress line never runs into it.
  for (const line of first.stdout.split("\n").filter((l) => l.includes("artifact stored")))
    assert.match(line, /(^|\r\x1b\[K)artifact stored/, JSON.stringify(line));

  const second = await onTerminal(job, "backup");
  assert.match(
    second.stdout,
    /site files\.tar: [\d.]+ MiB of ~12\.0 MiB \(\d+%\), [\d.]+ MiB\/s, ETA \d+:\d\d/,
    "the last run's size is the estimate",
  );
  const restored = await onTerminal(job, "restore site --to-dir r");
  assert.equal(restored.code, 0, restored.stdout);
  assert.match(
    restored.stdout,
    /site files\.tar: [\d.]+ MiB of 12\.0 MiB \(\d+%\)/,
    "restore knows the exact total",
  );
  const verified = await onTerminal(job, "verify site");
  assert.match(verified.stdout, /site files\.tar: [\d.]+ MiB of 12\.0 MiB/);
});

test("not on a terminal: no progress, unless --progress plain; -q and --progress none silence it", {
  timeout: 120_000,
}, async () => {
  const job = slowJob();
  const { dir, env } = job;
  const piped = await cairn(["backup"], { cwd: dir, env });
  assert.equal(piped.code, 0, piped.stderr);
  assert.doesNotMatch(piped.stderr, /\x1b|files\.tar: [\d.]+ MiB/);
  const plain = await cairn(["--progress", "plain", "backup"], { cwd: dir, env });
  assert.match(plain.stderr, /^progress site files\.tar: [\d.]+ MiB of ~12\.0 MiB \(\d+%\), .*ETA/m);
  assert.doesNotMatch(plain.stderr, /\x1b/);
  const none = await onTerminal(job, "--progress none backup");
  assert.doesNotMatch(none.stdout, /files\.tar: [\d.]+ MiB/);
  const quiet = await onTerminal(job, "-q backup");
  assert.doesNotMatch(quiet.stdout, /files\.tar: [\d.]+ MiB/);
});

test("the progress text", () => {
  const base = { job: "app", source: "db", artifact: "db.pgdump", elapsed: 2 };
  assert.equal(describeProgress({ ...base, bytes: 0 }), "app db.pgdump: 0 B");
  assert.equal(
    describeProgress({ ...base, phase: "restore", bytes: 2 ** 20, total: 4 * 2 ** 20 }),
    "app db.pgdump: 1.00 MiB of 4.00 MiB (25%), 512.0 KiB/s, ETA 0:06",
  );
  assert.equal(
    describeProgress({ ...base, phase: "backup", bytes: 5 * 2 ** 20, total: 4 * 2 ** 20 }),
    "app db.pgdump: 5.00 MiB of ~4.00 MiB (100%), 2.50 MiB/s",
  );
  assert.equal(
    describeProgress({ ...base, phase: "verify", bytes: 1, total: 2 ** 40, elapsed: 1 }).split("ETA ")[1],
    "305419896:36:15",
  );
});
