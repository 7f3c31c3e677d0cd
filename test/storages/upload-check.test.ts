/**
 * A storage that acknowledges bytes other than the ones sent (a proxy flipping a bit on the way) is
 * caught at backup time, not by a later verify: S3 through its ETag (single and multipart uploads),
 * any destination with `upload_check: read` by reading the objects back (issue #13, item 6).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { apacheMissing, startApacheDav } from "../helpers/apache.ts";
import { cairn, tempDir } from "../helpers/env.ts";
import { startFaultProxy } from "../helpers/fault-proxy.ts";
import { startS3rver } from "../helpers/s3.ts";

function setUp(destination: string, megabytes: number) {
  const dir = tempDir();
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site/data.bin"), randomBytes(megabytes * 1024 * 1024));
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      site: { type: files, paths: [./site] }
    compression: none
    destinations:
      there:
${destination.replace(/^/gm, "        ")}
`,
  );
  const env = { CAIRN_STATE_DIR: join(dir, "state") };
  return (args: string[]) => cairn(args, { cwd: dir, env });
}

async function snapshotCount(cli: ReturnType<typeof setUp>): Promise<number> {
  const listed = await cli(["list", "--json"]);
  assert.equal(listed.code, 0, listed.stderr);
  return JSON.parse(listed.stdout).snapshots.length;
}

const { endpoint } = await startS3rver(["checked"]);
const s3Port = Number(new URL(endpoint).port);

for (const [shape, megabytes] of [
  ["single PUT", 3],
  ["multipart", 12],
] as const)
  test(`s3 (${shape}): a bit flipped between cairn and the server fails the backup, naming the ETag; nothing listed`, async () => {
    const proxy = await startFaultProxy(s3Port);
    const cli = setUp(
      `type: s3
bucket: checked
prefix: ${shape.replace(" ", "-")}
endpoint: http://127.0.0.1:${proxy.port}
path_style: true
region: us-east-1
access_key_id: S3RVER
secret_access_key: S3RVER
part_size: 5MiB`,
      megabytes,
    );
    const good = await cli(["backup"]);
    assert.equal(good.code, 0, `an unaltered upload passes the check: ${good.stderr}`);
    proxy.flipUploadByte(2 * 1024 * 1024);
    const flipped = await cli(["backup"]);
    assert.equal(flipped.code, 1, flipped.stdout + flipped.stderr);
    assert.match(
      flipped.stderr,
      /stored other bytes than were sent: the server's ETag \S+ is not the \S+ of the bytes sent/,
    );
    assert.equal(await snapshotCount(cli), 1, "only the good snapshot is listed");
    await proxy.close();
  });

const skipDav = apacheMissing();

test("webdav with upload_check: read: a bit flipped on the way fails the backup, naming the object; nothing listed", {
  skip: skipDav,
}, async () => {
  const dav = await startApacheDav();
  const proxy = await startFaultProxy(dav.port);
  const cli = setUp(
    `type: webdav
url: http://127.0.0.1:${proxy.port}/dav/checked
user: ${dav.user}
password: ${dav.password}
upload_check: read`,
    3,
  );
  const good = await cli(["backup"]);
  assert.equal(good.code, 0, `an unaltered upload reads back the same: ${good.stderr}`);
  proxy.flipUploadByte(2 * 1024 * 1024);
  const flipped = await cli(["backup"]);
  assert.equal(flipped.code, 1, flipped.stdout + flipped.stderr);
  assert.match(
    flipped.stderr,
    /destination there failed: the stored object is not what was sent: app\/\S+\/site\.tar reads back with SHA-256 [0-9a-f]{64}, [0-9a-f]{64} was sent/,
  );
  assert.equal(await snapshotCount(cli), 1, "only the good snapshot is listed");
  await proxy.close();
});
