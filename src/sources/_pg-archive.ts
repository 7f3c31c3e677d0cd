/**
 * Reads a pg_dump custom-format archive as it streams past and fails unless it is whole: the table
 * of contents says which entries have data, and every one of those data blocks must follow, each
 * to its end marker. A pg_dump that stops early (killed, out of disk, a wrapper that swallowed its
 * exit status) leaves an archive whose TOC reads fine — `pg_restore --list` passes — but whose
 * data is missing. Only block headers are parsed; data bytes are skipped, never copied.
 *
 * Layout (pg_backup_archiver.c, pg_backup_custom.c, archive versions 1.12–1.16): an int is a sign
 * byte and `intSize` little-endian bytes; a string is an int length (-1: null) and its bytes.
 */
import { Transform, type TransformCallback } from "node:stream";
import { SourceError } from "../kit/errors.ts";

const BLK_DATA = 1;
const BLK_BLOBS = 3;

type Request = { read: number } | { skip: number };

/** What the check found, for the manifest and the log. */
export interface ArchiveSummary {
  version: string;
  entries: number;
  dataBlocks: number;
}

/** The archive's structure as a sequence of reads and skips; throws on anything malformed. */
function* parse(summary: ArchiveSummary): Generator<Request, void, Buffer> {
  const magic = yield { read: 5 };
  if (magic.toString("latin1") !== "PGDMP") throw new Error("it does not start with PGDMP");
  const [major, minor, rev, intSize, offSize, format] = yield { read: 6 };
  const version = (major! << 16) | (minor! << 8);
  summary.version = `${major}.${minor}.${rev}`;
  if (format !== 1) throw new Error(`it is not a custom-format archive (format ${format})`);
  if (major !== 1 || minor! < 12 || minor! > 16) return; // a layout this check does not know: skipped
  const int = function* (): Generator<Request, number, Buffer> {
    const bytes = yield { read: 1 + intSize! };
    let value = 0;
    for (let i = intSize!; i >= 1; i--) value = value * 256 + bytes[i]!;
    return bytes[0] ? -value : value;
  };
  const str = function* (): Generator<Request, void, Buffer> {
    const length = yield* int();
    if (length > 0) yield { skip: length };
  };
  if (version >= 0x010f00) yield { read: 1 };
  else yield* int(); // compression
  for (let i = 0; i < 7; i++) yield* int(); // creation time
  for (let i = 0; i < 3; i++) yield* str(); // database, server version, pg_dump version
  const entries = yield* int();
  summary.entries = entries;
  const withData = new Set<number>();
  for (let i = 0; i < entries; i++) {
    const dumpId = yield* int();
    const hadDumper = yield* int();
    for (let s = 0; s < 4; s++) yield* str(); // table oid, oid, tag, desc
    yield* int(); // section
    for (let s = 0; s < 6; s++) yield* str(); // defn, drop, copy, namespace, tablespace, tableam
    if (version >= 0x011000) yield* int(); // relkind
    yield* str(); // owner
    yield* str(); // "false" (with oids)
    for (let length = yield* int(); length !== -1; length = yield* int())
      if (length > 0) yield { skip: length };
    yield { read: 1 + offSize! }; // data position
    if (hadDumper) withData.add(dumpId);
  }
  const chunks = function* (): Generator<Request, void, Buffer> {
    for (let length = yield* int(); length !== 0; length = yield* int()) {
      if (length < 0) throw new Error(`a data chunk has a negative length (${length})`);
      yield { skip: length };
    }
  };
  while (withData.size > 0) {
    const [type] = yield { read: 1 };
    const dumpId = yield* int();
    if (!withData.delete(dumpId)) throw new Error(`data block ${dumpId} is not in the table of contents`);
    if (type === BLK_DATA) yield* chunks();
    else if (type === BLK_BLOBS) for (let oid = yield* int(); oid !== 0; oid = yield* int()) yield* chunks();
    else throw new Error(`unknown block type ${type}`);
    summary.dataBlocks++;
  }
}

/** Passes a custom-format archive through unchanged; fails at its end unless the archive is whole. */
export class PgArchiveCheck extends Transform {
  readonly summary: ArchiveSummary = { version: "", entries: 0, dataBlocks: 0 };
  private readonly parser = parse(this.summary);
  private request: Request | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private done = false;
  private failure: Error | undefined;
  private readonly what: string;

  constructor(what: string) {
    super();
    this.what = what;
    this.advance(Buffer.alloc(0), true);
  }

  private advance(value: Buffer, first = false): void {
    try {
      const next = first ? this.parser.next() : this.parser.next(value);
      if (next.done) this.done = true;
      else this.request = next.value;
    } catch (error) {
      this.failure = error as Error;
      this.done = true;
    }
  }

  private consume(chunk: Buffer): void {
    let offset = 0;
    while (!this.done && this.request) {
      const request = this.request;
      if ("skip" in request) {
        const n = Math.min(request.skip, chunk.length - offset);
        offset += n;
        request.skip -= n;
        if (request.skip > 0) return;
        this.advance(Buffer.alloc(0));
        continue;
      }
      const n = Math.min(request.read - this.pendingBytes, chunk.length - offset);
      if (n === 0) return;
      this.pending.push(chunk.subarray(offset, offset + n));
      this.pendingBytes += n;
      offset += n;
      if (this.pendingBytes < request.read) return;
      const bytes = Buffer.concat(this.pending, this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
      this.advance(bytes);
    }
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.consume(chunk);
    if (this.failure) callback(this.error(this.failure.message));
    else callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.failure) {
      callback(this.error(this.failure.message));
      return;
    }
    if (!this.done) {
      callback(this.error("it ends in the middle"));
      return;
    }
    callback();
  }

  private error(why: string): SourceError {
    return new SourceError(`${this.what} is not a complete pg_dump archive: ${why}`, {
      hint: "pg_dump stopped before the end of its output; nothing from it was kept as good",
    });
  }
}
