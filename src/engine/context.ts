import { rm } from "node:fs/promises";
import type { Config } from "../config/load.ts";
import type { DestinationCommon } from "../config/schema.ts";
import type { Logger, PluginContext, Storage } from "../kit/contracts.ts";
import { ConfigError } from "../kit/errors.ts";
import { silentLogger } from "../kit/logger.ts";
import type { RetentionSettings } from "../retention/schema.ts";
import { type WrapperOptions, wrapStorage } from "../wrappers/index.ts";
import { type JobPlan, plannedDestinations, planOf } from "./plan.ts";
import { makeWorkDir, removeDeadWorkDirs } from "./workdir.ts";

/** What every library entry point accepts besides its own options. */
export interface RunOptions {
  config: Config;
  logger?: Logger;
  signal?: AbortSignal;
}

/** Runs `fn` with a private (0700) work folder that is removed afterwards, whatever happens. */
export async function withContext<T>(
  options: Pick<RunOptions, "logger" | "signal">,
  fn: (ctx: PluginContext) => Promise<T>,
  fields = {},
): Promise<T> {
  const logger = (options.logger ?? silentLogger).child(fields);
  for (const dir of removeDeadWorkDirs()) logger.info(`removed the work folder of a run that died: ${dir}`);
  const workDir = await makeWorkDir();
  try {
    return await fn({
      signal: options.signal ?? new AbortController().signal,
      logger,
      workDir,
    });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}

export interface Destination {
  name: string;
  storage: Storage;
  template: string;
  /** The destination's own retention, else the job's; none means keep everything. */
  retention?: RetentionSettings;
  /** The destination's own frequency, else the job's; none means every run. */
  frequency?: string;
  /** How stored objects are confirmed before the manifest: size, or read back and hashed. */
  uploadCheck?: "size" | "read";
}

/** Opens the job's destinations (those `only` and `include` keep), each wrapped as its options say. */
export function openDestinations(
  config: Config,
  job: string,
  only?: string,
  { dryRun = false, include }: { dryRun?: boolean; include?: Set<string> | undefined } = {},
): Promise<Destination[]> {
  return openPlanned(config, planOf(config, job), { only, include, dryRun });
}

/** The same, from the job's plan. */
export function openPlanned(
  config: Config,
  plan: JobPlan,
  {
    only,
    include,
    dryRun = false,
  }: { only?: string | undefined; include?: Set<string> | undefined; dryRun?: boolean } = {},
): Promise<Destination[]> {
  return Promise.all(
    plannedDestinations(plan, { only, include }).map(async (d) => {
      const definition = config.registry.storages.get(d.own.type);
      if (!definition)
        throw new ConfigError([
          { path: `jobs.${plan.job}.destinations.${d.name}.type`, message: "unknown type" },
        ]);
      const storage = await definition.create(d.own, { name: d.name, baseDir: config.baseDir });
      return {
        name: d.name,
        template: d.common.template,
        uploadCheck: d.common.upload_check,
        ...(d.retention ? { retention: d.retention } : {}),
        ...(d.frequency ? { frequency: d.frequency } : {}),
        storage: wrapStorage(storage, wrapperOptions(d.common, dryRun)),
      };
    }),
  );
}

export function wrapperOptions(common: DestinationCommon, dryRun: boolean): WrapperOptions {
  return {
    retries: common.retries,
    timeoutMs: common.timeout,
    concurrency: common.concurrency,
    bandwidth: common.bandwidth_limit,
    dryRun,
  };
}

export async function closeDestinations(destinations: Destination[]): Promise<void> {
  await Promise.allSettled(destinations.map((d) => d.storage.close?.()));
}
