import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { test } from "node:test";
import { inflateSync } from "node:zlib";
import * as vectors from "cctv-age";
import { createDecryptStream } from "../../src/age/index.ts";

interface Vector {
  name: string;
  meta: Record<string, string[]>;
  body: Buffer;
}

function parseVector(name: string, data: Uint8Array): Vector {
  const buf = Buffer.from(data);
  const split = buf.indexOf("\n\n");
  const meta: Record<string, string[]> = {};
  for (const line of buf.subarray(0, split).toString().split("\n")) {
    const at = line.indexOf(": ");
    const key = line.slice(0, at);
    meta[key] = [...(meta[key] ?? []), line.slice(at + 2)];
  }
  let body = buf.subarray(split + 2);
  if (meta.compressed?.[0] === "zlib") body = inflateSync(body);
  return { name, meta, body };
}

const all = Object.entries(vectors as unknown as Record<string, Uint8Array>)
  .filter(([name]) => name !== "default")
  .map(([name, data]) => parseVector(name, data));
// Hybrid (ML-KEM) recipients are a newer age extension that cairn does not write or read yet.
const supported = all.filter((v) => !v.name.includes("hybrid"));

/** Collects every byte the decryptor releases, even when it fails later on. */
function decrypt(v: Vector): Promise<{ released: Buffer; error?: Error }> {
  const chunks: Buffer[] = [];
  const stream = createDecryptStream({
    identities: v.meta.identity ?? [],
    passphrases: v.meta.passphrase ?? [],
  });
  return new Promise((resolve) => {
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error) => resolve({ released: Buffer.concat(chunks), error }));
    stream.on("end", () => resolve({ released: Buffer.concat(chunks) }));
    Readable.from([v.body]).pipe(stream);
  });
}

test("the vector set is the one expected (143 vectors, all X25519/scrypt ones covered)", () => {
  assert.equal(all.length, 143);
  assert.ok(supported.length >= 120, `only ${supported.length} vectors`);
});

for (const v of supported) {
  const expect = v.meta.expect?.[0];
  test(`age vector ${v.name} (${expect})`, async () => {
    const { released, error } = await decrypt(v);
    const hash = createHash("sha256").update(released).digest("hex");
    if (expect === "success") {
      assert.equal(error, undefined, `must decrypt: ${error?.message}`);
      assert.equal(hash, v.meta.payload?.[0]);
    } else {
      assert.ok(error, `must fail with "${expect}"`);
      if (expect === "payload failure")
        assert.equal(hash, v.meta.payload?.[0], "released only authenticated plaintext");
      else assert.equal(released.length, 0, "no plaintext released");
    }
  });
}
