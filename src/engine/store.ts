/**
 * Storing one artifact on every destination of a run at once: the source's stream through the
 * transforms into the object sink (split into parts when asked), then each stored object confirmed;
 * and the cleanup of what a failed source or run left behind.
 */
import { type Duplex, PassThrough, type Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  type Artifact,
  type ArtifactRecord,
  type Logger,
  MANIFEST_NAME,
  type PluginContext,
  type Transform,
} from "../kit/contracts.ts";
import { CairnError, describeError, SourceError, StorageError } from "../kit/errors.ts";
import { ByteCounter, Coalesce, ObjectSink } from "../kit/streams.ts";
import { confirmStored } from "./confirm.ts";
import type { Destination } from "./context.ts";
import { safely } from "./progress.ts";

/** A dump much smaller than the last one is the classic silent failure: a database emptied by mistake. */
const SHRINK_WARNING = { ratio: 0.5, minimumBytes: 64 * 1024 };

export function warnAboutSize(
  record: ArtifactRecord,
  previous: { snapshot: string; sizes: Map<string, number> } | undefined,
  logger: Logger,
): void {
  if (record.rawSize === 0) {
    logger.warn(`${record.name} is empty (allowed by the source): check that nothing was lost`);
    return;
  }
  const before = previous?.sizes.get(record.name);
  if (before === undefined || before < SHRINK_WARNING.minimumBytes) return;
  if (record.rawSize < before * SHRINK_WARNING.ratio)
    logger.warn(
      `${record.name} is ${record.rawSize} bytes, down from ${before} in snapshot ${previous!.snapshot} (${Math.round((100 * record.rawSize) / before)}%): check that no data was deleted by mistake`,
    );
}

/** Confirms the stored objects on every destination still in the run; one that fails drops out. */
export async function confirmOnEach(
  destinations: Destination[],
  folders: Record<string, string>,
  artifacts: ArtifactRecord[],
  lost: Map<string, unknown>,
  ctx: PluginContext,
): Promise<void> {
  const live = destinations.filter((d) => !lost.has(d.name));
  const checked = await Promise.allSettled(
    live.map((d) => confirmStored(d, folders[d.name]!, artifacts, ctx)),
  );
  checked.forEach((outcome, i) => {
    if (outcome.status === "fulfilled") return;
    const name = live[i]!.name;
    lost.set(name, outcome.reason);
    ctx.logger.error(`destination ${name} failed: ${describeError(outcome.reason)}`);
  });
}

export interface StoreOptions {
  ctx: PluginContext;
  /** Destinations out of the run, shared by every artifact of it. */
  lost: Map<string, unknown>;
  partSize: number | undefined;
  onProgress: ((bytes: number, elapsed: number) => void) | undefined;
}

