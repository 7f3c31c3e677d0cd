/** The swift destination against a one-node OpenStack Swift (Debian's packages) on 127.0.0.1, v1 and Keystone v3 auth. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { swiftStorage } from "../../src/storages/swift.ts";
import { testContext } from "../../src/testing/index.ts";
import { cairn, tempDir } from "../helpers/env.ts";
import { startSwift, swiftMissing } from "../helpers/swift.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip = swiftMissing();
const swift = skip ? undefined : await startSwift();
const keystoneSkip =
  skip || (swift?.v3 ? false : "needs Keystone (python3-keystone, python3-keystonemiddleware)");

const open = (overrides: Record<string, unknown> = {}): Storage =>
  swiftStorage.create(
    swiftStorage.schema.parse({
      ...swift!.v1,
      container: "cairn",
      prefix: "conformance",
      segment_size: "100MiB",
      ...overrides,
    }),
    { name: "swift-test", baseDir: "/" },
  ) as Storage;

const ctx = () => testContext();

async function read(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Names in a container, straight from Swift (not through cairn). */
async function containerListing(container: string): Promise<string[]> {
  const auth = await fetch(swift!.v1.auth_url, {
    headers: { "x-auth-user": swift!.v1.user, "x-auth-key": swift!.v1.password },
  });
  const response = await fetch(`${auth.headers.get("x-storage-url")}/${container}?format=json`, {
    headers: { "x-auth-token": auth.headers.get("x-auth-token") ?? "" },
  });
  if (response.status === 404) return [];
  return ((await response.json()) as { name: string }[]).map((entry) => entry.name);
}

conformance(
  "swift (one-node Swift, v1 auth)",
  async () => ({
    storage: open(),
    withWrongCredentials: () => open({ password: "wrong" }),
    server: {
      port: swift!.v1Port,
      via: (port) =>
        open({
          auth_url: `http://127.0.0.1:${port}/auth/v1.0`,
          storage_url: `http://127.0.0.1:${port}/v1/AUTH_cairn`,
        }),
    },
  }),
  skip,
);

test("swift: an object above segment_size is stored as segments + manifest, read back whole, and deleted with its segments", {
  skip,
}, async () => {
  const storage = open({ container: "slo", prefix: "", segment_size: "1MiB" });
  const bytes = randomBytes(3.5 * 1024 * 1024);
  const key = "snap/big object ü.bin";
  const info = await storage.put(key, Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), ctx());
  assert.equal(info.size, bytes.length);
  assert.equal(
    (await containerListing("slo_segments")).length,
    4,
    "four 1 MiB segments (the last one shorter)",
  );
  assert.deepEqual(await read(await storage.get(key, ctx())), bytes);
  assert.equal((await storage.stat(key, ctx()))?.size, bytes.length);
  const listed = [];
  for await (const object of storage.list("snap/", ctx())) listed.push(object);
  assert.deepEqual(
    listed.map((o) => [o.key, o.size]),
    [[key, bytes.length]],
  );
  await assert.rejects(storage.put(key, Readable.from([Buffer.from("again")]), ctx()), /never overwrites/);
  await storage.delete(key, ctx());
  assert.equal(await storage.stat(key, ctx()), undefined);
  assert.deepEqual(await containerListing("slo_segments"), [], "segments go with their manifest");
  await storage.close?.();
});

test("swift: a large upload that fails midway leaves neither an object nor its segments", {
  skip,
}, async () => {
  const storage = open({ container: "broken", prefix: "", segment_size: "1MiB" });
  async function* failing() {
    yield randomBytes(2.5 * 1024 * 1024);
    throw new Error("the dump died");
  }
  await assert.rejects(storage.put("snap/part", Readable.from(failing()), ctx()), /the dump died/);
  assert.equal(await storage.stat("snap/part", ctx()), undefined);
  assert.deepEqual(await containerListing("broken_segments"), []);
  assert.deepEqual(await containerListing("broken"), []);
  await storage.close?.();
});

