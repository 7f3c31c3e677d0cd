/**
 * The azure destination against Azurite, Microsoft's Azure Storage emulator, on 127.0.0.1 — the
 * same REST protocol and shared-key signatures as Azure; access tiers are not enforced by it.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { AzureStorage } from "../../src/storages/azure.ts";
import { testContext } from "../../src/testing/index.ts";
import { startAzurite } from "../helpers/azurite.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const azurite = await startAzurite();

const options = (overrides: Record<string, unknown> = {}) => ({
  account: azurite.account,
  account_key: azurite.key,
  container: "cairn-backups",
  prefix: "conformance",
  endpoint: azurite.endpoint,
  block_size: 4 * 1024 * 1024,
  concurrency: 4,
  ...overrides,
});

conformance("azure (Azurite)", async () => ({
  storage: new AzureStorage(options()),
  withWrongCredentials: () =>
    new AzureStorage(options({ account_key: Buffer.from("not the key").toString("base64") })),
  server: {
    port: azurite.port,
    via: (port) => new AzureStorage(options({ endpoint: `http://127.0.0.1:${port}/${azurite.account}` })),
  },
}));

test("azure: a second writer of the same name loses at the service (If-None-Match: *)", async () => {
  const storage: Storage = new AzureStorage(options());
  const ctx = testContext();
  const key = `race-${randomBytes(3).toString("hex")}/object`;
  const results = await Promise.allSettled(
    ["first", "second", "third"].map((text) => storage.put(key, Readable.from([Buffer.from(text)]), ctx)),
  );
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
  for (const r of results.filter((r) => r.status === "rejected"))
    assert.ok((r as PromiseRejectedResult).reason instanceof StorageError);
  await storage.delete(key, ctx);
});

test("azure: backup, list, verify and restore from the CLI with an azure destination; key redacted", async () => {
  const outputs = await cliRoundTrip(
    `type: azure
account: ${azurite.account}
account_key: ${azurite.key}
container: cairn-e2e
endpoint: ${azurite.endpoint}`,
    { split: "1MB" },
  );
  for (const output of outputs) assert.ok(!output.includes(azurite.key), output);
});
