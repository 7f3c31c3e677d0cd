/**
 * Secrets on the backup host (issue #13, item 13): a key file others can read is refused, as ssh
 * and libpq refuse theirs; an inline secret in a config file everyone can read is warned about; the
 * private work folder (with its 0600 password file) of a run killed with kill -9 is removed by the
 * next run.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLI, cairn, createDatabase, dropDatabase, tempDir } from "../helpers/env.ts";
import { fakePgBin, notesJob, postgresJob, workspace } from "../helpers/jobs.ts";

test("an identity file other users can read is refused (exit 2, says chmod 600); at 0600 it is used", async () => {
  const { ws, cli } = notesJob();
  assert.equal((await cli(["backup"])).code, 0);
  chmodSync(ws.keyFile, 0o644);
  const refused = await cli(["restore", "notes", "--to-dir", join(ws.dir, "r1"), "-i", ws.keyFile]);
  assert.equal(refused.code, 2, refused.stdout + refused.stderr);
  assert.match(
    refused.stderr,
    /identity file \S+key\.txt can be read by other users of this host \(mode 644\)/,
  );
  assert.match(refused.stderr, /chmod 600 \S+key\.txt/);
  assert.ok(!existsSync(join(ws.dir, "r1")), "nothing restored");
  chmodSync(ws.keyFile, 0o666);
  const writable = await cli(["verify", "notes", "-i", ws.keyFile]);
  assert.equal(writable.code, 2);
  assert.match(writable.stderr, /can be changed by other users/);
  chmodSync(ws.keyFile, 0o640); // a backup group may read it, as libpq allows
  const used = await cli(["restore", "notes", "--to-dir", join(ws.dir, "r2"), "-i", ws.keyFile]);
  assert.equal(used.code, 0, used.stderr);
});

test("a passphrase file other users can read is refused the same way", async () => {
  const { ws, cli } = notesJob();
  assert.equal((await cli(["backup"])).code, 0);
  const file = join(ws.dir, "passphrase");
  writeFileSync(file, "correct horse\n", { mode: 0o604 });
  chmodSync(file, 0o604);
  const refused = await cli(["verify", "notes", "--passphrase-file", file]);
  assert.equal(refused.code, 2, refused.stdout + refused.stderr);
  assert.match(refused.stderr, /passphrase file \S+ can be read by other users of this host \(mode 604\)/);
});

test("an inline secret in a config everyone can read is warned about; 0600 or ${file:…} is quiet", async () => {
  const ws = workspace(tempDir());
  const config = (password: string) => `jobs:
  app:
    sources:
      db: { type: postgres, database: postgres, host: 127.0.0.1, user: postgres, password: "${password}" }
    destinations:
      local: { type: local, path: ./backups }
`;
  const file = join(ws.dir, "cairn.yaml");
  const list = () => cairn(["list"], { cwd: ws.dir, env: ws.env });
  writeFileSync(file, config("s3cr3t-inline"));
  chmodSync(file, 0o644);
  const warned = await list();
  assert.equal(warned.code, 0, warned.stderr);
  assert.match(
    warned.stderr,
    /cairn\.yaml is readable by every user of this host \(mode 644\) and holds 1 secret\(s\) inline: chmod 600/,
  );
  assert.ok(!warned.stderr.includes("s3cr3t-inline"), "the warning does not print the secret");
  chmodSync(file, 0o600);
  assert.doesNotMatch((await list()).stderr, /readable by every user/);
  writeFileSync(join(ws.dir, "pw"), "s3cr3t-in-a-file\n", { mode: 0o600 });
  writeFileSync(file, config("${file:pw}"));
  chmodSync(file, 0o644);
  assert.doesNotMatch((await list()).stderr, /readable by every user/);
});

test("the work folder of a run killed with kill -9 (its 0600 pgpass inside) is removed by the next run", async (t) => {
  const database = createDatabase();
  t.after(() => dropDatabase(database));
  const ws = workspace(tempDir());
  const tmp = join(ws.dir, "tmp");
  mkdirSync(tmp);
  const bin = fakePgBin(ws.dir, "exec sleep 60");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    postgresJob({ database, recipient: ws.recipient, binDir: bin, password: "pw-of-the-dead-run" }),
  );
  const env = { ...process.env, ...ws.env, TMPDIR: tmp };
  const child = spawn(process.execPath, [CLI, "backup"], { cwd: ws.dir, env, stdio: "ignore" });
  const left = () => readdirSync(tmp).filter((name) => name.startsWith("cairn-"));
  for (let i = 0; i < 100 && !left().some((d) => existsSync(join(tmp, d, "pgpass"))); i++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  const dead = left();
  assert.equal(dead.length, 1, "the running backup has its work folder");
  assert.ok(existsSync(join(tmp, dead[0]!, "pgpass")), "with the password file in it");
  child.kill("SIGKILL");
  await new Promise((resolve) => child.on("close", resolve));
  assert.ok(existsSync(join(tmp, dead[0]!)), "kill -9 leaves it behind");
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient }));
  const next = await cairn(["backup"], { cwd: ws.dir, env: { ...ws.env, TMPDIR: tmp } });
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, /removed the work folder of a run that died/);
  assert.deepEqual(left(), [], "no work folder left: the dead run's and its own are gone");
});
