/**
 * The s3 destination against s3rver (npm), a real S3 protocol server on 127.0.0.1. It is a fake of
 * S3, not S3: it checks only the access key (not the signature's secret) and does not enforce
 * storage classes, object lock or checksums; none of those is claimed tested here.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { S3Storage } from "../../src/storages/s3.ts";
import { startS3rver } from "../helpers/s3.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const { endpoint } = await startS3rver(["cairn-backups"]);

const options = (accessKeyId = "S3RVER", at = endpoint) => ({
  bucket: "cairn-backups",
  prefix: "conformance",
  region: "us-east-1",
  endpoint: at,
  path_style: true,
  access_key_id: accessKeyId,
  secret_access_key: "S3RVER",
  part_size: 8 * 1024 * 1024,
  concurrency: 4,
  checksums: "when_required" as const,
});

conformance("s3 (s3rver)", async () => ({
  storage: new S3Storage(options()),
  withWrongCredentials: () => new S3Storage(options("NOT-A-KEY")),
  server: {
    port: Number(new URL(endpoint).port),
    via: (port) => new S3Storage(options("S3RVER", `http://127.0.0.1:${port}`)),
  },
}));

test("s3: backup, list, verify and restore from the CLI with an s3 destination; secrets redacted", async () => {
  // s3rver checks only the access key id, so this secret works, and it must never be printed.
  const outputs = await cliRoundTrip(
    `type: s3
bucket: cairn-backups
prefix: e2e-${randomBytes(3).toString("hex")}
endpoint: ${endpoint}
path_style: true
access_key_id: S3RVER
secret_access_key: S3RVER-secret-not-printed`,
    { split: "1MiB" },
  );
  for (const output of outputs) assert.ok(!output.includes("S3RVER-secret-not-printed"));
});
