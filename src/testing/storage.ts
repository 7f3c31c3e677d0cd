/**
 * The storage conformance suite every built-in destination passes against a real server: the
 * Storage contract as a user relies on it (kit/contracts.ts). Plugin authors run the same cases
 * against their destination:
 *
 *   registerCases(test, storageConformance(async () => ({ storage: await openMine() })), "mine");
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable, Transform } from "node:stream";
import type { PluginContext, Storage } from "../kit/contracts.ts";
import { NotFoundError, StorageError } from "../kit/errors.ts";
import { readAll as read, type Skipped, type TestCase, testContext } from "./cases.ts";

export interface StorageSubject {
  storage: Storage;
  /** The same destination with wrong credentials, where it has credentials. */
  withWrongCredentials?: () => Storage | Promise<Storage>;
  /** Store and delete the 1100 keys 50 at a time (for destinations where each call is slow). */
  parallelCleanup?: boolean;
}

export interface StorageConformanceOptions {
  /** Size of the big-object case in MiB (default 256; the built-ins run 1024). */
  bigMiB?: number;
}

type Body = (subject: StorageSubject, ctx: PluginContext, base: string) => Promise<undefined | Skipped>;

async function keysUnder(storage: Storage, prefix: string, ctx: PluginContext): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of storage.list(prefix, ctx)) keys.push(o.key);
  return keys.sort();
}

/** `mb` MiB of bytes that differ in every MiB, produced a block at a time (flat memory). */
export function bigStream(mb: number): { stream: Readable; sha256: () => string } {
  const hash = createHash("sha256");
  const block = randomBytes(1024 * 1024);
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent === mb) return this.push(null);
      const chunk = Buffer.from(block);
      chunk.writeUInt32BE(sent, 0);
      sent++;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest("hex") };
}

/** Runs `body` with a freshly opened subject under a fresh key prefix, and closes the subject. */
export function storageCase(open: () => Promise<StorageSubject>, title: string, body: Body): TestCase {
  return {
    title,
    async run() {
      const subject = await open();
      try {
        return await body(subject, testContext(), `conformance-${randomBytes(4).toString("hex")}`);
      } finally {
        await subject.storage.close?.();
      }
    },
  };
}

const roundTrip: Body = async ({ storage }, ctx, base) => {
  const objects = {
    [`${base}/plain.bin`]: randomBytes(70_000),
    [`${base}/with space/ünïcødé 🐘.txt`]: Buffer.from("hello ünï\n"),
    [`${base}/deep/er/empty-ish`]: Buffer.from("x"),
  };
  for (const [key, body] of Object.entries(objects)) {
    const info = await storage.put(key, Readable.from([body]), ctx);
    assert.equal(info.size, body.length, key);
  }
  for (const [key, body] of Object.entries(objects)) {
    assert.deepEqual(await read(await storage.get(key, ctx)), body, key);
    assert.equal((await storage.stat(key, ctx))?.size, body.length, key);
  }
  assert.deepEqual(await keysUnder(storage, `${base}/`, ctx), Object.keys(objects).sort());
  assert.deepEqual(await keysUnder(storage, `${base}/with space/`, ctx), [
    `${base}/with space/ünïcødé 🐘.txt`,
  ]);
  for (const key of Object.keys(objects)) await storage.delete(key, ctx);
  await storage.delete(`${base}/plain.bin`, ctx); // again: idempotent
  assert.equal(await storage.stat(`${base}/plain.bin`, ctx), undefined);
  assert.deepEqual(await keysUnder(storage, `${base}/`, ctx), []);
};

const missing: Body = async ({ storage }, ctx, base) => {
  await assert.rejects(storage.get(`${base}/missing`, ctx), NotFoundError);
  assert.equal(await storage.stat(`${base}/missing`, ctx), undefined);
};

const neverOverwrites: Body = async ({ storage }, ctx, base) => {
  await storage.put(`${base}/once`, Readable.from([Buffer.from("first")]), ctx);
  await assert.rejects(
    storage.put(`${base}/once`, Readable.from([Buffer.from("second")]), ctx),
    StorageError,
  );
  assert.equal((await read(await storage.get(`${base}/once`, ctx))).toString(), "first");
  await storage.delete(`${base}/once`, ctx);
};

