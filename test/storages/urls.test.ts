/** Destinations written as URLs on the command line reach the real servers (one-off runs). */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLI, cairn, hasProgram, run, tempDir } from "../helpers/env.ts";
import { startS3rver } from "../helpers/s3.ts";
import { startSshd } from "../helpers/sshd.ts";

function site(dir: string): void {
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site/index.html"), "<h1>ünï</h1>\n");
}

test("one-off: --to s3://bucket/prefix?endpoint=…&path_style=true, credentials from the AWS environment", async () => {
  const { endpoint } = await startS3rver(["cairn-urls"]);
  const dir = tempDir();
  site(dir);
  const url = `s3://cairn-urls/nightly?endpoint=${encodeURIComponent(endpoint)}&path_style=true`;
  const env = {
    CAIRN_STATE_DIR: join(dir, "state"),
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
  };
  const r = await cairn(["backup", "files", "--path", "./site", "--to", url], { cwd: dir, env });
  assert.equal(r.code, 0, r.stderr);
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:\n  files:\n    sources: { files: { type: files, paths: [./site] } }\n    destinations:\n      to: { type: s3, bucket: cairn-urls, prefix: nightly, endpoint: "${endpoint}", path_style: true }\n`,
  );
  const restored = await cairn(["restore", "files", "--to-dir", join(dir, "back")], { cwd: dir, env });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(readdirSync(join(dir, "back/site")), ["index.html"]);
});

test("one-off: --to sftp://user@host:port/path?private_key_file=…&known_hosts=…", {
  skip: hasProgram("/usr/sbin/sshd") ? false : "needs openssh-server (.ci/system-deps installs it)",
}, async () => {
  const sshd = await startSshd();
  const dir = tempDir();
  site(dir);
  const url = `sftp://${sshd.user}@127.0.0.1:${sshd.port}/nightly?private_key_file=${encodeURIComponent(sshd.clientKey)}&known_hosts=${encodeURIComponent(sshd.knownHosts)}`;
  const r = await cairn(["backup", "files", "--path", "./site", "--to", url], {
    cwd: dir,
    env: { CAIRN_STATE_DIR: join(dir, "state") },
  });
  assert.equal(r.code, 0, r.stderr);
  const snapshots = readdirSync(join(sshd.home, "nightly/files"));
  assert.equal(snapshots.length, 1);
  assert.ok(readdirSync(join(sshd.home, "nightly/files", snapshots[0]!)).includes("manifest.json"));
});

test("cairn upload: a file to an s3 URL, and a backup piped through stdin to a folder; never overwrites", async () => {
  const { endpoint } = await startS3rver(["cairn-upload"]);
  const dir = tempDir();
  writeFileSync(join(dir, "dump.bin"), Buffer.alloc(3_000_000, 9));
  const env = {
    CAIRN_STATE_DIR: join(dir, "state"),
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
  };
  const url = `s3://cairn-upload/manual?endpoint=${encodeURIComponent(endpoint)}&path_style=true`;
  const first = await cairn(["upload", "dump.bin", url, "--json"], { cwd: dir, env });
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).size, 3_000_000);
  const again = await cairn(["upload", "dump.bin", url], { cwd: dir, env });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists; cairn never overwrites/);

  site(dir);
  const piped = await run(
    "bash",
    [
      "-o",
      "pipefail",
      "-c",
      `"${process.execPath}" "${CLI}" backup files --path ./site --stdout | "${process.execPath}" "${CLI}" upload - ./uploads --name site.tar`,
    ],
    { cwd: dir, env },
  );
  assert.equal(piped.code, 0, piped.stderr);
  const listing = await run("tar", ["-tf", join(dir, "uploads/site.tar")]);
  assert.match(listing.stdout, /site\/index\.html/);
});
