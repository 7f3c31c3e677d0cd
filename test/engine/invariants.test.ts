/**
 * The invariants from ARCHITECTURE.md, each against the real PostgreSQL and real files: no false
 * success, no good-looking leftovers after a kill, no secrets anywhere, damaged data refused.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CLI,
  cairn,
  createDatabase,
  databaseExists,
  fillAwkwardDatabase,
  psql,
  tableContents,
  tempDir,
  uniqueName,
} from "../helpers/env.ts";
import { fakePgBin, fillIncompressible, hangingPgDump, postgresJob, workspace } from "../helpers/jobs.ts";

function manifestsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) => p.endsWith("manifest.json"));
}

async function listCount(ws: ReturnType<typeof workspace>): Promise<number> {
  const listed = await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(listed.code, 0, listed.stderr);
  return JSON.parse(listed.stdout).snapshots.length;
}

test("a dump of a missing database fails: exit 1, the cause named, no manifest, nothing listed", async () => {
  const ws = workspace(tempDir());
  const missing = uniqueName("no_such_db");
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database: missing, recipient: ws.recipient }));
  const result = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(result.code, 1);
  assert.match(result.stdout + result.stderr, new RegExp(`database "${missing}" does not exist`));
  assert.deepEqual(manifestsUnder(join(ws.dir, "backups")), []);
  assert.equal(await listCount(ws), 0);
  const runs = await cairn(["catalog", "runs", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(JSON.parse(runs.stdout)[0].status, "failed");
});

test("pg_dump that writes its whole dump and then exits non-zero fails the backup", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  fillAwkwardDatabase(database);
  const bin = fakePgBin(ws.dir, '"$REAL_PG_DUMP" "$@"\nexit 3');
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient, binDir: bin }));
  const result = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /pg_dump exited with code 3/);
  assert.deepEqual(manifestsUnder(join(ws.dir, "backups")), []);
  assert.equal(await listCount(ws), 0);
});

test("pg_dump killed in the middle of its output fails the backup", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  fillAwkwardDatabase(database);
  const bin = fakePgBin(ws.dir, '"$REAL_PG_DUMP" "$@" | head -c 20000\nkill -9 $$');
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient, binDir: bin }));
  const result = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /pg_dump was killed by SIGKILL/);
  assert.equal(await listCount(ws), 0);
});

test("kill -9 of cairn during a backup leaves nothing that looks good; the next run succeeds", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  fillAwkwardDatabase(database);
  // A real dump that streams most of its data and then hangs, so the kill lands mid-upload.
  // 24 MB: enough to get through the compressor's buffers (zstd -T0 works in multi-MB jobs).
  fillIncompressible(database, 24);
  const bin = fakePgBin(ws.dir, hangingPgDump(ws.dir));
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient, binDir: bin }));
  const child = spawn(process.execPath, [CLI, "backup"], {
    cwd: ws.dir,
    env: { ...process.env, ...ws.env },
    detached: true,
    stdio: "ignore",
  });
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const snapshots = join(ws.dir, "backups/app");
    if (existsSync(snapshots) && readdirSync(snapshots, { recursive: true }).length >= 2) break;
    await sleep(100);
  }
  process.kill(-child.pid!, "SIGKILL");
  await new Promise((resolve) => child.on("close", resolve));
  assert.ok(existsSync(join(ws.dir, "backups/app")), "the backup had started writing");
  assert.deepEqual(manifestsUnder(join(ws.dir, "backups")), []);
  assert.equal(await listCount(ws), 0);

  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient }));
  const again = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(await listCount(ws), 1);
  const runs = JSON.parse((await cairn(["catalog", "runs", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.deepEqual(
    runs.map((r: { status: string }) => r.status),
    ["success", "interrupted"],
  );
});

test("no secret in any child's argv, in logs, in the manifest, in errors or in config show", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  psql(database, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
  const password = "pa:ss\\wörd-7f3e9c1b";
  const bin = fakePgBin(ws.dir, 'exec "$REAL_PG_DUMP" "$@"');
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    postgresJob({ database, recipient: ws.recipient, binDir: bin, password }),
  );
  const outputs: string[] = [];
  for (const args of [["backup", "-v"], ["list"], ["config", "show"], ["config", "show", "--json"]]) {
    const r = await cairn(args, { cwd: ws.dir, env: ws.env });
    assert.equal(r.code, 0, r.stderr);
    outputs.push(r.stdout, r.stderr);
  }
  const restored = uniqueName("copy");
  const r = await cairn(["restore", "app", "--to-database", restored, "-i", ws.keyFile, "-v"], {
    cwd: ws.dir,
    env: ws.env,
  });
  psql("postgres", `DROP DATABASE IF EXISTS "${restored}"`);
  assert.equal(r.code, 0, r.stderr);
  outputs.push(r.stdout, r.stderr);
  // A failing run: the error path must not leak either.
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    postgresJob({ database: uniqueName("missing"), recipient: ws.recipient, binDir: bin, password }),
  );
  const failed = await cairn(["backup", "-v"], { cwd: ws.dir, env: ws.env });
  assert.equal(failed.code, 1);
  outputs.push(failed.stdout, failed.stderr);

  const argv = readFileSync(join(bin, "argv.log"), "utf8");
  assert.match(argv, /pg_dump --format=custom --compress=0/);
  assert.ok(!argv.includes(password), "password on a command line");
  for (const output of outputs) assert.ok(!output.includes(password), `password printed: ${output}`);
  assert.ok(
    outputs.some((o) => o.includes("<redacted>")),
    "config show redacts the password",
  );
  for (const manifest of manifestsUnder(join(ws.dir, "backups")))
    assert.ok(
      !readFileSync(join(ws.dir, "backups", manifest), "utf8").includes(password),
      "password in the manifest",
    );
});

test("damaged backups are refused: wrong identity (exit 12), flipped byte, truncated object (verify and restore exit 1)", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  fillAwkwardDatabase(database);
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient }));
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const folder = join(ws.dir, "backups/app", readdirSync(join(ws.dir, "backups/app"))[0]!);
  const object = join(folder, "db.pgdump.zst.age");
  const original = readFileSync(object);

  const other = workspace(tempDir());
  const restoreTo = uniqueName("never");
  const attempts = async (expected: RegExp) => {
    for (const args of [
      ["verify", "app", "-i", ws.keyFile],
      ["restore", "app", "--to-database", restoreTo, "-i", ws.keyFile],
    ]) {
      const r = await cairn(args, { cwd: ws.dir, env: ws.env });
      assert.equal(r.code, 1, `${args[0]}: ${r.stderr}`);
      assert.match(r.stderr, expected);
      assert.ok(!databaseExists(restoreTo), "a failed restore leaves no database behind");
    }
  };

  const wrong = await cairn(["restore", "app", "--to-database", restoreTo, "-i", other.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(wrong.code, 12, "a wrong key has its own exit code");
  assert.match(wrong.stderr, /none of the given identities matches/);
  assert.ok(!databaseExists(restoreTo));

  const flipped = Buffer.from(original);
  flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
  writeFileSync(object, flipped);
  await attempts(/SHA-256 does not match|does not authenticate/);
  const storedOnly = await cairn(["verify", "app"], { cwd: ws.dir, env: ws.env });
  assert.equal(storedOnly.code, 1, "even without a key, verify sees the damage");
  assert.match(storedOnly.stderr, /corrupt/);

  writeFileSync(object, original.subarray(0, original.length - 1000));
  await attempts(/truncated/);

  writeFileSync(object, original);
  assert.equal((await cairn(["verify", "app", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env })).code, 0);
});

test("a secret that a failing tool prints is redacted from the error, the JSON report and the catalog", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  const password = "leaky-secret-91c2f0";
  // A tool that shows its password file in its error output: cairn must not pass that on.
  const bin = fakePgBin(ws.dir, 'cat "$PGPASSFILE" >&2\nexit 1');
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    postgresJob({ database, recipient: ws.recipient, binDir: bin, password }),
  );
  const result = await cairn(["backup", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(result.code, 1);
  const report = JSON.parse(result.stdout);
  assert.match(report.jobs[0].error.stderr, /<redacted>/, "the tool's output is kept, minus the secret");
  assert.ok(!result.stdout.includes(password), "secret in the JSON report");
  assert.ok(!result.stderr.includes(password), "secret in the logs");
  const runs = await cairn(["catalog", "runs", "--json"], { cwd: ws.dir, env: ws.env });
  assert.ok(!runs.stdout.includes(password), "secret in the catalog");
});

test("SIGTERM during a backup stops it cleanly: the dump is killed, nothing partial is left, exit 130", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  fillIncompressible(database, 24);
  const bin = fakePgBin(ws.dir, hangingPgDump(ws.dir));
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient, binDir: bin }));
  const child = spawn(process.execPath, [CLI, "backup"], {
    cwd: ws.dir,
    env: { ...process.env, ...ws.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + 20_000;
  while (
    Date.now() < deadline &&
    !(
      existsSync(join(ws.dir, "backups/app")) &&
      readdirSync(join(ws.dir, "backups/app"), { recursive: true }).length >= 2
    )
  )
    await sleep(100);
  const started = Date.now();
  child.kill("SIGTERM");
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 130, stderr);
  assert.ok(Date.now() - started < 10_000, "stops promptly");
  assert.match(stderr, /SIGTERM received/);
  assert.match(stderr, /interrupted/);
  assert.deepEqual(
    readdirSync(join(ws.dir, "backups/app"), { recursive: true }),
    [],
    "partial objects and temp files removed",
  );
  const runs = JSON.parse((await cairn(["catalog", "runs", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(runs[0].status, "failed");
  const sleepers = spawnSync("pgrep", ["-f", `sleep 60`], { encoding: "utf8" }).stdout.trim();
  const ours = sleepers
    .split("\n")
    .filter(Boolean)
    .filter(
      (pid) =>
        readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("sleep") &&
        existsSync(`/proc/${pid}/cwd`) &&
        readlinkSync(`/proc/${pid}/cwd`) === ws.dir,
    );
  assert.deepEqual(ours, [], "the dump process was stopped too");
});

test("a full disk fails the backup (exit 1, the cause named) and leaves the older snapshot alone", async (t) => {
  const ws = workspace(tempDir());
  const mountPoint = join(ws.dir, "backups");
  mkdirSync(mountPoint);
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint]);
  if (mounted.status !== 0) {
    t.skip(`needs root to mount a 2 MB tmpfs as a small disk (${mounted.stderr.toString().trim()})`);
    return;
  }
  try {
    mkdirSync(join(ws.dir, "data"));
    writeFileSync(join(ws.dir, "data/small.txt"), "small\n");
    writeFileSync(
      join(ws.dir, "cairn.yaml"),
      `jobs:\n  files:\n    sources: { data: { type: files, paths: [./data] } }\n    destinations: { disk: { type: local, path: ./backups } }\n`,
    );
    assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
    writeFileSync(join(ws.dir, "data/big.bin"), randomBytes(3 * 1024 * 1024));
    const full = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
    assert.equal(full.code, 1, full.stderr);
    assert.match(full.stderr, /ENOSPC|no space left/i);
    const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
    assert.equal(listed.snapshots.length, 1, "the older snapshot is still there and good");
    const target = join(ws.dir, "restored");
    assert.equal(
      (await cairn(["restore", "files", "--to-dir", target], { cwd: ws.dir, env: ws.env })).code,
      0,
    );
    assert.equal(readFileSync(join(target, "data/small.txt"), "utf8"), "small\n");
  } finally {
    spawnSync("umount", [mountPoint]);
  }
});

test("a restore into a database that cannot take the dump leaves it exactly as it was", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  fillAwkwardDatabase(database);
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient }));
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  psql(database, `UPDATE big_rows SET payload = 'changed after the backup' WHERE id = 1`);
  const before = tableContents(database);
  // Refused outright: it holds tables (#13.14).
  const refused = await cairn(["restore", "app", "--to-database", database, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(refused.code, 2, refused.stderr);
  assert.deepEqual(tableContents(database), before);
  // Forced: the dump's tables already exist there, pg_restore fails, its single transaction rolls back.
  const r = await cairn(["restore", "app", "--to-database", database, "-i", ws.keyFile, "--force"], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pg_restore exited with code 1: .*already exists/);
  assert.deepEqual(tableContents(database), before);
  const several = await cairn(["restore", "app", "--to-dir", join(ws.dir, "x"), "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.match(several.stderr, /a PostgreSQL backup restores into a database: pass --to-database NAME/);
});

test("one failing source of two: exit 3 (partial), the other's artifact is kept in a snapshot marked partial", async () => {
  const ws = workspace(tempDir());
  mkdirSync(join(ws.dir, "uploads"));
  writeFileSync(join(ws.dir, "uploads/a.txt"), "kept\n");
  const missing = uniqueName("gone");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      db: { type: postgres, database: ${missing}, host: 127.0.0.1, user: postgres }
      uploads: { type: files, paths: [./uploads] }
    encryption: { age: { recipients: [${ws.recipient}] } }
    destinations:
      local: { type: local, path: ./backups }
`,
  );
  const r = await cairn(["backup", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 3, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.match(report.jobs[0].error.message, /1 of 2 sources failed \(db\)/);
  assert.equal(report.jobs[0].partial, true);
  assert.deepEqual(Object.keys(report.jobs[0].destinations), ["local"], "the partial snapshot is stored");

  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 1);
  assert.equal(listed.snapshots[0].status, "partial");
  assert.deepEqual(
    listed.snapshots[0].failures.map((f: { source: string }) => f.source),
    ["db"],
  );
  assert.deepEqual(
    listed.snapshots[0].artifacts.map((a: { source: string }) => a.source),
    ["uploads"],
  );
  const folder = join(ws.dir, "backups/app", listed.snapshots[0].id);
  assert.deepEqual(
    readdirSync(folder).sort(),
    ["manifest.json", "uploads.tar.zst.age"],
    "no leftovers of the failed source",
  );

  const target = join(ws.dir, "r");
  const restore = await cairn(
    ["restore", "app", "--source", "uploads", "--to-dir", target, "-i", ws.keyFile],
    { cwd: ws.dir, env: ws.env },
  );
  assert.equal(restore.code, 0, restore.stderr);
  assert.equal(readFileSync(join(target, "uploads/a.txt"), "utf8"), "kept\n");
  const noDb = await cairn(
    ["restore", "app", "--source", "db", "--to-database", uniqueName("x"), "-i", ws.keyFile],
    { cwd: ws.dir, env: ws.env },
  );
  assert.equal(noDb.code, 10, "nothing to restore is 'not found'");
  assert.match(noDb.stderr, /no snapshot of job app holds source db/);
  const runs = JSON.parse((await cairn(["catalog", "runs", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(runs[0].status, "partial");
});
