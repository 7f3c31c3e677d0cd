/**
 * Limits as wrappers around any Storage: how many transfers run at once on a destination, and how
 * many bytes per second all of its transfers together may move.
 */
import { type Readable, Transform, type TransformCallback } from "node:stream";
import { through } from "../core/streams.ts";
import type { Storage } from "../types.ts";
import { wrap } from "./wrap.ts";

export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(slots: number) {
    this.free = slots;
  }
  async acquire(signal: AbortSignal): Promise<() => void> {
    if (this.free > 0) this.free--;
    else
      await new Promise<void>((resolve, reject) => {
        const wake = () => {
          signal.removeEventListener("abort", abort);
          resolve();
        };
        const abort = () => {
          this.waiting.splice(this.waiting.indexOf(wake), 1);
          reject(signal.reason);
        };
        if (signal.aborted) return reject(signal.reason);
        signal.addEventListener("abort", abort, { once: true });
        this.waiting.push(wake);
      });
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

/**
 * At most `slots` transfers at once: a put holds its slot until stored, a get until its stream has
 * ended, failed or been closed. Listings, stats and deletes are not transfers and are not limited.
 */
export function withConcurrencyLimit(storage: Storage, slots: number): Storage {
  const semaphore = new Semaphore(slots);
  return wrap(storage, {
    async put(key, body, ctx) {
      const release = await semaphore.acquire(ctx.signal);
      try {
        return await storage.put(key, body, ctx);
      } finally {
        release();
      }
    },
    async get(key, ctx) {
      const release = await semaphore.acquire(ctx.signal);
      try {
        const stream = await storage.get(key, ctx);
        stream.once("end", release).once("error", release).once("close", release);
        return stream;
      } catch (error) {
        release();
        throw error;
      }
    },
  });
}

/** One budget of bytes per second shared by every stream through it (a virtual clock, no bursts). */
class Pace {
  private nextFree = 0;
  private readonly bytesPerSecond: number;
  constructor(bytesPerSecond: number) {
    this.bytesPerSecond = bytesPerSecond;
  }
  delayFor(bytes: number): number {
    const now = performance.now();
    const start = Math.max(now, this.nextFree);
    this.nextFree = start + (bytes / this.bytesPerSecond) * 1000;
    return start - now;
  }
}

class Paced extends Transform {
  private readonly pace: Pace;
  private readonly slice: number;
  constructor(pace: Pace, bytesPerSecond: number) {
    super();
    this.pace = pace;
    // Slices of at most a tenth of a second's budget keep the rate even and the delays short.
    this.slice = Math.max(1024, Math.floor(bytesPerSecond / 10));
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const send = (offset: number): void => {
      if (offset >= chunk.length) {
        done();
        return;
      }
      const piece = chunk.subarray(offset, offset + this.slice);
      setTimeout(() => {
        this.push(piece);
        send(offset + piece.length);
      }, this.pace.delayFor(piece.length));
    };
    send(0);
  }
}

/** Uploads and downloads of this destination together move at most `bytesPerSecond`. */
export function withBandwidthLimit(storage: Storage, bytesPerSecond: number): Storage {
  const pace = new Pace(bytesPerSecond);
  const paced = (input: Readable): Readable => through(input, new Paced(pace, bytesPerSecond));
  return wrap(storage, {
    put: (key, body, ctx) => storage.put(key, paced(body), ctx),
    async get(key, ctx) {
      return paced(await storage.get(key, ctx));
    },
  });
}
