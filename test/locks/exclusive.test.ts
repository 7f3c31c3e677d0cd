/**
 * Destination locks that lock (issue #13, items 8 and 9): takers racing on S3 (whose put overwrites
 * silently) get exactly one winner; a running job refreshes its lock so it is never taken over while
 * it runs; a job whose lock was taken over (it was paused past lock_expires) fails instead of
 * writing a manifest; a transient error on a lock request is retried.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { LockError } from "../../src/kit/errors.ts";
import { lockDestinations } from "../../src/locks/locks.ts";
import { S3Storage, s3Storage, withProvider } from "../../src/storages/s3.ts";
import { testContext } from "../../src/testing/index.ts";
import { apacheMissing, startApacheDav } from "../helpers/apache.ts";
import { cairn, tempDir } from "../helpers/env.ts";
import { startFaultProxy } from "../helpers/fault-proxy.ts";
import { startS3rver } from "../helpers/s3.ts";

const ctx = () => testContext();

test("s3: three takers racing for one lock, eight rounds: exactly one holds it each round (#13.8)", async () => {
  const { endpoint } = await startS3rver(["locks"]);
  const storage = new S3Storage(
    withProvider(
      s3Storage.schema.parse({
        bucket: "locks",
        endpoint,
        path_style: true,
        region: "us-east-1",
        access_key_id: "S3RVER",
        secret_access_key: "S3RVER",
      }),
    ),
  );
  const destination = { name: "s3", storage, template: "{job}" };
  for (let round = 0; round < 8; round++) {
    const takers = await Promise.allSettled(
      [1, 2, 3].map(() => lockDestinations([destination], `job${round}`, "backup", 60_000, ctx())),
    );
    const winners = takers.filter((t) => t.status === "fulfilled");
    assert.equal(winners.length, 1, `round ${round}: ${winners.length} takers hold the lock`);
    for (const t of takers)
      if (t.status === "rejected") assert.ok(t.reason instanceof LockError, String(t.reason));
    await (winners[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
    // Released: the next taker gets it at once.
    const next = await lockDestinations([destination], `job${round}`, "backup", 60_000, ctx());
    await next.release();
  }
});

function slowJob(seconds: number) {
  const dir = tempDir();
  mkdirSync(join(dir, "site"));
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      slow: { type: command, command: [sh, -c, "sleep ${seconds}; echo data"] }
    compression: none
    lock_expires: 2s
    retention: { keep_last: 1, min_age: 0 }
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  // A second state folder: the other run stands for another host (the local lock is per host).
  const cli = (args: string[], state = "state") =>
    cairn(args, { cwd: dir, env: { CAIRN_STATE_DIR: join(dir, state) } });
  return { dir, cli };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("a running backup refreshes its lock: past lock_expires, another host's prune is still refused (#13.9)", async () => {
  const { cli } = slowJob(6);
  const backup = cli(["backup"]);
  await sleep(4500);
  const prune = await cli(["prune"], "state-other-host");
  assert.equal(
    prune.code,
    11,
    `the lock was live after 4.5 s of a 2 s lock_expires: ${prune.stdout}${prune.stderr}`,
  );
  assert.match(prune.stdout + prune.stderr, /locked on destination here: backup by pid \d+/);
  const done = await backup;
  assert.equal(done.code, 0, done.stderr);
  const verify = await cli(["verify", "app"]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});

test("a backup whose lock was taken over while it was paused fails, and writes no manifest (#13.9)", async () => {
  const { cli, dir } = slowJob(3);
  const { spawn } = await import("node:child_process");
  const { CLI } = await import("../helpers/env.ts");
  const child = spawn(process.execPath, [CLI, "backup"], {
    cwd: dir,
    env: { ...process.env, CAIRN_STATE_DIR: join(dir, "state") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
  // Stopped inside its 3 s source, whatever the start-up took on a loaded machine.
  while (!stderr.includes("backup started")) await sleep(50);
  await sleep(500);
  child.kill("SIGSTOP"); // a host that hangs: no refreshes
  await sleep(4000);
  const prune = await cli(["prune"], "state-other-host");
  assert.equal(prune.code, 0, `the stale lock is taken over: ${prune.stdout}${prune.stderr}`);
  child.kill("SIGCONT");
  const code = await exited;
  assert.equal(code, 11, `${stderr}\nprune: ${prune.stdout}${prune.stderr}`);
  assert.match(stderr, /the lock on destination here was taken over by another run while this one held it/);
  const listed = JSON.parse((await cli(["list", "--json"])).stdout);
  assert.equal(listed.snapshots.length, 0, "no snapshot from the run that lost its lock");
});

const skipDav = apacheMissing();

test("webdav: an HTTP 500 on the lock's first request is retried like any other call (#13.9)", {
  skip: skipDav,
}, async () => {
  const dav = await startApacheDav();
  const proxy = await startFaultProxy(dav.port);
  const dir = tempDir();
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      notes: { type: command, command: [echo, hello] }
    compression: none
    destinations:
      dav:
        type: webdav
        url: http://127.0.0.1:${proxy.port}/dav/locks
        user: ${dav.user}
        password: ${dav.password}
`,
  );
  proxy.answerNext("HEAD", 500);
  const run = await cairn(["backup"], { cwd: dir, env: { CAIRN_STATE_DIR: join(dir, "state") } });
  assert.equal(run.code, 0, run.stdout + run.stderr);
  await proxy.close();
});
