/**
 * `--only` / `--skip`: globs (`*`, `?`, `[…]`) on job names, job tags, destination names,
 * destination tags and `JOB/DESTINATION`. A pattern that names a job (or one of its tags) takes
 * or leaves the whole job; one that names a destination takes or leaves that destination of every
 * job that has it. A pattern that matches nothing is an error: a typo must not quietly select
 * nothing, or everything.
 */
import type { Config } from "../config/load.ts";
import { UsageError } from "../kit/errors.ts";
import { planOf } from "./plan.ts";

export interface Selection {
  /** Run only what these globs match. */
  only?: string[];
  /** Leave out what these globs match. */
  skip?: string[];
}

/** Per selected job: the destinations it runs with. */
export type Selected = Map<string, Set<string>>;

/** What a run takes from its candidate jobs: all of them, with all their destinations, when no pattern is given. */
export interface Chosen {
  jobs: string[];
  /** Candidates the patterns left out. */
  left: string[];
  /** The destinations a chosen job runs with; undefined: all of them. */
  destinations: (job: string) => Set<string> | undefined;
}

export function choose(config: Config, candidates: string[], selection: Selection): Chosen {
  if (!selection.only?.length && !selection.skip?.length)
    return { jobs: candidates, left: [], destinations: () => undefined };
  const selected = select(config, candidates, selection);
  return {
    jobs: candidates.filter((job) => selected.has(job)),
    left: candidates.filter((job) => !selected.has(job)),
    destinations: (job) => selected.get(job),
  };
}

export function glob(pattern: string): (text: string) => boolean {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === "*") source += ".*";
    else if (c === "?") source += ".";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) source += "\\[";
      else {
        const body = pattern
          .slice(i + 1, end)
          .replace(/^!/, "^")
          .replace(/\\/g, "\\\\");
        source += `[${body}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\/\]]/g, "\\$&");
  }
  const regex = new RegExp(`^${source}$`);
  return (text) => regex.test(text);
}

/** The jobs among `candidates` that the selection keeps, each with the destinations it keeps. */
export function select(config: Config, candidates: string[], selection: Selection): Selected {
  const only = (selection.only ?? []).map((p) => ({ pattern: p, test: glob(p), used: false }));
  const skip = (selection.skip ?? []).map((p) => ({ pattern: p, test: glob(p), used: false }));
  const selected: Selected = new Map();
  type Pattern = (typeof only)[number];
  /** Every pattern of `patterns` that matches one of `names` (each marked as used). */
  const hits = (patterns: Pattern[], names: string[]) =>
    patterns.filter((p) => {
      const hit = names.some(p.test);
      if (hit) p.used = true;
      return hit;
    });
  for (const job of candidates) {
    const settings = config.jobs[job];
    if (!settings) continue;
    const jobNames = [job, ...settings.tags];
    const destinations = planOf(config, job).destinations.map(({ name, common }) => ({
      name,
      names: [name, `${job}/${name}`, ...common.tags],
    }));
    const wholeJob = hits(only, jobNames).length > 0 || only.length === 0;
    const skipped = hits(skip, jobNames).length > 0;
    const kept = destinations.filter((d) => {
      const taken = hits(only, d.names).length > 0 || wholeJob;
      const left = hits(skip, d.names).length > 0;
      return taken && !left;
    });
    if (!skipped && kept.length) selected.set(job, new Set(kept.map((d) => d.name)));
  }
  const unused = [...only, ...skip].filter((p) => !p.used);
  if (unused.length)
    throw new UsageError(
      `${unused.map((p) => `"${p.pattern}"`).join(", ")} matches no job, tag or destination`,
      {
        hint: "patterns are globs on job names, job tags, destination names, destination tags and JOB/DESTINATION",
      },
    );
  return selected;
}
