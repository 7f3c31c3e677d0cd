/**
 * One of two destinations fails in the middle of a run (a real disk filling up: a 256 KiB tmpfs):
 * the other keeps the whole snapshot, the run says per destination what happened and exits 3
 * (issue #13, item 5).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

/** A tiny file system that fills up for real, or why there is none. */
function smallDisk(dir: string): string | undefined {
  mkdirSync(dir, { recursive: true });
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir], { encoding: "utf8" });
  if (mounted.status !== 0) return `cannot mount a tmpfs here (${mounted.stderr.trim() || "not root"})`;
  return undefined;
}

test("a destination that fails mid-run drops out; the other keeps the snapshot, exit 3, each destination's fate said (#13.5)", async (t) => {
  const ws = workspace(tempDir());
  const full = join(ws.dir, "full");
  const why = smallDisk(full);
  if (why) return t.skip(why);
  try {
    await failingDestinationRun(ws, full);
  } finally {
    spawnSync("umount", ["-l", full]);
  }
});

async function failingDestinationRun(ws: ReturnType<typeof workspace>, full: string): Promise<void> {
  mkdirSync(join(ws.dir, "site"));
  const data = randomBytes(2 * 1024 * 1024);
  writeFileSync(join(ws.dir, "site/data.bin"), data);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      site: { type: files, paths: [./site] }
      notes: { type: command, command: [echo, hello] }
    compression: none
    encryption: { age: { recipients: [${ws.recipient}] } }
    destinations:
      good: { type: local, path: ./good }
      full: { type: local, path: ./full }
`,
  );
  const backup = await cairn(["backup", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 3, backup.stdout + backup.stderr);
  const report = JSON.parse(backup.stdout).jobs[0];
  assert.equal(report.partial, true);
  assert.deepEqual(Object.keys(report.destinations), ["good"]);
  assert.match(report.failedDestinations.full, /ENOSPC|no space/i);
  assert.equal(report.artifacts.length, 2, "both sources were stored on the good destination");

  const human = await cairn(["backup", "--force"], { cwd: ws.dir, env: ws.env });
  assert.equal(human.code, 3);
  assert.match(human.stdout, /app@\S+: PARTIAL: stored on good only; failed on full: /);
  assert.match(human.stdout, /^ {2}good: stored \(app\/\S+\)$/m);
  assert.match(human.stdout, /^ {2}full: FAILED: /m);

  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 2);
  for (const snapshot of listed.snapshots) assert.deepEqual(snapshot.destinations, ["good"]);
  const leftovers = existsSync(join(full, "app")) ? readdirSync(join(full, "app"), { recursive: true }) : [];
  assert.deepEqual(leftovers, [], "the failed destination keeps no objects of the run");
  const target = join(ws.dir, "restored");
  const restore = await cairn(["restore", "app", "--source", "site", "--to-dir", target, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(restore.code, 0, restore.stderr);
  assert.ok(readFileSync(join(target, "site/data.bin")).equals(data), "the bytes match");
  const runs = JSON.parse((await cairn(["catalog", "runs", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(runs[0].status, "partial");
}
