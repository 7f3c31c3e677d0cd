/**
 * Messages that say what is wrong (issue #13, item 17): a read-only destination says so (Node's
 * recursive mkdir reported ENOENT), and a flipped bit in an encrypted object names the object.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

function job(ws: { dir: string; recipient: string }, path: string) {
  writeFileSync(join(ws.dir, "data.bin"), randomBytes(300_000));
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      blob: { type: command, command: [cat, ${join(ws.dir, "data.bin")}] }
    compression: none
    encryption: { age: { recipients: [${ws.recipient}] } }
    destinations:
      here: { type: local, path: ${path} }
`,
  );
}

test("a destination on a read-only file system says so, not ENOENT", async (t) => {
  const ws = workspace(tempDir());
  const mount = join(ws.dir, "ro");
  mkdirSync(mount);
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "ro", "tmpfs", mount], { encoding: "utf8" });
  if (mounted.status !== 0)
    return t.skip(`cannot mount a read-only tmpfs here (${mounted.stderr.trim() || "not root"})`);
  try {
    job(ws, "./ro/backups");
    const run = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /cannot create the folder \S+ro\/backups\S*: the file system is read-only \(EROFS\)/,
    );
    assert.doesNotMatch(run.stderr, /ENOENT/);
  } finally {
    spawnSync("umount", ["-l", mount]);
  }
});

/** A backup of the test job, and its encrypted object's path and bytes, to damage. */
async function backedUpObject() {
  const ws = workspace(tempDir());
  job(ws, "./backups");
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const root = join(ws.dir, "backups/app");
  const file = join(root, readdirSync(root)[0]!, "blob.out.age");
  return { ws, file, bytes: readFileSync(file) };
}

test("a flipped bit in an encrypted object: verify and restore name the object, exit 1", async () => {
  const ws = workspace(tempDir());
  job(ws, "./backups");
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const root = join(ws.dir, "backups/app");
  const folder = join(root, readdirSync(root)[0]!);
  const file = join(folder, "blob.out.age");
  const bytes = readFileSync(file);
  bytes[150_000]! ^= 0x01;
  writeFileSync(file, bytes);
  for (const args of [
    ["verify", "app", "-i", ws.keyFile],
    ["restore", "app", "--to-dir", join(ws.dir, "r"), "-i", ws.keyFile],
  ]) {
    const r = await cairn(args, { cwd: ws.dir, env: ws.env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /backups\/app\/\S+\/blob\.out\.age: the encrypted data is damaged or was altered/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
});

test("a damaged age header line (found by the robustness run): verify names the object, exit 1", async () => {
  const { ws, file, bytes } = await backedUpObject();
  const mac = bytes.indexOf("\n--- ") + 6;
  bytes[mac] = "!".charCodeAt(0); // no longer base64
  writeFileSync(file, bytes);
  const r = await cairn(["verify", "app", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /blob\.out\.age: the encrypted data is damaged or was altered: header MAC/);
});

test("a damaged recipient stanza is damaged data (exit 1), not a wrong key (found by the robustness run)", async () => {
  const { ws, file, bytes } = await backedUpObject();
  // The wrapped file key: the stanza body line after "-> X25519 <share>".
  const body = bytes.indexOf("\n", bytes.indexOf("-> X25519 ")) + 1;
  bytes[body] = bytes[body] === "A".charCodeAt(0) ? "B".charCodeAt(0) : "A".charCodeAt(0);
  writeFileSync(file, bytes);
  const r = await cairn(["verify", "app", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /blob\.out\.age: the encrypted data is damaged or was altered: the age header does not open/,
  );
});
