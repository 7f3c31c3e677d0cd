/** The rsync destination over SSH against OpenSSH's sshd on 127.0.0.1, with a full login and with an rrsync-restricted key. */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { rsyncStorage } from "../../src/storages/rsync.ts";
import { testContext } from "../../src/testing/index.ts";
import {
  ensureBackupUser,
  forBackupUser,
  knownHostsForPort,
  ownedByBackupUser,
} from "../helpers/backup-user.ts";
import { cairn, hasProgram, tempDir } from "../helpers/env.ts";
import { startSshd } from "../helpers/sshd.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip =
  hasProgram("rsync") && hasProgram("rrsync") && hasProgram("/usr/sbin/sshd")
    ? false
    : "needs rsync and openssh-server (.ci/system-deps installs them)";
if (!skip) ensureBackupUser();
const sshd = skip ? undefined : forBackupUser(await startSshd());
const jail = skip ? "" : ownedByBackupUser(tempDir("cairn-rrsync-"));
const restricted = skip ? undefined : forBackupUser(await startSshd(`command="rrsync ${jail}",restrict`));

const open = (overrides: Record<string, unknown> = {}, server = sshd!): Storage =>
  rsyncStorage.create(
    rsyncStorage.schema.parse({
      host: "127.0.0.1",
      port: server.port,
      user: server.user,
      path: join(server.home, "rsync"),
      private_key_file: server.clientKey,
      known_hosts: server.knownHosts,
      connections: 8,
      ...overrides,
    }),
    { name: "rsync-test", baseDir: "/" },
  ) as Storage;

const ctx = () => testContext();

conformance(
  "rsync (over OpenSSH)",
  async () => ({
    storage: open(),
    withWrongCredentials: () => open({ user: "nobody" }),
    // Every call is an rsync run, and each costs this machine's root shell start-up (~0.2 s of .bashrc).
    parallelCleanup: true,
    server: {
      port: sshd!.port,
      via: (port) => open({ port, known_hosts: knownHostsForPort(sshd!, port) }),
    },
  }),
  skip,
);

test("rsync: through a key restricted to rrsync (no shell), objects land only inside the allowed folder", {
  skip,
}, async () => {
  const storage = open({ path: "backups" }, restricted);
  const c = ctx();
  await storage.put("job/snap one/übung.bin", Readable.from([Buffer.from("restricted")]), c);
  assert.deepEqual(readdirSync(join(jail, "backups/job/snap one")), ["übung.bin"]);
  const listed = [];
  for await (const object of storage.list("job/", c)) listed.push([object.key, object.size]);
  assert.deepEqual(listed, [["job/snap one/übung.bin", 10]]);
  const chunks = [];
  for await (const chunk of await storage.get("job/snap one/übung.bin", c)) chunks.push(chunk);
  assert.equal(Buffer.concat(chunks).toString(), "restricted");
  await assert.rejects(
    storage.put("job/snap one/übung.bin", Readable.from([Buffer.from("x")]), c),
    /never overwrites/,
  );
  await storage.delete("job/snap one/übung.bin", c);
  assert.deepEqual(readdirSync(join(jail, "backups/job/snap one")), []);
});

test("rsync: a burst of puts (sent together) is stored whole, and one name put twice in a burst is stored once", {
  skip,
}, async () => {
  const storage = open({ connections: 1 });
  const base = `burst-${Date.now()}`;
  const puts = Array.from({ length: 30 }, (_, i) => `${base}/part-${i}`).map((key) =>
    storage.put(key, Readable.from([Buffer.from(key)]), ctx()),
  );
  // Two puts of one name, each from its own work folder, with different bytes.
  const twice = [Buffer.from("first"), Buffer.from("second")].map((bytes) =>
    storage.put(`${base}/same`, Readable.from([bytes]), ctx()).then(
      () => "stored",
      (error: unknown) =>
        error instanceof StorageError && /already exists/.test(error.message) ? "refused" : error,
    ),
  );
  await Promise.all(puts);
  assert.deepEqual((await Promise.all(twice)).sort(), ["refused", "stored"]);
  const listed: string[] = [];
  for await (const o of storage.list(`${base}/`, ctx())) listed.push(o.key);
  assert.equal(listed.length, 31);
  const stored = Buffer.concat(await (await storage.get(`${base}/same`, ctx())).toArray()).toString();
  assert.ok(["first", "second"].includes(stored), stored);
  await Promise.all(listed.map((key) => storage.delete(key, ctx())));
  for await (const o of storage.list(`${base}/`, ctx())) assert.fail(`${o.key} was not deleted`);
  await storage.close?.();
});

test("rsync: a server whose key is not in known_hosts is refused with the ssh-keyscan hint", {
  skip,
}, async () => {
  const empty = join(tempDir(), "known_hosts");
  writeFileSync(empty, "");
  await assert.rejects(open({ known_hosts: empty }).stat("x", ctx()), (error: unknown) => {
    assert.ok(error instanceof StorageError);
    assert.match(String(error.hint), /ssh-keyscan/);
    return true;
  });
});

test("rsync: backup, list, verify and restore from the CLI", { skip }, async () => {
  await cliRoundTrip(
    `type: rsync
host: 127.0.0.1
port: ${sshd!.port}
user: ${sshd!.user}
path: ${join(sshd!.home, "e2e")}
private_key_file: ${sshd!.clientKey}
known_hosts: ${sshd!.knownHosts}`,
    { split: "1MB" },
  );
});

test("rsync: `cairn upload FILE rsync+ssh://user@host:port//path`", { skip }, async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "dump.bin"), "a dump\n");
  const target = join(sshd!.home, "by-url");
  mkdirSync(target);
  ownedByBackupUser(target);
  const url = `rsync+ssh://${sshd!.user}@127.0.0.1:${sshd!.port}/${target}?private_key_file=${sshd!.clientKey}&known_hosts=${sshd!.knownHosts}`;
  const uploaded = await cairn(["upload", "dump.bin", url], { cwd: dir });
  assert.equal(uploaded.code, 0, uploaded.stderr);
  assert.deepEqual(readdirSync(target), ["dump.bin"]);
});
