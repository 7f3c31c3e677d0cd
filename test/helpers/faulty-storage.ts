/**
 * A Storage wrapper that fails the way storages fail (kopia's FaultyStorage, restic's
 * errorBackend), around any real destination: per-method queues of faults, each used once, in
 * order. Put faults act on the bytes going in; get faults on the bytes coming out.
 */
import { type Readable, Transform, type TransformCallback } from "node:stream";
import type { ObjectInfo, PluginContext, Storage } from "../../src/kit/contracts.ts";
import { wrap } from "../../src/wrappers/wrap.ts";

export type Fault =
  /** The call fails at once with this error (default: a transient ECONNRESET). */
  | { kind: "error"; error?: Error }
  /** The call waits this long, then goes on. */
  | { kind: "delay"; ms: number }
  /** The call never ends (until its signal aborts). */
  | { kind: "hang" }
  /** put: only the first `bytes` are stored, and the put says it stored it all. get: the stream ends early. */
  | { kind: "truncate"; bytes: number }
  /** put: the byte at `offset` is stored with one bit flipped. get: it is read so. */
  | { kind: "flip"; offset: number }
  /** put: acknowledged, nothing stored. */
  | { kind: "drop" }
  /** The stream fails once `bytes` have passed. */
  | { kind: "fail-after"; bytes: number };

type Method = "put" | "get" | "stat" | "list" | "delete";

export interface FaultyStorage extends Storage {
  /** Queues `fault` for the next call of `method` whose key starts with `prefix` (default: any). */
  inject(method: Method, fault: Fault, prefix?: string): void;
  /** Faults still queued (a test asserts they all fired). */
  pending(): number;
}

class Mangle extends Transform {
  /** Bytes that came in (what the storage was sent, whatever went on). */
  seen = 0;
  private readonly fault: Fault;
  constructor(fault: Fault) {
    super();
    this.fault = fault;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    const start = this.seen;
    this.seen += chunk.length;
    const f = this.fault;
    if (f.kind === "flip" && f.offset >= start && f.offset < this.seen) {
      const copy = Buffer.from(chunk);
      copy[f.offset - start]! ^= 0x01;
      done(null, copy);
      return;
    }
    if (f.kind === "truncate") {
      done(null, start >= f.bytes ? undefined : chunk.subarray(0, f.bytes - start));
      return;
    }
    if (f.kind === "fail-after" && this.seen > f.bytes) {
      done(new Error(`injected: failed after ${f.bytes} bytes`));
      return;
    }
    done(null, chunk);
  }
}

const transient = () => Object.assign(new Error("injected: connection reset"), { code: "ECONNRESET" });

function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

export function faulty(inner: Storage): FaultyStorage {
  const queues = new Map<Method, { fault: Fault; prefix: string }[]>();
  const take = (method: Method, key: string): Fault | undefined => {
    const queue = queues.get(method) ?? [];
    const at = queue.findIndex((q) => key.startsWith(q.prefix));
    return at < 0 ? undefined : queue.splice(at, 1)[0]!.fault;
  };
  /** Runs the faults that act before a call; returns the one that acts on its bytes, if any. */
  async function before(method: Method, key: string, ctx: PluginContext): Promise<Fault | undefined> {
    const fault = take(method, key);
    if (!fault) return undefined;
    if (fault.kind === "error") throw fault.error ?? transient();
    if (fault.kind === "delay") await new Promise((resolve) => setTimeout(resolve, fault.ms));
    if (fault.kind === "hang") await hang(ctx.signal);
    return ["truncate", "flip", "drop", "fail-after"].includes(fault.kind) ? fault : undefined;
  }
  const faulty = wrap(inner, {
    async put(key, body, ctx): Promise<ObjectInfo> {
      const fault = await before("put", key, ctx);
      if (fault?.kind === "drop") {
        let size = 0;
        for await (const chunk of body) size += (chunk as Buffer).length;
        return { key, size };
      }
      if (!fault) return inner.put(key, body, ctx);
      const mangled = body.pipe(new Mangle(fault));
      const stored = await inner.put(key, mangled, ctx);
      // A storage that lies: it says it stored what it was sent.
      return fault.kind === "truncate" ? { ...stored, size: mangled.seen } : stored;
    },
    async get(key, ctx): Promise<Readable> {
      const fault = await before("get", key, ctx);
      const stream = await inner.get(key, ctx);
      return fault ? stream.pipe(new Mangle(fault)) : stream;
    },
    async stat(key, ctx) {
      await before("stat", key, ctx);
      return inner.stat(key, ctx);
    },
    async *list(prefix, ctx) {
      await before("list", prefix, ctx);
      yield* inner.list(prefix, ctx);
    },
    async delete(key, ctx) {
      await before("delete", key, ctx);
      return inner.delete(key, ctx);
    },
  });
  return Object.assign(faulty, {
    inject(method: Method, fault: Fault, prefix = "") {
      queues.set(method, [...(queues.get(method) ?? []), { fault, prefix }]);
    },
    pending: () => [...queues.values()].reduce((n, q) => n + q.length, 0),
  });
}
