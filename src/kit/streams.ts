import { createHash, type Hash } from "node:crypto";
import {
  type PassThrough,
  pipeline,
  type Readable,
  Transform,
  type TransformCallback,
  Writable,
} from "node:stream";
import type { ObjectRecord } from "./contracts.ts";
import { IntegrityError } from "./errors.ts";

/**
 * Gathers small writes into blocks of `size` bytes. Tools write in 4–64 KiB pieces, and each piece
 * costs a thread-pool round trip in Node's compressors: measured here, pg_dump output compressed at
 * 32 MB/s in its own pieces and several times faster in 1 MiB blocks.
 */
export class Coalesce extends Transform {
  private parts: Buffer[] = [];
  private length = 0;
  private readonly size: number;

  constructor(size = 1024 * 1024) {
    super({ highWaterMark: size });
    this.size = size;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.length === 0 && chunk.length >= this.size) {
      callback(null, chunk);
      return;
    }
    this.parts.push(chunk);
    this.length += chunk.length;
    if (this.length >= this.size) this.release();
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.release();
    callback();
  }

  private release(): void {
    if (this.length === 0) return;
    this.push(this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.length));
    this.parts = [];
    this.length = 0;
  }
}

/** `source` piped into `transform`, whose output errors when either side fails (pipe() alone would hang). */
export function through<T extends Transform>(source: Readable, transform: T): T {
  return pipeline(source, transform, () => {}) as unknown as T;
}

/**
 * Passes bytes through and fails at the end unless the last bytes contain `marker`: for dump tools
 * that write a completion line (mysqldump, pg_dumpall), a stream cut short is an error, not a dump.
 */
export class EndMarkerCheck extends Transform {
  private tail = "";
  private readonly marker: string;
  private readonly onMissing: () => Error;

  constructor(marker: string, onMissing: () => Error) {
    super();
    this.marker = marker;
    this.onMissing = onMissing;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    // Only the last bytes matter: converting whole chunks to text would cost as much as the dump.
    const end = chunk.length > 512 ? chunk.subarray(chunk.length - 512) : chunk;
    this.tail = (this.tail + end.toString("latin1")).slice(-512);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    callback(this.tail.includes(this.marker) ? null : this.onMissing());
  }
}

/** Counts the bytes that flow through. */
export class ByteCounter extends Transform {
  bytes = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/** Counts and hashes the bytes passing through. */
export class Sha256Counter extends Transform {
  private readonly hash = createHash("sha256");
  private size = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    callback(null, chunk);
  }
  result(): { size: number; sha256: string } {
    return { size: this.size, sha256: this.hash.copy().digest("hex") };
  }
}

/** One destination's upload of the current object. */
export interface ObjectOutput {
  /** The destination it goes to (for the writer's own bookkeeping). */
  destination: string;
  body: PassThrough;
  stored: Promise<void>;
}

/**
 * Opens one object on every destination still in the run. `lost` is called when one of them fails:
 * that destination is out of the run from then on, and the others go on without it.
 */
export interface ObjectWriter {
  open(key: string): ObjectOutput[];
  lost(output: ObjectOutput, error: unknown): void;
}

interface OpenObject {
  key: string;
  hash: Hash;
  size: number;
  outputs: ObjectOutput[];
  /** Resolves when one of the outputs fails (it is then dropped). */
  change: Promise<void>;
}

/**
 * The end of a backup pipeline: cuts the encoded stream into objects (one, or parts of `partSize`
 * bytes), computes each object's SHA-256 in-stream and writes it to every destination with
 * back-pressure from the slowest one. A destination that fails is dropped and the rest go on; the
 * sink fails only when none is left.
 */
export class ObjectSink extends Writable {
  readonly objects: ObjectRecord[] = [];
  private current: OpenObject | undefined;
  private readonly baseKey: string;
  private readonly partSize: number | undefined;
  private readonly writer: ObjectWriter;
  private firstError: unknown;

  constructor(baseKey: string, partSize: number | undefined, writer: ObjectWriter) {
    super({ highWaterMark: 1024 * 1024 });
    this.baseKey = baseKey;
    this.partSize = partSize;
    this.writer = writer;
  }

  private keyFor(index: number): string {
    return this.partSize === undefined
      ? this.baseKey
      : `${this.baseKey}.part${String(index + 1).padStart(4, "0")}`;
  }

  private readonly puts: Promise<void>[] = [];

