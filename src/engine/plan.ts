/**
 * A job resolved once from the config: its sources, transforms and destinations (each
 * destination's common options split from its own, its retention and frequency with the job's as
 * fallback), typed. Every action reads the plan instead of re-reading the config; it is made once
 * per config and job (the config never changes after it is loaded).
 */
import type { Config } from "../config/load.ts";
import {
  type DestinationCommon,
  type JobConfig,
  type PluginOptions,
  splitDestinationOptions,
} from "../config/schema.ts";
import type { Source, Transform } from "../kit/contracts.ts";
import { ConfigError, UsageError } from "../kit/errors.ts";
import type { RetentionSettings } from "../retention/schema.ts";

export interface SourcePlan {
  name: string;
  options: PluginOptions;
}

export interface DestinationPlan {
  name: string;
  /** The storage's own options (its schema's), without the common ones. */
  own: PluginOptions;
  common: DestinationCommon;
  /** The destination's own retention, else the job's; none means keep everything. */
  retention?: RetentionSettings;
  /** The destination's own frequency, else the job's; none means every run. */
  frequency?: string;
}

export interface JobPlan {
  job: string;
  settings: JobConfig;
  sources: SourcePlan[];
  /** Compression, then encryption when there is one. */
  transforms: PluginOptions[];
  destinations: DestinationPlan[];
}

const plans = new WeakMap<Config, Map<string, JobPlan>>();

/** The plan of `job`; a UsageError listing the jobs when there is none of that name. */
export function planOf(config: Config, job: string): JobPlan {
  const byJob = plans.get(config) ?? new Map<string, JobPlan>();
  plans.set(config, byJob);
  const known = byJob.get(job);
  if (known) return known;
  const settings = config.jobs[job];
  if (!settings) {
    const names = Object.keys(config.jobs);
    throw new UsageError(`no job named "${job}" in the configuration`, {
      hint: names.length ? `configured jobs: ${names.join(", ")}` : "the configuration has no jobs",
    });
  }
  const plan: JobPlan = {
    job,
    settings,
    sources: Object.entries(settings.sources).map(([name, options]) => ({ name, options })),
    transforms: [settings.compression, settings.encryption].filter((t) => t !== undefined),
    destinations: Object.entries(settings.destinations).map(([name, options]) => {
      const { common, own } = splitDestinationOptions(options);
      const retention = common.retention ?? settings.retention;
      const frequency = common.frequency ?? settings.frequency;
      return { name, own, common, ...(retention ? { retention } : {}), ...(frequency ? { frequency } : {}) };
    }),
  };
  byJob.set(job, plan);
  return plan;
}

/** The job's destinations that `only` (one name) and `include` (a selection) keep. */
export function plannedDestinations(
  plan: JobPlan,
  { only, include }: { only?: string | undefined; include?: Set<string> | undefined } = {},
): DestinationPlan[] {
  const kept = plan.destinations.filter(
    (d) => (!only || d.name === only) && (!include || include.has(d.name)),
  );
  if (only && kept.length === 0)
    throw new UsageError(`job "${plan.job}" has no destination named "${only}"`, {
      hint: `destinations: ${plan.destinations.map((d) => d.name).join(", ")}`,
    });
  return kept;
}

export function createSource(config: Config, { name, options }: SourcePlan): Source {
  const definition = config.registry.sources.get(options.type);
  if (!definition)
    throw new ConfigError([{ path: `sources.${name}.type`, message: `unknown source type ${options.type}` }]);
  return definition.create(options, { name, baseDir: config.baseDir });
}

export function createTransforms(config: Config, plan: JobPlan): Transform[] {
  const env = { name: plan.job, baseDir: config.baseDir };
  return plan.transforms.map((options) => config.registry.transforms.get(options.type)!.create(options, env));
}
