/** The limit, timeout and dry-run wrappers around a real local destination. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync } from "node:fs";
import { Readable } from "node:stream";
import { test } from "node:test";
import { wrapStorage } from "../../src/index.ts";
import type { PluginContext, Storage } from "../../src/kit/contracts.ts";
import { parseDuration } from "../../src/kit/duration.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { silentLogger } from "../../src/kit/logger.ts";
import { LocalStorage } from "../../src/storages/local.ts";
import {
  withBandwidthLimit,
  withConcurrencyLimit,
  withDryRun,
  withTimeout,
} from "../../src/wrappers/index.ts";
import { wrap } from "../../src/wrappers/wrap.ts";
import { tempDir } from "../helpers/env.ts";

const ctx = (): PluginContext => ({
  signal: new AbortController().signal,
  logger: silentLogger,
  workDir: tempDir(),
});

/** A body that sends `chunks` pieces, then waits for `release` before ending. */
function gatedBody(chunks: number): { body: Readable; release: () => void } {
  let release = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  async function* produce() {
    for (let i = 0; i < chunks; i++) yield randomBytes(1000);
    await gate;
  }
  return { body: Readable.from(produce()), release };
}

test("concurrency: no more transfers at once than the limit, and every one completes", async () => {
  const storage = withConcurrencyLimit(new LocalStorage(tempDir()), 2);
  const bodies = Array.from({ length: 5 }, () => gatedBody(3));
  const c = ctx();
  const done: string[] = [];
  const puts = bodies.map(({ body }, i) => storage.put(`k${i}`, body, c).then(() => done.push(`k${i}`)));
  await new Promise((resolve) => setTimeout(resolve, 200));
  // Only two bodies are being read; the others wait for a slot without being touched.
  const touched = bodies.filter(({ body }) => body.readableDidRead).length;
  assert.equal(touched, 2);
  for (const { release } of bodies) release();
  await Promise.all(puts);
  assert.equal(done.length, 5);
});

test("concurrency: a get holds its slot until its stream is read to the end", async () => {
  const local: Storage = new LocalStorage(tempDir());
  const c = ctx();
  await local.put("a", Readable.from([Buffer.from("a")]), c);
  await local.put("b", Readable.from([Buffer.from("b")]), c);
  const storage = withConcurrencyLimit(local, 1);
  const first = await storage.get("a", c);
  let second = false;
  const pending = storage.get("b", c).then((s) => {
    second = true;
    return s;
  });
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(second, false);
  assert.equal((await first.toArray()).join(""), "a");
  assert.equal((await (await pending).toArray()).join(""), "b");
});

test("bandwidth: bytes move no faster than the limit, shared by concurrent transfers, and arrive intact", async () => {
  const storage = withBandwidthLimit(new LocalStorage(tempDir()), 1024 * 1024);
  const c = ctx();
  const bodies = [randomBytes(300_000), randomBytes(300_000)];
  const started = performance.now();
  await Promise.all(bodies.map((body, i) => storage.put(`b${i}`, Readable.from([body]), c)));
  const seconds = (performance.now() - started) / 1000;
  // 600 000 bytes at 1 MiB/s, the first tenth-of-a-second slice sent at once: at least 0.47 s. A
  // lower bound only, so a slow machine cannot fail it.
  assert.ok(seconds >= 0.46, `took ${seconds.toFixed(2)} s`);
  for (const [i, body] of bodies.entries())
    assert.deepEqual(Buffer.concat(await (await storage.get(`b${i}`, c)).toArray()), body);
});

test("timeout: an upload whose destination stops taking bytes fails, naming the destination", async () => {
  const local: Storage = new LocalStorage(tempDir());
  const stuck = wrap(local, {
    // Reads a little, then never again: a hung connection.
    async put(key, body) {
      body.read();
      await new Promise(() => {});
      return { key, size: 0 };
    },
  });
  const bounded = withTimeout(stuck, 300);
  const error = await bounded
    .put("x", Readable.from([randomBytes(100_000), randomBytes(100_000)]), ctx())
    .catch((e: unknown) => e);
  assert.ok(error instanceof StorageError, String(error));
  assert.ok(error.message.includes(local.location), error.message);
  assert.match(error.message, /storing x made no progress/);
});

test("timeout: a slow source is not the destination's fault", async () => {
  const storage = withTimeout(new LocalStorage(tempDir()), 1000);
  async function* slowSource() {
    yield Buffer.from("start ");
    await new Promise((resolve) => setTimeout(resolve, 2500)); // a dump thinking, longer than the timeout
    yield Buffer.from("end");
  }
  const c = ctx();
  const info = await storage.put("slow", Readable.from(slowSource()), c);
  assert.equal(info.size, 9);
  assert.equal(Buffer.concat(await (await storage.get("slow", c)).toArray()).toString(), "start end");
});

test("dry run: the body is read to the end and counted, nothing is written or deleted", async () => {
  const dir = tempDir();
  const local: Storage = new LocalStorage(dir);
  const c = ctx();
  await local.put("kept", Readable.from([Buffer.from("kept")]), c);
  const dry = withDryRun(local);
  const body = Readable.from([randomBytes(5000), randomBytes(5000)]);
  const info = await dry.put("new", body, c);
  assert.equal(info.size, 10_000);
  assert.equal(body.readableEnded, true);
  await dry.delete("kept", c);
  assert.deepEqual(readdirSync(dir), ["kept"]);
  assert.equal((await dry.stat("kept", c))?.size, 4);
});

test("durations: seconds, minutes, combinations; nonsense is refused", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("2d"), 172_800_000);
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration(15), 15_000);
  assert.equal(parseDuration("10 parsecs"), undefined);
  assert.equal(parseDuration(""), undefined);
});

test("wrapStorage (the library's export) composes the wrappers: a dry run through all of them stores nothing", async () => {
  const dir = tempDir();
  const storage = wrapStorage(new LocalStorage(dir), {
    retries: 3,
    timeoutMs: 60_000,
    concurrency: 2,
    bandwidth: 100 * 1024 * 1024,
    dryRun: true,
  });
  const info = await storage.put("a/b", Readable.from([randomBytes(3000)]), ctx());
  assert.equal(info.size, 3000);
  assert.deepEqual(readdirSync(dir), []);
});
