/** The redis source against real redis-server processes: every key's value and TTL comes back. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import { type RedisServer, startRedis } from "../helpers/redis.ts";

function fill(server: RedisServer): void {
  const commands = [
    "SET plain hello",
    "SET ünïcødé:ключ значение",
    "HSET user:1 name Ada lang en",
    "RPUSH queue a b c d",
    "SADD tags x y z",
    "ZADD board 1 one 2 two 3.5 three",
    "XADD events * kind login",
    "SET session:1 s EX 3600",
    "SELECT 3",
    "SET in-db-3 yes",
  ];
  server.cli([], `${commands.join("\n")}\n`);
  server.cli(["-x", "SET", "binary"], Buffer.from([0, 255, 10, 13, 0]));
  server.cli(["-x", "SET", "big"], Buffer.alloc(2_000_000, "x"));
}

const READ: Record<string, string[]> = {
  string: ["GET"],
  hash: ["HGETALL"],
  list: ["LRANGE", "0", "-1"],
  set: ["SMEMBERS"],
  zset: ["ZRANGE", "0", "-1", "WITHSCORES"],
  stream: ["XRANGE", "-", "+"],
};

/** Every key of every database: its type, its value (members sorted where order means nothing) and whether it expires. */
function contents(server: RedisServer): string[] {
  const out: string[] = [];
  for (const db of ["0", "3"]) {
    const keys = server.cli(["-n", db, "--scan"]).split("\n").filter(Boolean).sort();
    for (const key of keys) {
      const type = server.cli(["-n", db, "TYPE", key]).trim();
      const [command, ...args] = READ[type]!;
      let value = server.cli(["-n", db, "--no-raw", command!, key, ...args]).trim();
      // Sets and hashes have no order: compare their members (hash fields with their values) sorted.
      if (type === "set" || type === "hash") {
        const items = value.split("\n").map((line) => line.replace(/^\d+\) /, ""));
        const members =
          type === "hash" ? items.flatMap((v, i) => (i % 2 ? [] : [`${v}=${items[i + 1]}`])) : items;
        value = members.sort().join("\n");
      }
      const ttl = Number(server.cli(["-n", db, "TTL", key]).trim());
      out.push(
        `${db} ${type} ${key} ${value.length > 200 ? `${value.length}:${value.slice(0, 40)}` : value} ${ttl > 0 ? "expires" : ttl}`,
      );
    }
  }
  return out;
}

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
