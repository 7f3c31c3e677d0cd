/**
 * Small things operators expect: keys from a file or a command (restic's --password-command), a
 * bare snapshot id where it is unique, and enable/disable of several jobs at once.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";

function workspace(encryption: string) {
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data/a.txt"), "precious\n");
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:\n  app:\n    sources: { files: { type: files, paths: [./data] } }\n    encryption: ${encryption}\n    destinations: { d: { type: local, path: ./b } }\n  other:\n    sources: { files: { type: files, paths: [./data] } }\n    encryption: none\n    destinations: { d: { type: local, path: ./b } }\n`,
  );
  return { dir, env: { CAIRN_STATE_DIR: join(dir, "state") } };
}

test("the identity from CAIRN_IDENTITY_COMMAND; a failing command says so", async () => {
  const keyDir = tempDir();
  const key = await cairn(["keygen", "-o", join(keyDir, "key.txt")]);
  const { dir, env } = workspace(`{ age: { recipients: [${key.stdout.trim()}] } }`);
  assert.equal((await cairn(["backup"], { cwd: dir, env })).code, 0);
  const verified = await cairn(["verify", "app"], {
    cwd: dir,
    env: { ...env, CAIRN_IDENTITY_COMMAND: `cat '${join(keyDir, "key.txt")}'` },
  });
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(verified.stdout, /on d: verified\n$/);
  const failing = await cairn(["verify", "app"], {
    cwd: dir,
    env: { ...env, CAIRN_IDENTITY_COMMAND: "exit 3" },
  });
  assert.equal(failing.code, 2);
  assert.match(failing.stderr, /CAIRN_IDENTITY_COMMAND \(exit 3\) exited with code 3/);
});

test("the passphrase from CAIRN_PASSPHRASE_FILE or CAIRN_PASSPHRASE_COMMAND", async () => {
  // The backup host reads the passphrase through the config; restores take it from the environment.
  const { dir, env } = workspace('{ age: { passphrase: "${file:./backup.pass}" } }');
  const passphrase = "correct horse battery staple";
  writeFileSync(join(dir, "backup.pass"), passphrase, { mode: 0o600 });
  const backup = await cairn(["backup", "app"], { cwd: dir, env });
  assert.equal(backup.code, 0, backup.stderr);
  writeFileSync(join(dir, "pass.txt"), `${passphrase}\n`);
  chmodSync(join(dir, "pass.txt"), 0o600);
  const fromFile = await cairn(["restore", "app", "--to-dir", "r1"], {
    cwd: dir,
    env: { ...env, CAIRN_PASSPHRASE_FILE: join(dir, "pass.txt") },
  });
  assert.equal(fromFile.code, 0, fromFile.stderr);
  const fromCommand = await cairn(["restore", "app", "--to-dir", "r2"], {
    cwd: dir,
    env: { ...env, CAIRN_PASSPHRASE_COMMAND: `printf '%s\\n' '${passphrase}'` },
  });
  assert.equal(fromCommand.code, 0, fromCommand.stderr);
  const wrong = await cairn(["restore", "app", "--to-dir", "r3"], {
    cwd: dir,
    env: { ...env, CAIRN_PASSPHRASE_COMMAND: "echo nope" },
  });
  assert.equal(wrong.code, 12, wrong.stderr);
  chmodSync(join(dir, "pass.txt"), 0o644);
  const open = await cairn(["restore", "app", "--to-dir", "r4"], {
    cwd: dir,
    env: { ...env, CAIRN_PASSPHRASE_FILE: join(dir, "pass.txt") },
  });
  assert.equal(open.code, 2);
  assert.match(open.stderr, /can be read by other users/);
});

test("a bare snapshot id, or a unique prefix of one, names its job", async () => {
  const { dir, env } = workspace("none");
  assert.equal((await cairn(["backup", "app"], { cwd: dir, env })).code, 0);
  assert.equal((await cairn(["backup", "other"], { cwd: dir, env })).code, 0);
  const listed = JSON.parse((await cairn(["list", "app", "--json"], { cwd: dir, env })).stdout);
  const id: string = listed.snapshots[0].id;
  const shown = await cairn(["show", id, "--json"], { cwd: dir, env });
  assert.equal(shown.code, 0, shown.stderr);
  assert.equal(JSON.parse(shown.stdout).job, "app");
  const restored = await cairn(["restore", id.slice(0, -2), "--to-dir", "r"], { cwd: dir, env });
  assert.equal(restored.code, 0, restored.stderr);
  const ambiguous = await cairn(["show", id.slice(0, 10)], { cwd: dir, env });
  assert.equal(ambiguous.code, 2);
  assert.match(ambiguous.stderr, /matches 2 snapshots: /);
  const unknown = await cairn(["show", "1999-01-01T00-00-00Z-0000"], { cwd: dir, env });
  assert.equal(unknown.code, 10);
  assert.match(
    unknown.stderr,
    /no snapshot 1999-01-01T00-00-00Z-0000 in the catalog of this host\n {2}→ write JOB@ID/,
  );
});

test("enable and disable take several jobs, and change none when one name is wrong", async () => {
  const { dir, env } = workspace("none");
  const disabled = await cairn(["disable", "app", "other"], { cwd: dir, env });
  assert.equal(disabled.code, 0, disabled.stderr);
  assert.equal(disabled.stdout, "app: disabled\nother: disabled\n");
  const wrong = await cairn(["enable", "app", "nosuch"], { cwd: dir, env });
  assert.equal(wrong.code, 2);
  const jobs = JSON.parse((await cairn(["jobs", "--json"], { cwd: dir, env })).stdout);
  assert.deepEqual(
    jobs.map((j: { job: string; enabled: boolean }) => [j.job, j.enabled]),
    [
      ["app", false],
      ["other", false],
    ],
  );
});
