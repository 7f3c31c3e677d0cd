/**
 * The linux-arm64 single executable, built here from the same bundle and the official arm64 Node
 * binary, run under qemu-user with Debian's arm64 libraries: it backs up a folder and a SQLite
 * file, verifies and restores them, byte for byte. Part of `npm test`; `npm run test:system` runs
 * the system tests alone.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, test } from "node:test";
import { buildExecutable } from "../../scripts/build-exe.ts";

const SYSROOT = "/usr/aarch64-linux-gnu";
const cannot =
  spawnSync("sh", ["-c", "command -v qemu-aarch64-static"]).status !== 0
    ? "qemu-aarch64-static is not installed (.ci/system-deps installs qemu-user-static)"
    : !existsSync(join(SYSROOT, "lib/libstdc++.so.6"))
      ? "no arm64 libraries in /usr/aarch64-linux-gnu (libc6-arm64-cross, libstdc++6-arm64-cross)"
      : undefined;

const work = mkdtempSync(join(tmpdir(), "cairn-arm64-"));
after(() => rmSync(work, { recursive: true, force: true }));

test("the arm64 executable backs up, verifies and restores under qemu", {
  skip: cannot,
  timeout: 600_000,
}, async () => {
  const exe = await buildExecutable("arm64");
  const cairn = (...args: string[]) => {
    const r = spawnSync("qemu-aarch64-static", ["-L", SYSROOT, exe, ...args], {
      cwd: work,
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin", HOME: work, CAIRN_STATE_DIR: join(work, "state") },
    });
    assert.equal(r.status, 0, `cairn ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const version = JSON.parse(readFileSync(join(import.meta.dirname, "../../package.json"), "utf8")).version;
  assert.equal(cairn("--version").trim(), version);
  mkdirSync(join(work, "data/sub"), { recursive: true });
  writeFileSync(
    join(work, "data/sub/b.bin"),
    Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 13) % 256)),
  );
  const db = new DatabaseSync(join(work, "app.db"));
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'), ('ü'), ('c')");
  db.close();
  const recipient = cairn("keygen", "-o", "key.txt").trim();
  writeFileSync(
    join(work, "cairn.yaml"),
    `jobs:\n  app:\n    sources:\n      files: { type: files, paths: [./data] }\n      db: { type: sqlite, path: ./app.db }\n    encryption: { age: { recipients: [${recipient}] } }\n    destinations: { d: { type: local, path: ./backups } }\n`,
  );
  cairn("backup", "-q");
  cairn("verify", "app", "-i", "key.txt");
  cairn("restore", "app", "--source", "files", "--to-dir", "r", "-i", "key.txt");
  cairn("restore", "app", "--source", "db", "--to-dir", "rdb", "-i", "key.txt");
  assert.deepEqual(readFileSync(join(work, "r/data/sub/b.bin")), readFileSync(join(work, "data/sub/b.bin")));
  const restored = new DatabaseSync(join(work, "rdb/app.db"), { readOnly: true });
  assert.deepEqual(
    restored
      .prepare("SELECT v FROM t ORDER BY id")
      .all()
      .map((row) => row.v),
    ["a", "ü", "c"],
  );
  restored.close();
});
