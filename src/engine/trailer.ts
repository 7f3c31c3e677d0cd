/**
 * A pipe cannot tell its reader whether the writer finished or died: `true | cairn upload -` and a
 * producer killed half-way both look like an ordinary end of input. `cairn backup … --stdout
 * --trailer` ends its output with 48 bytes — a magic word, the length and the SHA-256 of what came
 * before — and `cairn upload - --trailer` checks and strips them: no valid trailer, nothing stored.
 */
import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { IntegrityError, UsageError } from "../kit/errors.ts";

const MAGIC = Buffer.from("CAIRNEND", "latin1");
export const TRAILER_SIZE = MAGIC.length + 8 + 32;

/** Passes bytes through and appends the trailer at the end. */
export class TrailerWriter extends Transform {
  private readonly hash = createHash("sha256");
  private length = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.length += chunk.length;
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const size = Buffer.alloc(8);
    size.writeBigUInt64BE(BigInt(this.length));
    callback(null, Buffer.concat([MAGIC, size, this.hash.digest()]));
  }
}

/** Passes everything but the trailer through; fails at the end unless the trailer is there and right. */
export class TrailerReader extends Transform {
  private readonly hash = createHash("sha256");
  private length = 0;
  private held = Buffer.alloc(0);

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const all = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    const release = Math.max(0, all.length - TRAILER_SIZE);
    this.held = Buffer.from(all.subarray(release));
    if (release === 0) {
      callback();
      return;
    }
    const out = all.subarray(0, release);
    this.hash.update(out);
    this.length += out.length;
    callback(null, out);
  }

  override _flush(callback: TransformCallback): void {
    const fail = (why: string) =>
      callback(
        new IntegrityError(`the input ${why}: its producer stopped before the end; nothing was stored`, {
          hint: "the producer must be `cairn backup … --stdout --trailer`; check its exit status and messages",
        }),
      );
    if (this.held.length < TRAILER_SIZE || !this.held.subarray(0, MAGIC.length).equals(MAGIC))
      fail("does not end with cairn's trailer");
    else if (this.held.readBigUInt64BE(MAGIC.length) !== BigInt(this.length))
      fail("is shorter or longer than its trailer says");
    else if (!this.held.subarray(MAGIC.length + 8).equals(this.hash.digest()))
      fail("does not match the SHA-256 in its trailer");
    else callback();
  }
}

/** Passes bytes through and fails at the end when there were none (unless empty is allowed). */
export class NotEmpty extends Transform {
  private seen = false;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (chunk.length > 0) this.seen = true;
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    callback(
      this.seen
        ? null
        : new UsageError("the input is empty, so nothing was stored (did the program writing it fail?)", {
            hint: "--allow-empty stores an empty object on purpose",
          }),
    );
  }
}
