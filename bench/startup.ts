/**
 * `npm run bench:startup`: how long cairn takes to answer, against Node's own floor (`node -e 0`),
 * for the npm package's code (entry/cairn.js) and the single executable (build/cairn, when built).
 * Median of BENCH_RUNS (default 11) runs each; a run that fails fails the bench.
 *
 *   cairn --version, cairn --help, cairn list (a local destination with one snapshot)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 11);
const work = mkdtempSync(join(tmpdir(), "cairn-startup-"));

function seconds(command: string[], cwd = work): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(command[0]!, command.slice(1), {
    cwd,
    env: { ...process.env, CAIRN_STATE_DIR: join(work, "state") },
    encoding: "utf8",
  });
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`failed (${r.status}): ${command.join(" ")}\n${r.stderr}`);
  return elapsed;
}

function median(command: string[]): number {
  seconds(command); // warm: the page cache and Node's compile cache
  const times = Array.from({ length: RUNS }, () => seconds(command)).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

try {
  mkdirSync(join(work, "data"));
  writeFileSync(join(work, "data/a.txt"), "x\n");
  writeFileSync(
    join(work, "cairn.yaml"),
    "jobs:\n  app:\n    sources: { f: { type: files, paths: [./data] } }\n    encryption: none\n    destinations: { d: { type: local, path: ./b } }\n",
  );
  const npm = [process.execPath, join(ROOT, "entry/cairn.js")];
  seconds([...npm, "backup", "-q"]);
  const exe = join(ROOT, "build/cairn");
  const variants: [string, string[]][] = [
    ["npm package code", npm],
    ...(existsSync(exe) ? ([["single executable", [exe]]] as [string, string[]][]) : []),
  ];
  process.stdout.write(
    `cairn start-up, ${cpus().length} cores, Node ${process.versions.node}, median of ${RUNS}\n`,
  );
  process.stdout.write(
    `node -e 0 (the floor): ${(median([process.execPath, "-e", "0"]) * 1000).toFixed(0)} ms\n`,
  );
  for (const [name, command] of variants)
    for (const args of [["--version"], ["--help"], ["list"]])
      process.stdout.write(
        `${name.padEnd(18)} cairn ${args.join(" ").padEnd(10)} ${(median([...command, ...args]) * 1000).toFixed(0)} ms\n`,
      );
  if (!existsSync(exe))
    process.stdout.write("(no build/cairn: npm run build:exe to measure the single executable)\n");
} finally {
  rmSync(work, { recursive: true, force: true });
}
