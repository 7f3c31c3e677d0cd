/** The http destination (plain PUT/GET/DELETE, listing through nginx's JSON autoindex) against nginx on 127.0.0.1. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { httpStorage } from "../../src/storages/http.ts";
import { testContext } from "../../src/testing/index.ts";
import { cairn, hasProgram, tempDir } from "../helpers/env.ts";
import { startNginxPut } from "../helpers/nginx.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip =
  hasProgram("nginx") || hasProgram("/usr/sbin/nginx")
    ? false
    : "needs nginx (.ci/system-deps installs nginx-light)";
const nginx = skip ? undefined : await startNginxPut();

const open = (overrides: Record<string, unknown> = {}): Storage =>
  httpStorage.create(
    httpStorage.schema.parse({
      url: nginx!.url,
      user: nginx!.user,
      password: nginx!.password,
      connections: 8,
      ...overrides,
    }),
    { name: "http-test", baseDir: "/" },
  ) as Storage;

const ctx = () => testContext();

conformance(
  "http (nginx PUT + JSON autoindex)",
  async () => ({
    storage: open(),
    withWrongCredentials: () => open({ password: "wrong" }),
    server: { port: nginx!.port, via: (port) => open({ url: `http://127.0.0.1:${port}/backups` }) },
  }),
  skip,
);

test("http: with listing: none the destination stores and reads, and a listing fails saying it is upload-only", {
  skip,
}, async () => {
  const storage = open({ listing: "none" });
  await storage.put("only-up/object", Readable.from([Buffer.from("kept")]), ctx());
  assert.equal((await storage.stat("only-up/object", ctx()))?.size, 4);
  await assert.rejects(
    (async () => {
      for await (const _ of storage.list("only-up/", ctx()));
    })(),
    (error: unknown) =>
      error instanceof StorageError &&
      /upload-only/.test(error.message) &&
      /autoindex/.test(String(error.hint)),
  );
  await storage.delete("only-up/object", ctx());
  assert.equal(await storage.stat("only-up/object", ctx()), undefined);
});

test("http: backup, list, verify and restore from the CLI; password redacted", { skip }, async () => {
  const outputs = await cliRoundTrip(
    `type: http
url: ${nginx!.url}/e2e
user: ${nginx!.user}
password: ${nginx!.password}`,
    { split: "1MB" },
  );
  for (const output of outputs) assert.ok(!output.includes(nginx!.password), output);
});

test("http: `cairn upload FILE http://user@host/path?password_file=F` stores the file once, never twice", {
  skip,
}, async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "dump.bin"), "a dump\n");
  writeFileSync(join(dir, "pw"), `${nginx!.password}\n`);
  const url = `${nginx!.url.replace("://", `://${nginx!.user}@`)}/manual?password_file=pw`;
  const first = await cairn(["upload", "dump.bin", url], { cwd: dir });
  assert.equal(first.code, 0, first.stderr);
  const stored = await fetch(`${nginx!.url}/manual/dump.bin`, {
    headers: {
      authorization: `Basic ${Buffer.from(`${nginx!.user}:${nginx!.password}`).toString("base64")}`,
    },
  });
  assert.equal(await stored.text(), "a dump\n");
  const again = await cairn(["upload", "dump.bin", url], { cwd: dir });
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already exists/);
});
