/**
 * A Prometheus textfile (node_exporter's textfile collector) after every backup run: per job the
 * last run's time, outcome, duration and sizes, and per job and destination the time of the last
 * success. The file holds every job: a run of one job keeps the others' samples (and a
 * destination's last success when this run did not reach it). Written to a temp file and renamed,
 * so the collector never reads half a file.
 */
import { closeSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import type { BackupReport } from "../engine/backup.ts";
import { replaceFile } from "../engine/replace-file.ts";

const METRICS = {
  cairn_backup_last_run_timestamp_seconds: "When the job's last backup run ended (Unix time).",
  cairn_backup_last_run_success: "1 if the job's last backup run succeeded (or was not due), 0 if it failed.",
  cairn_backup_last_run_duration_seconds: "How long the job's last backup run took.",
  cairn_backup_last_run_read_bytes: "Bytes the job's sources produced in its last run.",
  cairn_backup_last_run_stored_bytes: "Bytes stored per destination in the job's last run.",
  cairn_backup_last_success_timestamp_seconds:
    "When the newest snapshot of the job that this host stored on the destination finished (Unix time).",
} as const;

type Name = keyof typeof METRICS;
type Labels = Record<string, string>;

interface Sample {
  name: Name;
  labels: Labels;
  value: number;
}

const escapeLabel = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const unescapeLabel = (value: string) =>
  value.replace(/\\(n|\\|")/g, (_, c: string) => (c === "n" ? "\n" : c));

function key(sample: { name: string; labels: Labels }): string {
  return `${sample.name}{${Object.entries(sample.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",")}}`;
}

/** The samples of a file this module wrote (anything else in it is dropped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    const match = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!match || !((match[1] as string) in METRICS)) continue;
    const labels: Labels = {};
    for (const label of (match[2] as string).matchAll(/(\w+)="((?:\\.|[^"\\])*)"/g))
      labels[label[1] as string] = unescapeLabel(label[2] as string);
    samples.push({ name: match[1] as Name, labels, value: Number(match[3]) });
  }
  return samples;
}

/**
 * Runs `update` holding `PATH.lock` (two jobs of a daemon may finish at once): waits up to 10 s,
 * and takes over a lock older than a minute (its holder died between two lines).
 */
async function locked(path: string, update: () => void): Promise<void> {
  const lock = `${path}.lock`;
  for (let waited = 0; ; waited += 50) {
    try {
      closeSync(openSync(lock, "wx"));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 60_000 || waited > 10_000) rmSync(lock, { force: true });
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    update();
  } finally {
    rmSync(lock, { force: true });
  }
}

export function updateMetricsFile(path: string, report: BackupReport): Promise<void> {
  return locked(path, () => writeMetrics(path, report));
}

function writeMetrics(path: string, report: BackupReport): void {
  let previous: Sample[] = [];
  try {
    previous = parse(readFileSync(path, "utf8"));
  } catch {}
  const ran = new Set(report.jobs.map((j) => j.job));
  const samples = new Map<string, Sample>();
  const add = (name: Name, labels: Labels, value: number) =>
    samples.set(key({ name, labels }), { name, labels, value });
  // Jobs not in this run keep everything; jobs in it keep only their destinations' last success.
  for (const sample of previous)
    if (!ran.has(sample.labels.job ?? "") || sample.name === "cairn_backup_last_success_timestamp_seconds")
      samples.set(key(sample), sample);
  for (const job of report.jobs) {
    const labels = { job: job.job };
    const ended = Date.parse(job.finishedAt) / 1000;
    add("cairn_backup_last_run_timestamp_seconds", labels, ended);
    add("cairn_backup_last_run_success", labels, job.ok ? 1 : 0);
    add("cairn_backup_last_run_duration_seconds", labels, job.durationMs / 1000);
    add("cairn_backup_last_run_read_bytes", labels, job.rawBytes);
    for (const destination of Object.keys(job.destinations)) {
      const where = { job: job.job, destination };
      add("cairn_backup_last_run_stored_bytes", where, job.ok ? job.storedBytes : 0);
      if (job.ok && !job.skipped) add("cairn_backup_last_success_timestamp_seconds", where, ended);
    }
  }
  const lines: string[] = [];
  for (const [name, help] of Object.entries(METRICS)) {
    const family = [...samples.values()].filter((s) => s.name === name);
    if (!family.length) continue;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const sample of family.sort((a, b) => key(a).localeCompare(key(b))))
      lines.push(`${key(sample)} ${sample.value}`);
  }
  replaceFile(path, `${lines.join("\n")}\n`, 0o644);
}
