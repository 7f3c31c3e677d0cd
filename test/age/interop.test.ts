/** cairn's age against the real `age` tool, both directions, recipients and passphrases. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { test } from "node:test";
import { createDecryptStream, createEncryptStream, generateIdentity } from "../../src/age/index.ts";
import { run, tempDir } from "../helpers/env.ts";

const SIZES = [0, 1, 65535, 65536, 65537, 3 * 65536, 3_000_001];

async function encrypt(data: Buffer, options: Parameters<typeof createEncryptStream>[0]): Promise<Buffer> {
  return buffer(Readable.from([data]).pipe(createEncryptStream(options)));
}

async function decrypt(data: Buffer, options: Parameters<typeof createDecryptStream>[0]): Promise<Buffer> {
  return buffer(Readable.from([data]).pipe(createDecryptStream(options)));
}

test("the age tool decrypts what cairn encrypts to a recipient, at every chunk boundary", async () => {
  const dir = tempDir();
  const key = await run("age-keygen", ["-o", join(dir, "key.txt")]);
  assert.equal(key.code, 0, key.stderr);
  const recipient = /age1[0-9a-z]+/.exec(readFileSync(join(dir, "key.txt"), "utf8"))![0];
  for (const size of SIZES) {
    const plain = randomBytes(size);
    writeFileSync(join(dir, "f.age"), await encrypt(plain, { recipients: [recipient] }));
    // Through the shell: age creates no -o file for an empty plaintext.
    const out = await run("sh", ["-c", 'age -d -i "$1/key.txt" "$1/f.age" > "$1/f.out"', "sh", dir]);
    assert.equal(out.code, 0, `size ${size}: ${out.stderr}`);
    assert.deepEqual(readFileSync(join(dir, "f.out")), plain, `size ${size}`);
  }
});

test("cairn decrypts what the age tool encrypts (binary and armored, several recipients)", async () => {
  const dir = tempDir();
  const mine = generateIdentity();
  const other = generateIdentity();
  for (const size of SIZES) {
    const plain = randomBytes(size);
    writeFileSync(join(dir, "f"), plain);
    for (const armor of [false, true]) {
      const args = [
        "-r",
        other.recipient,
        "-r",
        mine.recipient,
        ...(armor ? ["-a"] : []),
        "-o",
        join(dir, "f.age"),
        join(dir, "f"),
      ];
      const out = await run("age", args);
      assert.equal(out.code, 0, out.stderr);
      const decrypted = await decrypt(readFileSync(join(dir, "f.age")), { identities: [mine.identity] });
      assert.deepEqual(decrypted, plain, `size ${size} armor ${armor}`);
    }
  }
});

test("passphrases interoperate with the age tool (through a pty, as age reads them from a terminal)", async () => {
  const dir = tempDir();
  const passphrase = "correct horse battery staple";
  const plain = randomBytes(200_000);
  writeFileSync(join(dir, "mine.age"), await encrypt(plain, { passphrase, scryptLogN: 12 }));
  const out = await run(
    "script",
    ["-qec", `age -d -o ${join(dir, "mine.out")} ${join(dir, "mine.age")}`, "/dev/null"],
    {
      input: `${passphrase}\n`,
    },
  );
  assert.equal(out.code, 0, out.stdout + out.stderr);
  assert.deepEqual(readFileSync(join(dir, "mine.out")), plain);

  writeFileSync(join(dir, "theirs"), plain);
  const enc = await run(
    "script",
    ["-qec", `age -p -o ${join(dir, "theirs.age")} ${join(dir, "theirs")}`, "/dev/null"],
    {
      input: `${passphrase}\n${passphrase}\n`,
    },
  );
  assert.equal(enc.code, 0, enc.stdout + enc.stderr);
  assert.deepEqual(
    await decrypt(readFileSync(join(dir, "theirs.age")), { passphrases: [passphrase] }),
    plain,
  );
  await assert.rejects(
    decrypt(readFileSync(join(dir, "theirs.age")), { passphrases: ["wrong"] }),
    /wrong passphrase/,
  );
});

test("a flipped byte or a cut-off file fails, and nothing past the damage is released", async () => {
  const { identity, recipient } = generateIdentity();
  const plain = randomBytes(5 * 65536 + 100);
  const sealed = await encrypt(plain, { recipients: [recipient] });
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 70_000]! ^= 1;
  await assert.rejects(decrypt(flipped, { identities: [identity] }), /does not authenticate/);
  await assert.rejects(
    decrypt(sealed.subarray(0, sealed.length - 65536 - 16), { identities: [identity] }),
    /modified|truncated/,
  );
  await assert.rejects(
    decrypt(sealed, { identities: [generateIdentity().identity] }),
    /no identity given opens/,
  );
});
