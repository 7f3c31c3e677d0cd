/** The sftp destination against OpenSSH's sshd (internal-sftp) on 127.0.0.1. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { silentLogger } from "../../src/core/logger.ts";
import { StorageError } from "../../src/errors.ts";
import { SftpStorage } from "../../src/storages/sftp.ts";
import type { Storage } from "../../src/types.ts";
import { cairn, hasProgram, tempDir, treeContents } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import { startSshd } from "../helpers/sshd.ts";
import { conformance } from "./conformance.ts";

const skip =
  hasProgram("/usr/sbin/sshd") && hasProgram("ssh-keygen")
    ? false
    : "needs openssh-server (.ci/system-deps installs it)";
const sshd = skip ? undefined : await startSshd();

const options = (overrides: Record<string, unknown> = {}) => ({
  host: "127.0.0.1",
  port: sshd!.port,
  user: sshd!.user,
  path: "backups",
  private_key_file: sshd!.clientKey,
  known_hosts: sshd!.knownHosts,
  ...overrides,
});

conformance(
  "sftp (OpenSSH)",
  async () => ({
    storage: new SftpStorage(options()),
    withWrongCredentials: () =>
      new SftpStorage(options({ user: "nobody-here", private_key_file: sshd!.clientKey })),
  }),
  skip,
);

test("sftp: a server whose key is not in known_hosts is refused, naming its fingerprint", {
  skip,
}, async () => {
  const storage: Storage = new SftpStorage(options({ known_hosts: `${tempDir()}/empty_known_hosts` }));
  const ctx = { signal: new AbortController().signal, logger: silentLogger, workDir: tempDir() };
  const error = await storage.put("x", Readable.from([Buffer.from("x")]), ctx).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(error instanceof StorageError, String(error));
  assert.match(error.message, /host key SHA256:\S+ is not in known_hosts/);
  await storage.close?.();
});

test("sftp: backup, list, verify and restore from the CLI with an sftp destination in the config", {
  skip,
}, async () => {
  const ws = workspace(tempDir());
  mkdirSync(join(ws.dir, "site/ünï"), { recursive: true });
  writeFileSync(join(ws.dir, "site/ünï/page.html"), "<h1>hello</h1>\n");
  writeFileSync(join(ws.dir, "site/blob.bin"), randomBytes(2_000_000));
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  www:
    sources: { site: { type: files, paths: [./site] } }
    encryption: { age: { recipients: [${ws.recipient}] } }
    destinations:
      nas:
        type: sftp
        host: 127.0.0.1
        port: ${sshd!.port}
        user: ${sshd!.user}
        path: e2e
        private_key_file: ${sshd!.clientKey}
        known_hosts: ${sshd!.knownHosts}
`,
  );
  const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
  const backup = await cli(["backup"]);
  assert.equal(backup.code, 0, backup.stderr);
  assert.equal(JSON.parse((await cli(["list", "--json"])).stdout).snapshots.length, 1);
  const verify = await cli(["verify", "www", "-i", ws.keyFile]);
  assert.equal(verify.code, 0, verify.stderr);
  const target = join(ws.dir, "restored");
  const restore = await cli(["restore", "www", "--to-dir", target, "-i", ws.keyFile]);
  assert.equal(restore.code, 0, restore.stderr);
  assert.deepEqual(treeContents(join(target, "site")), treeContents(join(ws.dir, "site")));
});
