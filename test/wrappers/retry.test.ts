/** The retry wrapper's logic (a unit test of pure logic: the storage here is a scripted fake). */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { ObjectInfo, Storage } from "../../src/kit/contracts.ts";
import { NotFoundError, StorageError } from "../../src/kit/errors.ts";
import { sdkRetryable } from "../../src/storages/s3.ts";
import { testContext } from "../../src/testing/index.ts";
import { isTransient, withRetries } from "../../src/wrappers/retry.ts";

const ctx = testContext();
const reset = () => Object.assign(new Error("socket hang up"), { code: "ECONNRESET" });

function scripted(failures: unknown[]): Storage & { calls: number } {
  const fake = {
    calls: 0,
    capabilities: { atomicPut: true, maxConcurrency: 1 },
    location: "fake://",
    async put(key: string): Promise<ObjectInfo> {
      return { key, size: 0 };
    },
    async get(): Promise<Readable> {
      fake.calls++;
      const failure = failures.shift();
      if (failure) throw failure;
      return Readable.from([Buffer.from("ok")]);
    },
    async stat() {
      return undefined;
    },
    async *list(): AsyncIterable<ObjectInfo> {
      fake.calls++;
      const failure = failures.shift();
      yield { key: "a", size: 1 };
      if (failure) throw failure;
      yield { key: "b", size: 1 };
    },
    async delete() {},
  };
  return fake;
}

test("transient errors are retried with growing, jittered delays; then the result comes through", async () => {
  const delays: number[] = [];
  const fake = scripted([reset(), new StorageError("x (HTTP 503)", { retryable: true })]);
  const storage = withRetries(fake, {
    attempts: 4,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    random: () => 1,
    sleep: async (ms) => {
      delays.push(ms);
    },
  });
  const body = await storage.get("k", ctx);
  assert.equal((await body.toArray()).join(""), "ok");
  assert.equal(fake.calls, 3);
  assert.deepEqual(delays, [100, 200]);
});

test("not found, and errors that are not transient, fail at once; the last transient error wins after the last attempt", async () => {
  for (const failure of [new NotFoundError("gone"), new StorageError("AccessDenied")]) {
    const fake = scripted([failure]);
    await assert.rejects(
      withRetries(fake, { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 }).get("k", ctx),
      failure,
    );
    assert.equal(fake.calls, 1);
  }
  const fake = scripted([reset(), reset(), reset()]);
  await assert.rejects(
    withRetries(fake, { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} }).get("k", ctx),
    /socket hang up/,
  );
  assert.equal(fake.calls, 3);
});

test("a listing that breaks half-way is retried as a whole: no key is handed out twice", async () => {
  const fake = scripted([reset()]);
  const storage = withRetries(fake, { attempts: 2, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} });
  const keys: string[] = [];
  for await (const o of storage.list("", ctx)) keys.push(o.key);
  assert.deepEqual(keys, ["a", "b"]);
});

test("what counts as transient", () => {
  assert.equal(isTransient(reset()), true);
  assert.equal(isTransient(new StorageError("throttled", { retryable: true })), true);
  assert.equal(isTransient(new StorageError("refused", { retryable: false })), false);
  // The S3 destination says which SDK errors are transient (the wrapper knows no SDK).
  assert.equal(sdkRetryable("SlowDown", 503), true);
  assert.equal(sdkRetryable("ThrottlingException", 429), true);
  assert.equal(sdkRetryable("AccessDenied", 403), false);
  assert.equal(isTransient(new NotFoundError("x")), false);
  assert.equal(isTransient(new StorageError("wrapped", { cause: reset() })), true);
});
