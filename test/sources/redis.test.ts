/** The redis source against real redis-server processes: every key's value and TTL comes back. */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, run, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import { redisContents as contents, fillRedis as fill, startRedis } from "../helpers/redis.ts";

test("redis: an RDB snapshot of a live server (keeping nothing on disk) restores every key", async () => {
  const ws = workspace(tempDir());
  const source = await startRedis({ dir: tempDir() });
  fill(source);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:\n  cache:\n    sources: { redis: { type: redis, port: ${source.port} } }\n    encryption: { age: { recipients: [${ws.recipient}] } }\n    destinations: { local: { type: local, path: ./backups } }\n`,
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const verify = await cairn(["verify", "cache", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /redis-check-rdb: OK, 11 keys/);

  const target = join(ws.dir, "restored");
  const restore = await cairn(["restore", "cache", "--to-dir", target, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(restore.code, 0, restore.stderr);
  const copy = await startRedis({ dir: target, dbfilename: "dump.rdb" });
  assert.deepEqual(contents(copy), contents(source));
  assert.equal(contents(copy).length, 11);
});

test("redis: a wrong password fails the backup clearly, without printing it; nothing is recorded", async () => {
  const ws = workspace(tempDir());
  const source = await startRedis({ dir: tempDir(), password: "right-secret-7a" });
  fill(source);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:\n  cache:\n    sources: { redis: { type: redis, port: ${source.port}, password: wrong-secret-9b } }\n    destinations: { local: { type: local, path: ./backups } }\n`,
  );
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /WRONGPASS|invalid password|NOAUTH|AUTH failed/i);
  assert.ok(!r.stderr.includes("wrong-secret-9b"));
  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 0);
});

test("redis: a redis-cli killed in the middle of the RDB fails the backup; nothing is recorded", async () => {
  const ws = workspace(tempDir());
  const source = await startRedis({ dir: tempDir() });
  fill(source);
  const bin = join(ws.dir, "bin");
  mkdirSync(bin);
  const real = (await run("sh", ["-c", "command -v redis-cli"])).stdout.trim();
  writeFileSync(
    join(bin, "redis-cli"),
    `#!/bin/sh\ncase "$*" in *--rdb*) "${real}" "$@" | head -c 100000; kill -9 $$;; esac\nexec "${real}" "$@"\n`,
  );
  chmodSync(join(bin, "redis-cli"), 0o755);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:\n  cache:\n    sources: { redis: { type: redis, port: ${source.port}, bin_dir: ${bin} } }\n    destinations: { local: { type: local, path: ./backups } }\n`,
  );
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /redis-cli was killed by SIGKILL/);
  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 0);
});
