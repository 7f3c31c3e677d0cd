/**
 * age STREAM payload on Node's native ChaCha20-Poly1305: 64 KiB chunks, each authenticated before a
 * byte of it is released; the last chunk carries a flag so truncation is detected.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { ArmorReader } from "./armor.ts";
import {
  AgeHeaderError,
  encodeHeader,
  newFileKey,
  parseHeader,
  type Stanza,
  type UnwrapKeys,
  unwrapFileKey,
  verifyHeaderMac,
} from "./header.ts";

export const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const NONCE_SIZE = 16;
const MAX_HEADER_SIZE = 1024 * 1024;

/** The payload does not decrypt: modified, truncated or followed by garbage. */
export class AgePayloadError extends Error {
  override name = "AgePayloadError";
}

/** A KeyObject, made once: a raw key would be imported again for every 64 KiB chunk. */
function payloadKey(fileKey: Buffer, nonce: Buffer): KeyObject {
  return createSecretKey(new Uint8Array(hkdfSync("sha256", fileKey, nonce, "payload", 32)));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Collects chunks without copying until a contiguous slice is needed. */
class ByteQueue {
  private parts: Buffer[] = [];
  length = 0;
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.parts.push(chunk);
    this.length += chunk.length;
  }
  /** Removes and returns the first `n` bytes (n ≤ length). */
  take(n: number): Buffer {
    const first = this.parts[0];
    if (first && first.length >= n) {
      this.length -= n;
      if (first.length === n) this.parts.shift();
      else this.parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const part = this.parts[0]!;
      const used = Math.min(part.length, n - filled);
      part.copy(out, filled, 0, used);
      filled += used;
      if (used === part.length) this.parts.shift();
      else this.parts[0] = part.subarray(used);
    }
    this.length -= n;
    return out;
  }
  peekAll(): Buffer {
    if (this.parts.length > 1) this.parts = [Buffer.concat(this.parts)];
    return this.parts[0] ?? Buffer.alloc(0);
  }
}

export class AgeEncryptStream extends Transform {
  private readonly key: KeyObject;
  private readonly pending = new ByteQueue();
  private counter = 0;

  constructor(stanzas: (fileKey: Buffer) => Stanza[]) {
    super();
    const fileKey = newFileKey();
    const nonce = randomBytes(NONCE_SIZE);
    this.key = payloadKey(fileKey, nonce);
    this.push(encodeHeader(stanzas(fileKey), fileKey));
    this.push(nonce);
  }

  private seal(plaintext: Buffer, last: boolean): [Buffer, Buffer] {
    const cipher = createCipheriv("chacha20-poly1305", this.key, chunkNonce(this.counter++, last), {
      authTagLength: TAG_SIZE,
    });
    const body = cipher.update(plaintext);
    cipher.final();
    return [body, cipher.getAuthTag()];
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    // A full chunk is sealed as "not last" only once we know more bytes follow it. Everything sealed
    // from one write goes out as one buffer: fewer, larger writes downstream.
    const sealed: Buffer[] = [];
    while (this.pending.length > CHUNK_SIZE) sealed.push(...this.seal(this.pending.take(CHUNK_SIZE), false));
    if (sealed.length) this.push(Buffer.concat(sealed));
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.push(Buffer.concat(this.seal(this.pending.take(this.pending.length), true)));
    callback();
  }
}

/**
 * Decrypts an age file, binary or armored. Releases each 64 KiB chunk only after its tag verified; errors on a bad
 * header, wrong key, bad tag, truncation or trailing data.
 */
export class AgeDecryptStream extends Transform {
  private readonly keys: UnwrapKeys;
  private readonly pending = new ByteQueue();
  private fileKey: Buffer | undefined;
  private payloadKey: KeyObject | undefined;
  private counter = 0;
  private finished = false;
  private readonly armor = new ArmorReader();

  constructor(keys: UnwrapKeys) {
    super();
    this.keys = keys;
  }

  private open(sealed: Buffer, last: boolean): Buffer {
    const plaintext = this.tryOpen(sealed, last);
    if (!plaintext)
      throw new AgePayloadError(
        last
          ? "age payload does not authenticate: the file was modified or truncated"
          : "age payload does not authenticate: the file was modified",
      );
    return plaintext;
  }

  private tryOpen(sealed: Buffer, last: boolean): Buffer | undefined {
    const decipher = createDecipheriv("chacha20-poly1305", this.payloadKey!, chunkNonce(this.counter, last), {
      authTagLength: TAG_SIZE,
    });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE));
    try {
      decipher.final();
    } catch {
      return undefined;
    }
    this.counter++;
    return plaintext;
  }

  /** Parses the header once it is complete; false while more bytes are needed. */
  private readHeader(final: boolean): boolean {
    if (this.fileKey) return true;
    const parsed = parseHeader(this.pending.peekAll());
    if (!parsed) {
      if (final)
        throw new AgeHeaderError("age header is incomplete: the file is truncated or not an age file");
      if (this.pending.length > MAX_HEADER_SIZE) throw new AgeHeaderError("age header is too large");
      return false;
    }
    const fileKey = unwrapFileKey(parsed.header, this.keys);
    verifyHeaderMac(parsed.header, fileKey);
    this.pending.take(parsed.length);
    this.fileKey = fileKey;
    return true;
  }

  private drain(final: boolean): void {
    if (!this.readHeader(final)) return;
    if (!this.payloadKey) {
      if (this.pending.length < NONCE_SIZE) {
        if (final) throw new AgePayloadError("age payload nonce is missing: the file is truncated");
        return;
      }
      this.payloadKey = payloadKey(this.fileKey!, this.pending.take(NONCE_SIZE));
    }
    const sealedChunk = CHUNK_SIZE + TAG_SIZE;
    // Like the reference implementation: a full chunk is opened as soon as it is here; if it does
    // not open as a middle chunk it may be a full final one, and nothing may follow it.
    while (this.pending.length >= sealedChunk) {
      if (this.finished) throw new AgePayloadError("age payload has data after its final chunk");
      const sealed = this.pending.take(sealedChunk);
      const middle = this.tryOpen(sealed, false);
      if (middle) {
        this.push(middle);
        continue;
      }
      this.push(this.open(sealed, true));
      this.finished = true;
    }
    if (!final) return;
    if (this.pending.length > 0) {
      if (this.finished) throw new AgePayloadError("age payload has data after its final chunk");
      if (this.pending.length < TAG_SIZE)
        throw new AgePayloadError("age payload ends with a truncated chunk");
      if (this.pending.length === TAG_SIZE && this.counter > 0)
        throw new AgePayloadError("age payload ends with an empty chunk after data");
      this.push(this.open(this.pending.take(this.pending.length), true));
      this.finished = true;
    }
    if (!this.finished) throw new AgePayloadError("age payload is truncated: the final chunk is missing");
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      for (const bytes of this.armor.feed(chunk)) this.pending.push(bytes);
      this.drain(false);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      for (const bytes of this.armor.finish()) this.pending.push(bytes);
      this.drain(true);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }
}
