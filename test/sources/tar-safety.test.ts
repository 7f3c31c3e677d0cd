/**
 * Someone who can write to the storage replaces a files snapshot's archive (and fixes the manifest's
 * size and SHA-256 to match): restore must never touch anything outside its target, and verify
 * must report what is wrong without a stack trace (issue #13, items 11 and 15).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";

async function snapshotWith(dir: string) {
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site/a.txt"), "a\n");
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:\n  app:\n    sources: { site: { type: files, paths: [./site] } }\n    compression: none\n    destinations: { local: { type: local, path: ./backups } }\n`,
  );
  const env = { CAIRN_STATE_DIR: join(dir, "state") };
  assert.equal((await cairn(["backup"], { cwd: dir, env })).code, 0);
  const folder = join(dir, "backups/app", readdirSync(join(dir, "backups/app"))[0]!);
  /** Puts `bytes` in place of the archive, with a manifest that agrees (as an attacker would). */
  const replace = (bytes: Buffer, sha256 = createHash("sha256").update(bytes).digest("hex")) => {
    const object = join(folder, "site.tar");
    chmodSync(object, 0o600);
    writeFileSync(object, bytes);
    const manifestFile = join(folder, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
    manifest.artifacts[0].objects[0] = { ...manifest.artifacts[0].objects[0], size: bytes.length, sha256 };
    writeFileSync(manifestFile, JSON.stringify(manifest));
  };
  return { env, replace };
}

test("restore: a folder entry followed by a symlink of the same name changes nothing outside the target (#13.11)", async () => {
  const dir = tempDir();
  const outside = join(dir, "outside");
  mkdirSync(outside, { mode: 0o700 });
  chmodSync(outside, 0o700);
  const old = new Date("2020-01-01T00:00:00Z");
  utimesSync(outside, old, old);
  const { env, replace } = await snapshotWith(dir);
  const made = spawnSync(
    "python3",
    [
      "-c",
      `import tarfile, io, sys
t = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
d = tarfile.TarInfo("site/d"); d.type = tarfile.DIRTYPE; d.mode = 0o777; d.mtime = 0; t.addfile(d)
l = tarfile.TarInfo("site/d"); l.type = tarfile.SYMTYPE; l.linkname = sys.argv[1]; t.addfile(l)
t.close()`,
      outside,
    ],
    { maxBuffer: 1 << 20 },
  );
  assert.equal(made.status, 0, made.stderr.toString());
  replace(made.stdout);
  const restore = await cairn(["restore", "app", "--to-dir", join(dir, "target")], { cwd: dir, env });
  assert.equal(restore.code, 1, restore.stderr);
  assert.match(restore.stderr, /would replace the folder "site\/d": refused/);
  assert.equal(statSync(outside).mode & 0o777, 0o700, "the outside folder's mode is untouched");
  assert.equal(statSync(outside).mtime.getTime(), old.getTime(), "and its time");
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes("target")),
    [],
    "no target and no staging left",
  );
});

test("verify: an archive whose checksum does not match reports the object and exits 1, no stack trace (#13.15)", async () => {
  const dir = tempDir();
  const { env, replace } = await snapshotWith(dir);
  const original = readFileSync(
    join(dir, "backups/app", readdirSync(join(dir, "backups/app"))[0]!, "site.tar"),
  );
  replace(original, "0".repeat(64));
  const verify = await cairn(["verify", "app"], { cwd: dir, env });
  assert.equal(verify.code, 1, verify.stderr);
  assert.match(
    verify.stdout + verify.stderr,
    /site\.tar is corrupt: its SHA-256 does not match the manifest/,
  );
  assert.doesNotMatch(verify.stderr, /\n\s+at /, "no stack trace");
});
