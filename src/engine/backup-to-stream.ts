/**
 * A backup written to a stream instead of destinations (`cairn backup … --stdout | …`): one
 * artifact, compressed and encrypted as the job says, no manifest. A failed source makes the
 * promise reject (exit 1) — the reader of a pipe must check that exit status (`set -o pipefail`).
 */
import type { Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { UsageError } from "../kit/errors.ts";
import { ByteCounter } from "../kit/streams.ts";
import { type RunOptions, withContext } from "./context.ts";
import { createSource, createTransforms, planOf } from "./plan.ts";
import { untilComplete } from "./store.ts";
import { TrailerWriter } from "./trailer.ts";

export interface StreamBackupOptions extends RunOptions {
  job: string;
  output: Writable;
  /** End the output with a trailer `cairn upload - --trailer` checks (engine/trailer.ts). */
  trailer?: boolean;
}

export interface StreamBackupResult {
  artifact: string;
  rawBytes: number;
}

export async function backupToStream(options: StreamBackupOptions): Promise<StreamBackupResult> {
  const plan = planOf(options.config, options.job);
  if (plan.sources.length !== 1)
    throw new UsageError(
      `a backup to a stream takes one source; job ${options.job} has ${plan.sources.length}`,
    );
  const sourcePlan = plan.sources[0]!;
  const name = sourcePlan.name;
  const transforms = createTransforms(options.config, plan);
  return withContext(
    options,
    async (ctx) => {
      const source = createSource(options.config, sourcePlan);
      let result: StreamBackupResult | undefined;
      for await (const artifact of source.backup(ctx)) {
        if (result) {
          artifact.stream.destroy();
          throw new UsageError(`source ${name} produces several artifacts; a stream holds one`, {
            hint: "name one database, or back up to a folder with --to",
          });
        }
        const head = artifact.completion
          ? untilComplete(artifact.stream, artifact.completion)
          : artifact.stream;
        const counter = new ByteCounter();
        const stages = [head, counter, ...transforms.map((t) => t.encode(ctx))];
        if (options.trailer) stages.push(new TrailerWriter());
        await pipeline([...stages, options.output], {
          signal: ctx.signal,
        });
        result = {
          artifact: artifact.name + transforms.map((t) => t.extension).join(""),
          rawBytes: counter.bytes,
        };
        ctx.logger.info("written to the stream", { artifact: result.artifact, bytes: counter.bytes });
      }
      if (!result) throw new UsageError(`source ${name} produced nothing`);
      return result;
    },
    { job: options.job },
  );
}
