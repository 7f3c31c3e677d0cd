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
import { S3Storage } from "../../src/storages/s3.ts";
import { cairn, tempDir, treeContents } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import { startS3rver } from "../helpers/s3.ts";
import { conformance } from "./conformance.ts";

const { endpoint } = await startS3rver(["cairn-backups"]);

const options = (accessKeyId = "S3RVER") => ({
  bucket: "cairn-backups",
  prefix: "conformance",
  region: "us-east-1",
  endpoint,
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
}));

test("s3: backup, list, verify and restore from the CLI with an s3 destination; secrets redacted", async () => {
  const ws = workspace(tempDir());
  mkdirSync(join(ws.dir, "site/ünï"), { recursive: true });
  writeFileSync(join(ws.dir, "site/ünï/page.html"), "<h1>hello</h1>\n");
  writeFileSync(join(ws.dir, "site/blob.bin"), randomBytes(3_000_000));
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  www:
    sources: { site: { type: files, paths: [./site] } }
    encryption: { age: { recipients: [${ws.recipient}] } }
    split: 1MiB
    destinations:
      bucket:
        type: s3
        bucket: cairn-backups
        prefix: e2e-${randomBytes(3).toString("hex")}
        endpoint: ${endpoint}
        path_style: true
        access_key_id: S3RVER
        secret_access_key: S3RVER-secret-not-printed
`,
  );
  // s3rver checks only the access key id, so the secret above works and must never be printed.
  const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
  const backup = await cli(["backup", "-v"]);
  assert.equal(backup.code, 0, backup.stderr);
  const listed = JSON.parse((await cli(["list", "--json"])).stdout);
  assert.equal(listed.snapshots.length, 1);
  const verify = await cli(["verify", "www", "-i", ws.keyFile]);
  assert.equal(verify.code, 0, verify.stderr);
  const target = join(ws.dir, "restored");
  const restore = await cli(["restore", "www", "--to-dir", target, "-i", ws.keyFile]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.deepEqual(treeContents(join(target, "site")), treeContents(join(ws.dir, "site")));
  const shown = await cli(["config", "show"]);
  for (const output of [backup.stdout, backup.stderr, shown.stdout, verify.stdout, restore.stdout])
    assert.ok(!output.includes("S3RVER-secret-not-printed"));
});