  /** Resolves once every put this sink started has finished or failed (and cleaned up after itself). */
  async settled(): Promise<void> {
    await Promise.allSettled(this.puts);
  }

  private start(): OpenObject {
    const key = this.keyFor(this.objects.length);
    const outputs = this.writer.open(key);
    if (outputs.length === 0) throw this.noneLeft();
    let changed: () => void = () => {};
    const object: OpenObject = {
      key,
      hash: createHash("sha256"),
      size: 0,
      outputs,
      change: new Promise<void>((resolve) => {
        changed = resolve;
      }),
    };
    for (const output of outputs) {
      this.puts.push(output.stored);
      output.stored.catch((error: unknown) => {
        this.firstError ??= error;
        object.outputs = object.outputs.filter((o) => o !== output);
        output.body.destroy();
        this.writer.lost(output, error);
        changed();
        object.change = new Promise<void>((resolve) => {
          changed = resolve;
        });
      });
    }
    this.current = object;
    return object;
  }

  private noneLeft(): Error {
    return this.firstError instanceof Error ? this.firstError : new Error(String(this.firstError));
  }

  private async finishCurrent(): Promise<void> {
    const object = this.current!;
    this.current = undefined;
    for (const output of object.outputs) output.body.end();
    await Promise.allSettled(object.outputs.map((o) => o.stored));
    // Let the failure handlers drop what failed at the very end.
    await new Promise((resolve) => setImmediate(resolve));
    if (object.outputs.length === 0) throw this.noneLeft();
    this.objects.push({ key: object.key, size: object.size, sha256: object.hash.digest("hex") });
  }

  private async writeChunk(chunk: Buffer): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) {
      const object = this.current ?? this.start();
      const room = this.partSize === undefined ? chunk.length - offset : this.partSize - object.size;
      const slice = chunk.subarray(offset, offset + Math.min(room, chunk.length - offset));
      offset += slice.length;
      object.hash.update(slice);
      object.size += slice.length;
      const waits = new Map<ObjectOutput, Promise<unknown>>();
      for (const output of object.outputs)
        if (!output.body.write(slice))
          waits.set(output, new Promise((resolve) => output.body.once("drain", resolve)));
      // A destination that fails while we wait for it is dropped, never waited for.
      if (waits.size > 0) {
        let drained = false;
        const all = Promise.all(waits.values()).then(() => {
          drained = true;
        });
        while (!drained) {
          await Promise.race([all, object.change]);
          if (object.outputs.length === 0) throw this.noneLeft();
          const live = [...waits.keys()].filter((o) => object.outputs.includes(o));
          if (live.every((o) => !o.body.writableNeedDrain)) break;
        }
      }
      if (this.partSize !== undefined && object.size >= this.partSize) await this.finishCurrent();
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeChunk(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    try {
      if (!this.current && this.objects.length === 0) this.start();
    } catch (error) {
      callback(error as Error);
      return;
    }
    (this.current ? this.finishCurrent() : Promise.resolve()).then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const output of this.current?.outputs ?? []) output.body.destroy(error ?? new Error("aborted"));
    callback(error);
  }
}

/** Passes an object's bytes through and fails at the end unless size and SHA-256 match the manifest. */
export class ObjectVerifier extends Transform {
  private readonly hash = createHash("sha256");
  private size = 0;
  private readonly expected: ObjectRecord;
  private readonly where: string;

  constructor(expected: ObjectRecord, where: string) {
    super();
    this.expected = expected;
    this.where = where;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.expected.size) {
      callback(
        new IntegrityError(
          `${this.where} is larger than the ${this.expected.size} bytes the manifest records`,
        ),
      );
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.size !== this.expected.size) {
      callback(new IntegrityError(`${this.where} is truncated: ${this.size} of ${this.expected.size} bytes`));
      return;
    }
    const actual = this.hash.digest("hex");
    if (actual !== this.expected.sha256) {
      callback(new IntegrityError(`${this.where} is corrupt: its SHA-256 does not match the manifest`));
      return;
    }
    callback();
  }
}

/**
 * Holds back the last chunk until the whole stream has passed every check upstream, so a consumer
 * (pg_restore, an extractor) can never see a complete input and commit before a late check fails.
 */
export class HoldBackLast extends Transform {
  private held: Buffer | undefined;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const previous = this.held;
    this.held = chunk;
    callback(null, previous);
  }
  override _flush(callback: TransformCallback): void {
    callback(null, this.held);
  }
}
