/**
 * What an S3 server should answer as the ETag of the bytes cairn sent: the MD5 of the object for a
 * single PUT (and on servers that hash the whole object after a multipart upload), or the MD5 of
 * the parts' MD5s followed by `-N` for a multipart upload, as AWS, MinIO and Ceph compute it. A
 * mismatch means the server stored something else (a proxy or a disk changed a byte, a part came
 * up short). Objects encrypted with SSE-KMS or SSE-C have ETags that are not MD5s: not checked.
 */
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

export class EtagDigest extends Transform {
  bytes = 0;
  private readonly partSize: number;
  private readonly whole = createHash("md5");
  private part: Hash = createHash("md5");
  private partBytes = 0;
  private readonly parts: Buffer[] = [];

  constructor(partSize: number) {
    super();
    this.partSize = partSize;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.whole.update(chunk);
    for (let offset = 0; offset < chunk.length; ) {
      const slice = chunk.subarray(offset, offset + this.partSize - this.partBytes);
      this.part.update(slice);
      this.partBytes += slice.length;
      offset += slice.length;
      if (this.partBytes === this.partSize) this.closePart();
    }
    callback(null, chunk);
  }

  private closePart(): void {
    this.parts.push(this.part.digest());
    this.part = createHash("md5");
    this.partBytes = 0;
  }

  /** Why `etag` is not the ETag of what passed through, or undefined when it is (or cannot be told). */
  mismatch(etag: string | undefined): string | undefined {
    const value = etag?.replace(/"/g, "").toLowerCase();
    const match = value && /^([0-9a-f]{32})(?:-(\d+))?$/.exec(value);
    if (!match) return undefined;
    if (this.partBytes > 0 || this.parts.length === 0) this.closePart();
    const expected = match[2]
      ? `${createHash("md5").update(Buffer.concat(this.parts)).digest("hex")}-${this.parts.length}`
      : this.whole.copy().digest("hex");
    return value === expected
      ? undefined
      : `the server's ETag ${value} is not the ${expected} of the bytes sent`;
  }
}
