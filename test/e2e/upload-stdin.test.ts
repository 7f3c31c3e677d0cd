/**
 * `cairn upload -` must not store what a failed producer left: an empty input is refused unless
 * asked for, and with `--trailer` only a stream that `backup --stdout --trailer` finished is
 * stored (issue #13, item 7).
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLI, run, tempDir } from "../helpers/env.ts";

const cairnCommand = `"${process.execPath}" "${CLI}"`;
const sh = (dir: string, script: string) => run("sh", ["-c", script], { cwd: dir });

test("upload -: an empty input or a failed producer stores nothing, and the name stays free (#13.7)", async () => {
  const dir = tempDir();
  const empty = await sh(dir, `true | ${cairnCommand} upload - ./dest --name x`);
  assert.equal(empty.code, 2, empty.stderr);
  assert.match(empty.stderr, /the input is empty, so nothing was stored/);
  assert.match(empty.stderr, /--allow-empty/);
  assert.ok(!existsSync(join(dir, "dest/x")), "no empty object");
  const died = await sh(dir, `(printf 'half a dump'; exit 1) | ${cairnCommand} upload - ./dest --name x`);
  assert.equal(died.code, 0, "without --trailer a pipe cannot tell: the docs say to use it");
  const again = await sh(dir, `true | ${cairnCommand} upload - ./dest --name y --allow-empty`);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(statSync(join(dir, "dest/y")).size, 0, "--allow-empty stores an empty object");
});

test("upload - --trailer: stores exactly what backup --stdout --trailer wrote, and refuses a stream cut short (#13.7)", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site/a.txt"), "a".repeat(100_000));
  const made = await sh(dir, `${cairnCommand} backup files --path ./site --stdout --trailer > framed.bin`);
  assert.equal(made.code, 0, made.stderr);
  const framed = readFileSync(join(dir, "framed.bin"));
  const whole = await sh(dir, `${cairnCommand} upload - ./dest --name whole.tar --trailer < framed.bin`);
  assert.equal(whole.code, 0, whole.stderr);
  assert.ok(readFileSync(join(dir, "dest/whole.tar")).equals(framed.subarray(0, framed.length - 48)));
  const tar = await run("tar", ["-tf", join(dir, "dest/whole.tar")]);
  assert.match(tar.stdout, /site\/a\.txt/, "what was stored is the plain tar");

  writeFileSync(join(dir, "cut.bin"), framed.subarray(0, Math.floor(framed.length / 2)));
  const cut = await sh(dir, `${cairnCommand} upload - ./dest --name cut.tar --trailer < cut.bin`);
  assert.equal(cut.code, 1, cut.stderr);
  assert.match(cut.stderr, /its producer stopped before the end; nothing was stored/);
  assert.ok(!existsSync(join(dir, "dest/cut.tar")));
  const producerDied = await sh(
    dir,
    `(head -c 5000 framed.bin; exit 1) | ${cairnCommand} upload - ./dest --name died.tar --trailer`,
  );
  assert.equal(producerDied.code, 1);
  assert.ok(!existsSync(join(dir, "dest/died.tar")));
  const misuse = await sh(dir, `${cairnCommand} backup files --path ./site --to ./b --trailer`);
  assert.equal(misuse.code, 2);
  assert.match(misuse.stderr, /--trailer goes with --stdout/);
});

test("upload: a destination option that does not exist is refused like in a config, with the likely one", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "f.txt"), "x");
  const typo = await sh(dir, `${cairnCommand} upload f.txt 'file://./dest?retires=3'`);
  assert.equal(typo.code, 2, typo.stderr);
  assert.match(typo.stderr, /destination\.retires: unknown key "retires" \(did you mean "retries"\?\)/);
  const bad = await sh(dir, `${cairnCommand} upload f.txt 'file://./dest?retries=many'`);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /destination\.retries: expected a number, got "many"/);
  assert.ok(!existsSync(join(dir, "dest")), "nothing was stored");
});
