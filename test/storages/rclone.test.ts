/**
 * The rclone destination, through the real rclone binary, with rclone's own sftp backend talking to
 * OpenSSH's sshd on 127.0.0.1 (a remote given as a connection string, no rclone config needed).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { RcloneStorage } from "../../src/storages/rclone.ts";
import { testContext } from "../../src/testing/index.ts";
import { hasProgram, tempDir } from "../helpers/env.ts";
import { startSshd } from "../helpers/sshd.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip =
  hasProgram("rclone") && hasProgram("/usr/sbin/sshd")
    ? false
    : "needs rclone and openssh-server (.ci/system-deps installs them)";
const sshd = skip ? undefined : await startSshd();

/** The sshd's host key, listed for 127.0.0.1:port (the fault proxy listens on another port). */
function knownHostsFor(port: number): string {
  const file = `${tempDir()}/known_hosts`;
  writeFileSync(
    file,
    readFileSync(sshd!.knownHosts, "utf8").replace(/^\[127\.0\.0\.1\]:\d+/, `[127.0.0.1]:${port}`),
  );
  return file;
}

const remote = (port: number, user = sshd!.user) =>
  `:sftp,host=127.0.0.1,port=${port},user=${user},key_file=${sshd!.clientKey},known_hosts_file=${knownHostsFor(port)}:rclone-backups`;

// rclone's local backend: fast enough for the whole suite (1100 keys, 1 GiB), and what is tested is
// cairn driving rclone. The sftp backend below proves the network path end to end.
conformance(
  "rclone (local backend)",
  async () => ({
    storage: new RcloneStorage({ remote: `:local:${tempDir()}/rclone-local`, binary: "rclone", flags: [] }),
  }),
  skip,
);

test("rclone: backup, list, verify and restore from the CLI with an rclone destination", {
  skip,
}, async () => {
  const outputs = await cliRoundTrip(
    `type: rclone
remote: "${remote(sshd!.port).replace("rclone-backups", "rclone-e2e")}"`,
    { split: "1MB" },
  );
  assert.ok(outputs.length > 0);
});

test("rclone: a remote that is not configured fails naming the destination and what to do", {
  skip,
}, async () => {
  const storage: Storage = new RcloneStorage({
    remote: "no-such-remote:backups",
    binary: "rclone",
    flags: [],
    config_file: `${tempDir()}/rclone.conf`,
  });
  const ctx = testContext();
  const error = await storage.stat("x", ctx).catch((e: unknown) => e);
  assert.ok(error instanceof StorageError, String(error));
  assert.match(error.message, /rclone no-such-remote:backups/);
  assert.match(error.hint ?? "", /rclone config/);
  await storage.close?.();
});
