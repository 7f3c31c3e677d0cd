/** The sftp destination against OpenSSH's sshd (internal-sftp) on 127.0.0.1. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { test } from "node:test";
import { silentLogger } from "../../src/core/logger.ts";
import { StorageError } from "../../src/errors.ts";
import { SftpStorage } from "../../src/storages/sftp.ts";
import type { Storage } from "../../src/types.ts";
import { hasProgram, tempDir } from "../helpers/env.ts";
import { startSshd } from "../helpers/sshd.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

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
    server: {
      port: sshd!.port,
      // The proxy's port is another [host]:port for known_hosts: add the same key for it.
      via: (port) => {
        const knownHosts = `${tempDir()}/known_hosts`;
        const line = readFileSync(sshd!.knownHosts, "utf8").replace(
          /^\[127\.0\.0\.1\]:\d+/,
          `[127.0.0.1]:${port}`,
        );
        writeFileSync(knownHosts, line);
        return new SftpStorage(options({ port, known_hosts: knownHosts }));
      },
    },
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
  await cliRoundTrip(`type: sftp
host: 127.0.0.1
port: ${sshd!.port}
user: ${sshd!.user}
path: e2e
private_key_file: ${sshd!.clientKey}
known_hosts: ${sshd!.knownHosts}`);
});
