/**
 * Enabled and disabled jobs (batt's sites-enabled idea): a bare `cairn backup` runs only enabled
 * jobs. The switch lives in the state folder, not the config, so configs managed by Ansible &c.
 * stay untouched; a job named on the command line runs even when disabled.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Catalog, type RunRow } from "../catalog/catalog.ts";
import type { Config } from "../config/load.ts";
import { planOf } from "./plan.ts";
import { replaceFile } from "./replace-file.ts";

const FILE = "disabled-jobs.json";

export function disabledJobs(config: Config): Set<string> {
  try {
    const data = JSON.parse(readFileSync(join(config.stateDir, FILE), "utf8")) as { disabled?: unknown };
    return new Set(
      Array.isArray(data.disabled) ? data.disabled.filter((j): j is string => typeof j === "string") : [],
    );
  } catch {
    return new Set();
  }
}

export function setJobEnabled(config: Config, job: string, enabled: boolean): void {
  planOf(config, job);
  const disabled = disabledJobs(config);
  if (enabled) disabled.delete(job);
  else disabled.add(job);
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const path = join(config.stateDir, FILE);
  replaceFile(path, `${JSON.stringify({ disabled: [...disabled].sort() }, null, 2)}\n`, 0o600);
}

export interface JobInfo {
  job: string;
  enabled: boolean;
  sources: string[];
  destinations: string[];
  tags: string[];
  lastRun?: Pick<RunRow, "snapshot" | "status" | "started_at" | "error">;
}

export async function listJobs(config: Config): Promise<JobInfo[]> {
  const disabled = disabledJobs(config);
  const catalog = await Catalog.open(config.stateDir);
  try {
    return Object.entries(config.jobs).map(([job, settings]) => {
      const last = catalog.runs(job, 1)[0];
      return {
        job,
        enabled: !disabled.has(job),
        sources: Object.keys(settings.sources),
        destinations: Object.keys(settings.destinations),
        tags: settings.tags,
        ...(last
          ? {
              lastRun: {
                snapshot: last.snapshot,
                status: last.status,
                started_at: last.started_at,
                error: last.error,
              },
            }
          : {}),
      };
    });
  } finally {
    catalog.close();
  }
}
