/**
 * The s3 destination against s3rver (npm), a real S3 protocol server on 127.0.0.1. It is a fake of
 * S3, not S3: it checks only the access key (not the signature's secret) and does not enforce
 * storage classes, object lock or checksums; none of those is claimed tested here.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { configFromObject } from "../../src/config/load.ts";
import { backup } from "../../src/engine/backup.ts";
import { list } from "../../src/engine/list.ts";
import { prune } from "../../src/retention/prune.ts";
import { S3Storage, s3Storage, withProvider } from "../../src/storages/s3.ts";
import { tempDir } from "../helpers/env.ts";
import { startS3rver } from "../helpers/s3.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const { endpoint } = await startS3rver(["cairn-backups"]);

/** The destination as the config builds it: options parsed by its schema, the provider applied. */
const s3 = (accessKeyId = "S3RVER", at = endpoint) =>
  new S3Storage(withProvider(s3Storage.schema.parse(options(accessKeyId, at))));

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
  storage: s3(),
  withWrongCredentials: () => s3("NOT-A-KEY"),
  server: {
    port: Number(new URL(endpoint).port),
    via: (port) => s3("S3RVER", `http://127.0.0.1:${port}`),
  },
}));

test("s3: backup, list, verify and restore from the CLI (provider: minio, DEEP_ARCHIVE data with hot manifests); secrets redacted", async () => {
  // s3rver checks only the access key id, so this secret works, and it must never be printed.
  const prefix = `e2e-${randomBytes(3).toString("hex")}`;
  const outputs = await cliRoundTrip(
    `type: s3
provider: minio
bucket: cairn-backups
prefix: ${prefix}
endpoint: ${endpoint}
storage_class: DEEP_ARCHIVE
access_key_id: S3RVER
secret_access_key: S3RVER-secret-not-printed`,
    { split: "1MiB" },
  );
  for (const output of outputs) assert.ok(!output.includes("S3RVER-secret-not-printed"));
  // s3rver records each object's class: the manifest must be readable without a thaw.
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
  });
  const listed = await client.send(
    new ListObjectsV2Command({ Bucket: "cairn-backups", Prefix: `${prefix}/` }),
  );
  const classes: Record<string, string> = {};
  for (const object of listed.Contents ?? [])
    classes[object.Key!] = (
      await client.send(new HeadObjectCommand({ Bucket: "cairn-backups", Key: object.Key! }))
    ).StorageClass!;
  const manifests = Object.keys(classes).filter((key) => key.endsWith("/manifest.json"));
  assert.equal(manifests.length, 1);
  assert.equal(classes[manifests[0]!], "STANDARD");
  const data = Object.entries(classes).filter(([key]) => !key.endsWith("/manifest.json"));
  assert.ok(data.length >= 3, JSON.stringify(classes)); // split into 1 MiB parts
  for (const [key, storageClass] of data) assert.equal(storageClass, "DEEP_ARCHIVE", key);
  client.destroy();
});

test("s3 presets: endpoints and addressing per provider; what a preset still needs is named", () => {
  const parse = (o: Record<string, unknown>) => withProvider(s3Storage.schema.parse({ bucket: "bkt", ...o }));
  assert.deepEqual(
    [parse({ provider: "r2", account_id: "abc123" })].map((o) => [o.endpoint, o.region, o.path_style]),
    [["https://abc123.r2.cloudflarestorage.com", "auto", true]],
  );
  const wasabi = parse({ provider: "wasabi", region: "eu-central-2" });
  assert.equal(wasabi.endpoint, "https://s3.eu-central-2.wasabisys.com");
  assert.equal(
    parse({ provider: "b2", region: "us-west-004" }).endpoint,
    "https://s3.us-west-004.backblazeb2.com",
  );
  assert.equal(parse({ provider: "oss", region: "cn-hangzhou" }).path_style, false);
  assert.equal(parse({ provider: "gcs" }).endpoint, "https://storage.googleapis.com");
  assert.equal(parse({ provider: "minio", endpoint: "http://minio:9000" }).path_style, true);
  assert.equal(parse({}).path_style, false);
  assert.equal(
    parse({ provider: "minio", endpoint: "http://minio:9000", path_style: false }).path_style,
    false,
  );
  assert.throws(() => parse({ provider: "minio" }), /s3 provider minio needs endpoint/);
  assert.throws(() => parse({ provider: "r2" }), /needs account_id/);
  assert.throws(() => parse({ provider: "b2" }), /needs region/);
});

test("s3: pruning keeps what the storage class bills for a minimum time anyway, until that time is over", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site/a.txt"), "a\n");
  const configFor = (earlyDeletion: "keep" | "delete") =>
    configFromObject(
      {
        state_dir: join(dir, "state"),
        jobs: {
          app: {
            sources: { site: { type: "files", paths: ["./site"] } },
            compression: "none",
            retention: { keep_last: 1, min_age: 0, early_deletion: earlyDeletion },
            destinations: {
              cold: {
                type: "s3",
                provider: "minio",
                bucket: "cairn-backups",
                prefix: `minimum-${randomBytes(3).toString("hex")}`,
                endpoint,
                storage_class: "GLACIER",
                access_key_id: "S3RVER",
                secret_access_key: "S3RVER",
              },
            },
          },
        },
      },
      { baseDir: dir },
    );
  const config = configFor("keep");
  for (let i = 0; i < 3; i++) assert.ok((await backup({ config })).ok);

  const now = await prune({ config });
  assert.deepEqual(
    [now.destinations[0]?.keep.length, now.destinations[0]?.remove.length],
    [3, 0],
    "GLACIER bills 90 days: nothing is removed before",
  );
  assert.match(now.destinations[0]?.keep[2]?.reasons.join("; ") ?? "", /kept until .*bills 90 days anyway/);
  const later = await prune({ config, now: new Date(Date.now() + 91 * 86_400_000) });
  assert.deepEqual([later.destinations[0]?.keep.length, later.destinations[0]?.remove.length], [1, 2]);
  assert.equal((await list({ config, job: "app" })).snapshots.length, 1);

  const eager = configFor("delete");
  for (let i = 0; i < 2; i++) assert.ok((await backup({ config: eager })).ok);
  const removed = await prune({ config: eager });
  assert.equal(removed.destinations[0]?.remove.length, 1, "early_deletion: delete removes at once");
  assert.equal(
    new S3Storage(withProvider(s3Storage.schema.parse({ bucket: "bkt", provider: "wasabi" }))).capabilities
      .minimumStorageDays,
    90,
  );
});

test("s3: an upload aborted mid-way says why it was aborted, not only 'The operation was aborted' (#13.17)", async () => {
  const { PassThrough } = await import("node:stream");
  const { silentLogger } = await import("../../src/kit/logger.ts");
  const controller = new AbortController();
  const body = new PassThrough();
  body.write(Buffer.alloc(6 * 1024 * 1024)); // more than a part: the multipart upload has begun
  const put = s3().put(`aborted-${Date.now()}`, body, {
    signal: controller.signal,
    logger: silentLogger,
    workDir: tempDir(),
  });
  setTimeout(() => controller.abort(new Error("interrupted by SIGINT")), 500);
  await assert.rejects(
    put,
    /upload to s3:\/\/cairn-backups\/conformance\/aborted-\d+ failed: .*interrupted by SIGINT/,
  );
});
