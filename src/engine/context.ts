import { rm } from "node:fs/promises";
import type { Config } from "../config/load.ts";
import { type DestinationCommon, type PluginOptions, splitDestinationOptions } from "../config/schema.ts";
import type { Logger, PluginContext, Source, Storage } from "../kit/contracts.ts";
import { ConfigError, UsageError } from "../kit/errors.ts";
import { silentLogger } from "../kit/logger.ts";
import type { RetentionSettings } from "../retention/schema.ts";
import { type WrapperOptions, wrapStorage } from "../wrappers/index.ts";
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

export function jobConfig(config: Config, job: string) {
  const found = config.jobs[job];
  if (!found) {
    const known = Object.keys(config.jobs);
    throw new UsageError(`no job named "${job}" in the configuration`, {
      hint: known.length ? `configured jobs: ${known.join(", ")}` : "the configuration has no jobs",
    });
  }
  return found;
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

export async function openDestinations(
  config: Config,
  job: string,
  only?: string,
  { dryRun = false, include }: { dryRun?: boolean; include?: Set<string> | undefined } = {},
): Promise<Destination[]> {
  const entries = Object.entries(jobConfig(config, job).destinations).filter(
    ([name]) => (!only || name === only) && (!include || include.has(name)),
  );
  if (only && entries.length === 0)
    throw new UsageError(`job "${job}" has no destination named "${only}"`, {
      hint: `destinations: ${Object.keys(jobConfig(config, job).destinations).join(", ")}`,
    });
  return Promise.all(
    entries.map(async ([name, options]) => {
      const definition = config.registry.storages.get(options.type);
      if (!definition)
        throw new ConfigError([{ path: `jobs.${job}.destinations.${name}.type`, message: "unknown type" }]);
      const { common, own } = splitDestinationOptions(options);
      const storage = await definition.create(own, { name, baseDir: config.baseDir });
      const retention = common.retention ?? jobConfig(config, job).retention;
      const frequency = common.frequency ?? jobConfig(config, job).frequency;
      return {
        name,
        template: common.template,
        uploadCheck: common.upload_check,
        ...(retention ? { retention } : {}),
        ...(frequency ? { frequency } : {}),
        storage: wrapStorage(storage, wrapperOptions(common, dryRun)),
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

export function createSource(config: Config, name: string, options: PluginOptions): Source {
  const definition = config.registry.sources.get(options.type);
  if (!definition)
    throw new ConfigError([{ path: `sources.${name}.type`, message: `unknown source type ${options.type}` }]);
  return definition.create(options, { name, baseDir: config.baseDir });
}
