/**
 * Limits as wrappers around any Storage: how many transfers run at once on a destination, and how
 * many bytes per second all of its transfers together may move.
 */
import { type Readable, Transform, type TransformCallback } from "node:stream";
import type { Storage } from "../kit/contracts.ts";
import { Semaphore } from "../kit/semaphore.ts";
import { through } from "../kit/streams.ts";
import { wrap } from "./wrap.ts";

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
