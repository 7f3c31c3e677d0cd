/**
 * Retries as a wrapper around any Storage (not code inside each one): reads, listings and deletes
 * that fail with a transient error (a dropped or refused connection, a timeout, HTTP 429/5xx) are
 * tried again with exponential backoff and full jitter. Uploads are not retried here: their body
 * is a stream that has been consumed; the SDKs retry their own parts. What is transient beyond the
 * system's connection errors is each destination's to say (`retryable` on its StorageError): this
 * wrapper knows no protocol.
 */

import type { ObjectInfo, PluginContext, Storage } from "../kit/contracts.ts";
import { NotFoundError } from "../kit/errors.ts";
import { wrap } from "./wrap.ts";

export interface RetryPolicy {
  /** Attempts in all, the first one included; 1 turns retries off. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  random?: () => number;
}

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
]);

/** Whether an error (or one of its causes) says "try again later". */
export function isTransient(error: unknown): boolean {
  for (let e = error as Record<string, unknown> | undefined, depth = 0; e && depth < 5; depth++) {
    if (e instanceof NotFoundError) return false;
    if (e.retryable === true) return true;
    if (typeof e.code === "string" && TRANSIENT_CODES.has(e.code)) return true;
    e = e.cause as Record<string, unknown> | undefined;
  }
  return false;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Runs `fn`, trying again with backoff and full jitter while it fails transiently. */
export async function retryTransient<T>(
  policy: RetryPolicy,
  ctx: PluginContext,
  what: string,
  location: string,
  fn: () => Promise<T>,
): Promise<T> {
  const sleep = policy.sleep ?? defaultSleep;
  const random = policy.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= policy.attempts || !isTransient(error) || ctx.signal.aborted) throw error;
      const delay = random() * Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      ctx.logger.warn(`${what} failed, retrying in ${(delay / 1000).toFixed(1)} s`, {
        destination: location,
        attempt,
        error: (error as Error).message,
      });
      await sleep(delay, ctx.signal);
    }
  }
}

export function withRetries(storage: Storage, policy: RetryPolicy): Storage {
  if (policy.attempts <= 1) return storage;
  const retried = <T>(ctx: PluginContext, what: string, fn: () => Promise<T>): Promise<T> =>
    retryTransient(policy, ctx, what, storage.location, fn);
  // A listing is retried as a whole, and only while nothing has been handed out yet.
  const listing = (list: Storage["list"]): Storage["list"] =>
    async function* (prefix, ctx) {
      const collected = await retried(ctx, `listing ${prefix}`, async () => {
        const all: ObjectInfo[] = [];
        for await (const object of list(prefix, ctx)) all.push(object);
        return all;
      });
      yield* collected;
    };
  return wrap(storage, {
    get: (key, ctx) => retried(ctx, `reading ${key}`, () => storage.get(key, ctx)),
    stat: (key, ctx) => retried(ctx, `stat of ${key}`, () => storage.stat(key, ctx)),
    delete: (key, ctx) => retried(ctx, `deleting ${key}`, () => storage.delete(key, ctx)),
    list: listing(storage.list.bind(storage)),
    ...(storage.listTemporary ? { listTemporary: listing(storage.listTemporary.bind(storage)) } : {}),
  });
}