test("swift: without credentials in the config or the environment, a clear error says what to set", {
  skip,
}, () => {
  const saved = { ...process.env };
  for (const name of ["OS_AUTH_URL", "ST_AUTH", "OS_USERNAME", "ST_USER", "OS_PASSWORD", "ST_KEY"])
    delete process.env[name];
  try {
    assert.throws(
      () =>
        swiftStorage.create(swiftStorage.schema.parse({ container: "c" }), { name: "objects", baseDir: "/" }),
      (error: unknown) =>
        error instanceof StorageError &&
        /swift destination objects has no auth_url, user, password/.test(error.message) &&
        /OS_AUTH_URL/.test(String(error.hint)),
    );
    process.env.OS_AUTH_URL = swift!.v1.auth_url;
    process.env.OS_USERNAME = swift!.v1.user;
    process.env.OS_PASSWORD = swift!.v1.password;
    assert.ok(
      swiftStorage.create(swiftStorage.schema.parse({ container: "c" }), { name: "objects", baseDir: "/" }),
    );
  } finally {
    process.env = saved;
  }
});

test("swift: Keystone v3 — store, read, list and delete as a project member", {
  skip: keystoneSkip,
}, async () => {
  const storage = open({ ...swift!.v3, container: "keystone" });
  const key = `k-${randomBytes(3).toString("hex")}/object`;
  await storage.put(key, Readable.from([Buffer.from("through keystone")]), ctx());
  assert.equal((await read(await storage.get(key, ctx()))).toString(), "through keystone");
  const listed = [];
  for await (const object of storage.list(key.split("/")[0] ?? "", ctx())) listed.push(object.key);
  assert.deepEqual(listed, [key]);
  await storage.delete(key, ctx());
  assert.equal(await storage.stat(key, ctx()), undefined);
  await storage.close?.();
});

test("swift: Keystone v3 — a wrong password or a region without Swift gives an error that says so", {
  skip: keystoneSkip,
}, async () => {
  const wrong = open({ ...swift!.v3, container: "keystone", password: "wrong" });
  await assert.rejects(wrong.stat("x", ctx()), (error: unknown) => {
    assert.ok(error instanceof StorageError);
    assert.match(error.message, /authentication at .*\/v3 failed: HTTP 401/);
    assert.ok(!error.message.includes("wrong"));
    return true;
  });
  const region = open({ ...swift!.v3, container: "keystone", region: "Mars" });
  await assert.rejects(region.stat("x", ctx()), /no public object-store endpoint in region Mars/);
});

test("swift: backup, list, verify and restore from the CLI over Keystone v3; password redacted", {
  skip: keystoneSkip,
}, async () => {
  const v3 = swift!.v3!;
  const outputs = await cliRoundTrip(
    `type: swift
auth_url: ${v3.auth_url}
user: ${v3.user}
password: ${v3.password}
project: ${v3.project}
container: e2e
segment_size: 1MiB`,
    { split: "2MB" },
  );
  for (const output of outputs) assert.ok(!output.includes(v3.password), output);
});

test("swift: `cairn upload FILE swift://container/prefix` with the credentials from OS_* variables", {
  skip,
}, async () => {
  const dir = tempDir();
  const bytes = randomBytes(200_000);
  writeFileSync(join(dir, "dump.bin"), bytes);
  const env = {
    OS_AUTH_URL: swift!.v1.auth_url,
    OS_USERNAME: swift!.v1.user,
    OS_PASSWORD: swift!.v1.password,
  };
  const uploaded = await cairn(["upload", "dump.bin", "swift://by-url/manual"], { cwd: dir, env });
  assert.equal(uploaded.code, 0, uploaded.stderr);
  assert.ok(!`${uploaded.stdout}${uploaded.stderr}`.includes(swift!.v1.password));
  assert.deepEqual(await containerListing("by-url"), ["manual/dump.bin"]);
  const storage = open({ container: "by-url", prefix: "manual" });
  assert.deepEqual(await read(await storage.get("dump.bin", ctx())), bytes);
  const again = await cairn(["upload", "dump.bin", "swift://by-url/manual"], { cwd: dir, env });
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already exists/);
});
