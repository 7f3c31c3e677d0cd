/**
 * The README's quick start, run exactly as a user would: keygen, config, backup, list, restore a
 * database and a folder, verify — and the data that comes back equals the data that went in.
 */
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  cairn,
  createDatabase,
  dropDatabase,
  fillAwkwardDatabase,
  tableContents,
  tempDir,
  uniqueName,
} from "../helpers/env.ts";

test("quick start: backup app, restore its database and its uploads, verify", async () => {
  const dir = tempDir();
  const env = { CAIRN_STATE_DIR: join(dir, "state") };
  const database = createDatabase("app");
  fillAwkwardDatabase(database);

  mkdirSync(join(dir, "uploads/photos/2026"), { recursive: true });
  mkdirSync(join(dir, "uploads/empty"));
  writeFileSync(join(dir, "uploads/photos/2026/cat.jpg"), Buffer.from([0xff, 0xd8, 0xff, 0x00, 0x01]));
  writeFileSync(join(dir, "uploads/readme ünï.txt"), "hello\n");
  writeFileSync(join(dir, "uploads/upload-123.tmp"), "half written");
  writeFileSync(join(dir, "uploads/photos/partial.tmp"), "half written");
  symlinkSync("photos/2026/cat.jpg", join(dir, "uploads/latest.jpg"));

  const keygen = await cairn(["keygen", "-o", "key.txt"], { cwd: dir, env });
  assert.equal(keygen.code, 0, keygen.stderr);
  const recipient = keygen.stdout.trim();
  assert.match(recipient, /^age1[0-9a-z]{58}$/);

  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      db: { type: postgres, database: ${database}, host: 127.0.0.1, user: postgres }
      uploads: { type: files, paths: [./uploads], exclude: ["**/*.tmp"] }
    compression: zstd
    encryption: { age: { recipients: [${recipient}] } }
    destinations:
      local: { type: local, path: ./backups }
`,
  );

  const backup = await cairn(["backup", "app"], { cwd: dir, env });
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /^app@\S+: ok/);

  const listed = await cairn(["list", "--json"], { cwd: dir, env });
  assert.equal(listed.code, 0, listed.stderr);
  const snapshots = JSON.parse(listed.stdout).snapshots;
  assert.equal(snapshots.length, 1);
  assert.deepEqual(
    snapshots[0].artifacts.map((a: { source: string }) => a.source),
    ["db", "uploads"],
  );

  const copy = uniqueName("app_copy");
  try {
    const restoreDb = await cairn(
      ["restore", "app", "--source", "db", "--to-database", copy, "--identity", "key.txt"],
      { cwd: dir, env },
    );
    assert.equal(restoreDb.code, 0, restoreDb.stderr);
    assert.deepEqual(tableContents(copy), tableContents(database));
    assert.equal(Object.keys(tableContents(copy)).length, 2);
  } finally {
    dropDatabase(copy);
  }

  const target = join(dir, "r");
  const restoreFiles = await cairn(
    ["restore", "app", "--source", "uploads", "--to-dir", target, "--identity", "key.txt"],
    { cwd: dir, env },
  );
  assert.equal(restoreFiles.code, 0, restoreFiles.stderr);
  assert.deepEqual(
    readFileSync(join(target, "uploads/photos/2026/cat.jpg")),
    readFileSync(join(dir, "uploads/photos/2026/cat.jpg")),
  );
  assert.equal(readFileSync(join(target, "uploads/readme ünï.txt"), "utf8"), "hello\n");
  assert.ok(lstatSync(join(target, "uploads/latest.jpg")).isSymbolicLink(), "symlinks stay symlinks");
  assert.equal(readlinkSync(join(target, "uploads/latest.jpg")), "photos/2026/cat.jpg");
  assert.ok(lstatSync(join(target, "uploads/empty")).isDirectory(), "empty folders are kept");
  assert.throws(() => lstatSync(join(target, "uploads/upload-123.tmp")), /ENOENT/, "excluded files stay out");
  assert.throws(() => lstatSync(join(target, "uploads/photos/partial.tmp")), /ENOENT/);

  const verify = await cairn(["verify", "app", "--identity", "key.txt"], { cwd: dir, env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /db\.pgdump: ok, pg_restore --list: \d+ entries/);
  assert.match(verify.stdout, /uploads\.tar: ok, tar archive with \d+ entries/);
});
