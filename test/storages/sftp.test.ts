/**
 * The sftp destination against OpenSSH's sshd (internal-sftp) on 127.0.0.1, over both SSH
 * transports: OpenSSH's own ssh program and the ssh2 library.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { SftpStorage, sftpStorage, transportFor } from "../../src/storages/sftp.ts";
import { testContext } from "../../src/testing/index.ts";
import {
  ensureBackupUser,
  forBackupUser,
  knownHostsForPort,
  setBackupUserPassword,
} from "../helpers/backup-user.ts";
import { hasProgram, tempDir } from "../helpers/env.ts";
import { startSshd } from "../helpers/sshd.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip =
  hasProgram("/usr/sbin/sshd") && hasProgram("ssh-keygen") && hasProgram("ssh")
    ? false
    : "needs openssh-server and openssh-client (.ci/system-deps installs them)";
const sshd = skip ? undefined : await startSshd();
if (!skip) ensureBackupUser();
const passwordSshd = skip ? undefined : forBackupUser(await startSshd("", { passwords: true }));

const options = (overrides: Record<string, unknown> = {}) =>
  sftpStorage.schema.parse({
    host: "127.0.0.1",
    port: sshd!.port,
    user: sshd!.user,
    path: "backups",
    private_key_file: sshd!.clientKey,
    known_hosts: sshd!.knownHosts,
    ...overrides,
  });

const context = () => testContext();

async function putError(storage: Storage): Promise<unknown> {
  try {
    return await storage.put("x", Readable.from([Buffer.from("x")]), context()).then(
      () => undefined,
      (e: unknown) => e,
    );
  } finally {
    await storage.close?.();
  }
}

for (const transport of ["openssh", "ssh2"] as const) {
  conformance(
    `sftp over ${transport} (OpenSSH server)`,
    async () => ({
      storage: new SftpStorage(options({ transport })),
      withWrongCredentials: () => new SftpStorage(options({ transport, user: "nobody-here" })),
      server: {
        port: sshd!.port,
        // The proxy's port is another [host]:port for known_hosts: add the same key for it.
        via: (port) =>
          new SftpStorage(options({ transport, port, known_hosts: knownHostsForPort(sshd!, port) })),
      },
    }),
    skip,
  );

  test(`sftp over ${transport}: a server whose key is not in known_hosts is refused, naming its fingerprint`, {
    skip,
  }, async () => {
    const error = await putError(
      new SftpStorage(options({ transport, known_hosts: `${tempDir()}/empty_known_hosts` })),
    );
    assert.ok(error instanceof StorageError, String(error));
    const fingerprint = execFileSync("ssh-keygen", ["-lf", `${dirname(sshd!.clientKey)}/host_key.pub`], {
      encoding: "utf8",
    }).split(" ")[1]!;
    assert.match(error.message, /host key SHA256:\S+ is not in known_hosts/);
    assert.ok(error.message.includes(fingerprint), `${error.message} should name ${fingerprint}`);
  });

  test(`sftp over ${transport}: a key with a passphrase logs in with it, and a wrong passphrase is refused`, {
    skip,
  }, async () => {
    const key = join(tempDir(), "locked_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "open sesame", "-f", key]);
    appendFileSync(join(dirname(sshd!.clientKey), "authorized_keys"), readFileSync(`${key}.pub`));
    const storage: Storage = new SftpStorage(
      options({ transport, private_key_file: key, passphrase: "open sesame" }),
    );
    try {
      await storage.put(`passphrase-${transport}`, Readable.from([Buffer.from("locked")]), context());
      assert.equal((await storage.stat(`passphrase-${transport}`, context()))?.size, 6);
      await storage.delete(`passphrase-${transport}`, context());
    } finally {
      await storage.close?.();
    }
    const error = await putError(
      new SftpStorage(options({ transport, private_key_file: key, passphrase: "wrong" })),
    );
    assert.ok(error instanceof StorageError, String(error));
    assert.ok(error.message.includes("sftp://"), error.message);
    assert.doesNotMatch(String(error), /open sesame|wrong/);
  });

  test(`sftp over ${transport}: password login, and a wrong password is refused without showing it`, {
    skip,
  }, async () => {
    setBackupUserPassword("correct horse");
    const login = (password: string) =>
      new SftpStorage(
        options({
          transport,
          port: passwordSshd!.port,
          known_hosts: passwordSshd!.knownHosts,
          user: passwordSshd!.user,
          private_key_file: undefined,
          password,
        }),
      );
    const storage: Storage = login("correct horse");
    try {
      await storage.put(`password-${transport}`, Readable.from([Buffer.from("let me in")]), context());
      const back = Buffer.concat(await (await storage.get(`password-${transport}`, context())).toArray());
      assert.deepEqual(back, Buffer.from("let me in"));
      await storage.delete(`password-${transport}`, context());
    } finally {
      await storage.close?.();
    }
    const error = await putError(login("battery staple"));
    assert.ok(error instanceof StorageError, String(error));
    assert.ok(error.message.includes("sftp://"), error.message);
    assert.doesNotMatch(`${String(error)} ${error.hint ?? ""}`, /battery staple|correct horse/);
  });
}

test("sftp: auto takes OpenSSH's ssh where installed, ssh2 for what only ssh2 can do", () => {
  const base = { host: "h", user: "u" };
  assert.equal(transportFor(sftpStorage.schema.parse(base), true), "openssh");
  assert.equal(transportFor(sftpStorage.schema.parse(base), false), "ssh2");
  assert.equal(
    transportFor(sftpStorage.schema.parse({ ...base, host_key_fingerprint: "SHA256:x" }), true),
    "ssh2",
  );
  assert.equal(transportFor(sftpStorage.schema.parse({ ...base, private_key: "-----BEGIN" }), true), "ssh2");
  const refused = sftpStorage.schema.safeParse({
    ...base,
    transport: "openssh",
    host_key_fingerprint: "SHA256:x",
  });
  assert.equal(refused.success, false);
  assert.match(refused.error!.issues[0]!.message, /use known_hosts, or set transport: ssh2/);
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
