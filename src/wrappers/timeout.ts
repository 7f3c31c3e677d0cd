/**
 * Timeouts as a wrapper around any Storage. A transfer can rightly take hours, so what is bounded is
 * the time a destination makes no progress: an upload whose bytes are waiting but not taken, a
 * download that delivers nothing while its reader waits, a call that does not answer. Time spent
 * waiting for the source (a slow dump) or for the reader (a slow restore) does not count.
 */
import { type Readable, Transform, type TransformCallback } from "node:stream";
import type { PluginContext, Storage } from "../kit/contracts.ts";
import { formatDuration } from "../kit/duration.ts";
import { StorageError } from "../kit/errors.ts";
import { through } from "../kit/streams.ts";
import { wrap } from "./wrap.ts";

/** Counts the bytes that pass, so a watcher can tell who is waiting for whom. */
class Meter extends Transform {
  bytesIn = 0;
  bytesOut = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.bytesIn += chunk.length;
    done(null, chunk);
  }
  // Flowing mode, pipes and async iteration all take their chunks through read().
  override read(size?: number): Buffer {
    const chunk = super.read(size) as Buffer | null;
    if (chunk) this.bytesOut += chunk.length;
    return chunk as Buffer;
  }
}

/**
 * Calls `expire` once `ms` pass during which `stalled()` held and `progress()` did not change.
 * Returns the function that stops watching.
 */
function watch(ms: number, stalled: () => boolean, progress: () => number, expire: () => void): () => void {
  let last = performance.now();
  let seen = progress();
  const timer = setInterval(
    () => {
      const now = performance.now();
      const current = progress();
      if (current !== seen || !stalled()) {
        seen = current;
        last = now;
      } else if (now - last >= ms) {
        clearInterval(timer);
        expire();
      }
    },
    Math.min(1000, Math.max(10, ms / 4)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

export function withTimeout(storage: Storage, ms: number): Storage {
  const timeoutError = (what: string) =>
    new StorageError(`${storage.location}: ${what} made no progress for ${formatDuration(ms)}`, {
      retryable: true,
      hint: "the destination stopped answering; raise the destination's `timeout` if it is only slow",
    });

  /** Runs `call` with its own signal, rejecting with a timeout error when `stalled` lasts `ms`. */
  function bounded<T>(
    ctx: PluginContext,
    what: string,
    call: (ctx: PluginContext) => Promise<T>,
    stalled: () => boolean = () => true,
    progress: () => number = () => 0,
    onExpire: (error: StorageError) => void = () => {},
  ): Promise<T> {
    const controller = new AbortController();
    const forward = () => controller.abort(ctx.signal.reason);
    ctx.signal.addEventListener("abort", forward, { once: true });
    let stop = () => {};
    const expired = new Promise<never>((_, reject) => {
      stop = watch(ms, stalled, progress, () => {
        const error = timeoutError(what);
        onExpire(error);
        controller.abort(error);
        reject(error);
      });
    });
    const running = call({ ...ctx, signal: controller.signal });
    running.catch(() => {}); // after a timeout, its own failure is no longer news
    return Promise.race([running, expired]).finally(() => {
      stop();
      ctx.signal.removeEventListener("abort", forward);
    });
  }

  const metered = (input: Readable): Meter => through(input, new Meter());

  /** Each page or entry of a listing must come within the timeout. */
  const listing = (list: Storage["list"]): Storage["list"] =>
    async function* (prefix, ctx) {
      const iterator = list(prefix, ctx)[Symbol.asyncIterator]();
      try {
        while (true) {
          const next = await bounded(ctx, `listing ${prefix}`, () => iterator.next());
          if (next.done) return;
          yield next.value;
        }
      } finally {
        await iterator.return?.();
      }
    };

  return wrap(storage, {
    put(key, body, ctx) {
      const meter = metered(body);
      // Stalled: bytes are waiting (or the body has ended) and the destination does not take them.
      const waitingOnDestination = () => meter.readableLength > 0 || meter.writableFinished;
      return bounded(
        ctx,
        `storing ${key}`,
        (inner) => storage.put(key, meter, inner),
        waitingOnDestination,
        () => meter.bytesOut,
        (error) => meter.destroy(error),
      );
    },
    async get(key, ctx) {
      const stream = await bounded(ctx, `opening ${key}`, (inner) => storage.get(key, inner));
      const meter = metered(stream);
      // Stalled: the reader has room for more and nothing arrives.
      const waitingOnDestination = () =>
        !meter.destroyed && !meter.writableFinished && meter.readableLength < meter.readableHighWaterMark;
      const stop = watch(
        ms,
        waitingOnDestination,
        () => meter.bytesIn,
        () => meter.destroy(timeoutError(`reading ${key}`)),
      );
      meter.once("close", stop);
      return meter;
    },
    stat: (key, ctx) => bounded(ctx, `stat of ${key}`, (inner) => storage.stat(key, inner)),
    delete: (key, ctx) => bounded(ctx, `deleting ${key}`, (inner) => storage.delete(key, inner)),
    list: listing(storage.list.bind(storage)),
    ...(storage.listTemporary ? { listTemporary: listing(storage.listTemporary.bind(storage)) } : {}),
  });
}