export async function storeArtifact(
  artifact: Artifact,
  sourceName: string,
  sourceType: string,
  transforms: Transform[],
  destinations: Destination[],
  folders: Record<string, string>,
  { ctx, lost, partSize, onProgress }: StoreOptions,
): Promise<ArtifactRecord> {
  const key = artifact.name + transforms.map((t) => t.extension).join("");
  const sink = new ObjectSink(key, partSize, {
    open: (objectKey) =>
      destinations
        .filter((d) => !lost.has(d.name))
        .map((d) => {
          const body = new PassThrough({ highWaterMark: 1024 * 1024 });
          const where = `${folders[d.name]}/${objectKey}`;
          const stored = d.storage.put(where, body, ctx).then(
            () => undefined,
            (error: unknown) => {
              throw error instanceof CairnError
                ? error
                : new StorageError(`destination ${d.name}: ${describeError(error)}`, { cause: error });
            },
          );
          return { destination: d.name, body, stored };
        }),
    lost: ({ destination: name }, error) => {
      if (ctx.signal.aborted || lost.has(name)) return;
      lost.set(name, error);
      const others = destinations.length - lost.size;
      ctx.logger.error(
        `destination ${name} failed: ${describeError(error)}${others > 0 ? `; the run goes on with ${others} other(s)` : ""}`,
      );
    },
  });
  // A program's output goes straight into the next transform's program when both allow it, and so
  // on down the chain (tar → zstd → age): those bytes never pass through Node (decision 007).
  const programs: Promise<unknown>[] = artifact.completion ? [artifact.completion] : [];
  let output = artifact.stream;
  let chained = 0;
  while (artifact.completion && chained < transforms.length && transforms[chained]!.encodeFrom) {
    const next = transforms[chained]!.encodeFrom!(output, ctx);
    output = next.stdout;
    programs.push(next.completion);
    chained++;
  }
  const direct = chained > 0;
  const completion = programs.length ? Promise.all(programs) : undefined;
  const head: Readable = completion ? untilComplete(output, completion) : output;
  // Counts the source's bytes; when programs are chained, their output (for progress only).
  const counter = new ByteCounter();
  const started = Date.now();
  const timer =
    onProgress &&
    setInterval(() => safely(ctx, () => onProgress(counter.bytes, (Date.now() - started) / 1000)), 500);
  try {
    // Every stage works per write: 1 MiB blocks between stages keep that cost (and the number of
    // file-system writes) small, where tools and pipes deliver 4–64 KiB pieces.
    const encoders = transforms.slice(chained).flatMap((t) => [t.encode(ctx), new Coalesce()]);
    // Blocks help Node's own encoders; a program reading a pipe, or the sink behind a chain of
    // programs, gains nothing from them and would only pay for the copy (measured: 0.4 s per 150 MB).
    const gather = chained === 0 && transforms[0]?.encodeFrom === undefined;
    const stages = [head, ...(gather ? [new Coalesce()] : []), counter, ...encoders, sink];
    const flow = pipeline(stages as unknown as [Readable, ...Duplex[], Writable], { signal: ctx.signal });
    // Every program's exit status decides, even when its reader saw a clean end of input.
    const producers = (completion ?? Promise.resolve()).catch((error: unknown) => {
      head.destroy(error as Error);
      throw error;
    });
    await Promise.all([flow, producers]);
  } catch (error) {
    // Let every started upload finish failing (and remove its temporary object) before cleanup.
    await sink.settled();
    throw error instanceof CairnError
      ? error
      : new SourceError(`source ${sourceName}: ${describeError(error)}`, { cause: error });
  } finally {
    if (timer) clearInterval(timer);
  }
  const rawSize = direct ? artifact.rawSize?.() : counter.bytes;
  if (rawSize === undefined)
    throw new SourceError(`source ${sourceName} did not report how much it produced`, {
      hint: "a bug in the source",
    });
  if (rawSize === 0 && !artifact.allowEmpty)
    throw new SourceError(`source ${sourceName} produced no data`, {
      hint: "an empty dump is treated as a failure",
    });
  return {
    source: sourceName,
    type: sourceType,
    name: artifact.name,
    meta: artifact.meta,
    rawSize,
    transforms: transforms.map((t) => t.record),
    objects: sink.objects,
    restoreWithoutCairn: "",
  };
}

/** A program's stdout as a stream that ends only once the program is known to have succeeded. */
export function untilComplete(stdout: Readable, completion: Promise<unknown>): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  stdout.pipe(out, { end: false });
  stdout.on("end", () =>
    completion.then(
      () => out.end(),
      (error: Error) => out.destroy(error),
    ),
  );
  completion.catch((error: Error) => out.destroy(error));
  out.on("close", () => stdout.destroy());
  return out;
}

/**
 * Best effort: removes from the snapshot folders every object that is not one of `kept`'s —
 * what a failed source left (kept: the good artifacts), or a whole failed run (kept: none).
 * A manifest, if any, goes first: a half-removed snapshot must never look good.
 */
export async function removeObjects(
  destinations: Destination[],
  folders: Record<string, string>,
  kept: ArtifactRecord[],
  ctx: PluginContext,
): Promise<void> {
  for (const d of destinations) {
    const folder = folders[d.name];
    if (!folder) continue;
    const keep = new Set(kept.flatMap((a) => a.objects.map((o) => `${folder}/${o.key}`)));
    try {
      const keys: string[] = [];
      for await (const object of d.storage.list(`${folder}/`, ctx))
        if (!keep.has(object.key)) keys.push(object.key);
      keys.sort((x, y) => Number(y.endsWith(`/${MANIFEST_NAME}`)) - Number(x.endsWith(`/${MANIFEST_NAME}`)));
      for (const key of keys) await d.storage.delete(key, ctx);
    } catch (error) {
      ctx.logger.warn("could not remove the objects of a failed backup", {
        destination: d.name,
        error: describeError(error),
      });
    }
  }
}