const longListing: Body = async ({ storage, parallelCleanup }, ctx, base) => {
  const keys = Array.from({ length: 1100 }, (_, i) => `${base}/many/${String(i).padStart(5, "0")}`);
  for (let i = 0; i < keys.length; i += 50)
    await Promise.all(
      keys.slice(i, i + 50).map((key) => storage.put(key, Readable.from([Buffer.from(key)]), ctx)),
    );
  assert.deepEqual(await keysUnder(storage, `${base}/many/`, ctx), keys);
  // One at a time unless asked: some test servers (s3rver) answer 500 to concurrent deletes in a
  // folder, and deletes are not what this case is about.
  if (parallelCleanup)
    for (let i = 0; i < keys.length; i += 50)
      await Promise.all(keys.slice(i, i + 50).map((key) => storage.delete(key, ctx)));
  else for (const key of keys) await storage.delete(key, ctx);
  assert.deepEqual(await keysUnder(storage, `${base}/many/`, ctx), []);
};

const failedPut: Body = async ({ storage }, ctx, base) => {
  let sent = 0;
  const failing = new Readable({
    read() {
      if (sent++ < 12) this.push(randomBytes(1024 * 1024));
      else this.destroy(new Error("the source died"));
    },
  });
  await assert.rejects(storage.put(`${base}/broken`, failing, ctx));
  assert.equal(await storage.stat(`${base}/broken`, ctx), undefined);
  assert.deepEqual(await keysUnder(storage, `${base}/`, ctx), []);
};

function bigObject(mb: number): Body {
  return async ({ storage }, ctx, base) => {
    const big = bigStream(mb);
    const before = process.memoryUsage().rss;
    let peak = before;
    const sample = () => {
      peak = Math.max(peak, process.memoryUsage().rss);
    };
    // On a timer and on every chunk: a storage that buffers synchronously starves the timer.
    const sampler = setInterval(sample, 100);
    const counted = big.stream.pipe(
      new Transform({
        transform(chunk, _encoding, done) {
          sample();
          done(null, chunk);
        },
      }),
    );
    try {
      const info = await storage.put(`${base}/big.bin`, counted, ctx);
      assert.equal(info.size, mb * 1024 * 1024);
      const back = createHash("sha256");
      for await (const chunk of await storage.get(`${base}/big.bin`, ctx)) {
        sample();
        back.update(chunk as Buffer);
      }
      assert.equal(back.digest("hex"), big.sha256());
    } finally {
      clearInterval(sampler);
      await storage.delete(`${base}/big.bin`, ctx);
    }
    assert.ok(peak - before < 300 * 1024 * 1024, `memory grew by ${((peak - before) / 1e6).toFixed(0)} MB`);
  };
}

const wrongCredentials: Body = async (subject, ctx, base) => {
  if (!subject.withWrongCredentials) return { skipped: "the destination has no credentials" };
  const wrong = await subject.withWrongCredentials();
  try {
    const error = await wrong.put(`${base}/x`, Readable.from([Buffer.from("x")]), ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof StorageError, `expected a StorageError, got ${String(error)}`);
    assert.ok(error.message.includes(wrong.location), error.message);
  } finally {
    await wrong.close?.();
  }
};

/** The contract cases for one destination; `open` is called once per case. */
export function storageConformance(
  open: () => Promise<StorageSubject>,
  options: StorageConformanceOptions = {},
): TestCase[] {
  const mb = options.bigMiB ?? 256;
  const at = (title: string, body: Body) => storageCase(open, title, body);
  return [
    at("put, stat, get, list and delete; keys with spaces and unicode", roundTrip),
    at("get of a missing key is a NotFoundError; stat is undefined", missing),
    at("never overwrites an object", neverOverwrites),
    at("listings past one page (1100 keys)", longListing),
    at("a put whose stream fails leaves no object that looks complete", failedPut),
    at(`a ${mb} MiB object streams in and out with flat memory and the same SHA-256`, bigObject(mb)),
    at("wrong credentials fail with an error that names the destination", wrongCredentials),
  ];
}
