/**
 * Someone who can write to the storage cannot pass a snapshot off as the job's own (issue #13,
 * item 12): a manifest swapped for one saying "no encryption" over plaintext data is refused by a
 * job that encrypts; with signed manifests, an edited or unsigned manifest is refused;
 * `--allow-unprotected` reads it anyway, saying so.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { notesJob } from "../helpers/jobs.ts";

function notesWithFolder(extra = "") {
  const { ws, cli } = notesJob(extra, "the real notes");
  const folder = () => {
    const root = join(ws.dir, "backups/notes");
    return join(root, readdirSync(root)[0]!);
  };
  return { ws, cli, folder };
}

test("a manifest replaced by an unencrypted one is refused by a job that encrypts; --allow-unprotected reads it", async () => {
  const { ws, cli, folder } = notesWithFolder();
  assert.equal((await cli(["backup"])).code, 0);
  const dir = folder();
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  const evil = Buffer.from("attacker's text\n");
  writeFileSync(join(dir, "evil.out"), evil);
  manifest.artifacts[0].transforms = [];
  manifest.artifacts[0].objects = [
    { key: "evil.out", size: evil.length, sha256: createHash("sha256").update(evil).digest("hex") },
  ];
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));

  const target = join(ws.dir, "restored");
  const refused = await cli(["restore", "notes", "--to-dir", target, "-i", ws.keyFile]);
  assert.equal(refused.code, 1, refused.stdout + refused.stderr);
  assert.match(
    refused.stderr,
    /refused: snapshot notes@\S+ on local: its artifact \S+ is not encrypted, though the job encrypts with age/,
  );
  assert.ok(!existsSync(target), "nothing was restored");
  const checked = await cli(["verify", "notes", "-i", ws.keyFile]);
  assert.equal(checked.code, 1, "verify fails it too");

  const anyway = await cli(["restore", "notes", "--to-dir", target, "-i", ws.keyFile, "--allow-unprotected"]);
  assert.equal(anyway.code, 0, anyway.stderr);
  assert.match(anyway.stderr, /reading it anyway \(--allow-unprotected\)/);
});

test("signed manifests: an edited or unsigned manifest is refused; the untouched one verifies", async () => {
  const keyDir = tempDir();
  const made = await cairn(["keygen", "--signing", "-o", join(keyDir, "signing.key")]);
  assert.equal(made.code, 0, made.stderr);
  const publicKey = made.stdout.trim();
  assert.match(publicKey, /^cairn-ed25519:/);
  const { ws, cli, folder } = notesWithFolder(
    `    signing: { key_file: ${join(keyDir, "signing.key")}, public_key: "${publicKey}" }\n`,
  );
  assert.equal((await cli(["backup"])).code, 0);
  const dir = folder();
  assert.ok(existsSync(join(dir, "manifest.json.sig")), "the signature is stored beside the manifest");
  const good = await cli(["verify", "notes", "-i", ws.keyFile]);
  assert.equal(good.code, 0, good.stderr);

  const original = readFileSync(join(dir, "manifest.json"), "utf8");
  writeFileSync(join(dir, "manifest.json"), original.replace(/"host": "[^"]*"/, '"host": "trusted-db1"'));
  const edited = await cli(["verify", "notes", "-i", ws.keyFile]);
  assert.equal(edited.code, 1, edited.stdout + edited.stderr);
  assert.match(edited.stderr, /signature does not match the job's public key: the manifest was changed/);

  writeFileSync(join(dir, "manifest.json"), original);
  rmSync(join(dir, "manifest.json.sig"));
  const unsigned = await cli(["restore", "notes", "--to-dir", join(ws.dir, "r"), "-i", ws.keyFile]);
  assert.equal(unsigned.code, 1);
  assert.match(unsigned.stderr, /its manifest is not signed, though the job requires signed manifests/);
  assert.ok(!existsSync(join(ws.dir, "r")));
});

test("a signing key other users can read fails the backup before anything is stored", async () => {
  const keyDir = tempDir();
  await cairn(["keygen", "--signing", "-o", join(keyDir, "signing.key")]);
  const { chmodSync } = await import("node:fs");
  chmodSync(join(keyDir, "signing.key"), 0o644);
  const { ws, cli } = notesWithFolder(`    signing: { key_file: ${join(keyDir, "signing.key")} }\n`);
  const run = await cli(["backup"]);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /signing key \S+ can be read by other users/);
  assert.ok(!existsSync(join(ws.dir, "backups/notes")), "nothing stored");
});
