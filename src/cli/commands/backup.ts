import type { Command } from "commander";
import { formatSize } from "../../config/size.ts";
import { backup, type Progress } from "../../core/backup.ts";
import { type CliContext, examples, printJson, runtimeOf } from "../_shared.ts";

function progressLine(): { update: (p: Progress) => void; clear: () => void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  let shown = false;
  return {
    update(p) {
      const rate = p.elapsed > 0 ? `${formatSize(p.bytes / p.elapsed)}/s` : "";
      process.stderr.write(`\r\x1b[K${p.job} ${p.source}: ${formatSize(p.bytes)} ${rate}`);
      shown = true;
    },
    clear() {
      if (shown) process.stderr.write("\r\x1b[K");
      shown = false;
    },
  };
}

export function register(program: Command, cli: CliContext): void {
  program
    .command("backup")
    .description("back up the named jobs (all configured jobs when none is named)")
    .argument("[jobs...]", "jobs to run")
    .option("--json", "print the report as JSON on stdout")
    .addHelpText(
      "after",
      examples([
        "cairn backup                 # every job in ./cairn.yaml",
        "cairn backup app -c /etc/cairn.yaml",
        "cairn backup app --json | jq .jobs[0].snapshot",
      ]),
    )
    .action(async (jobs: string[], flags: { json?: boolean }, command: Command) => {
      const runtime = runtimeOf(command, cli);
      const progress =
        runtime.globals.logFormat === "human" && !runtime.globals.quiet ? progressLine() : undefined;
      const report = await backup({
        config: runtime.config,
        jobs,
        logger: runtime.logger,
        signal: runtime.signal,
        ...(progress ? { onProgress: progress.update } : {}),
      });
      progress?.clear();
      if (flags.json) printJson(report);
      else
        for (const job of report.jobs) {
          const line = job.ok
            ? `${job.job}@${job.snapshot}: ok, ${formatSize(job.rawBytes)} read, ${formatSize(job.storedBytes)} stored in ${(job.durationMs / 1000).toFixed(1)} s`
            : `${job.job}: FAILED: ${job.error?.message}`;
          process.stdout.write(`${line}\n`);
        }
      process.exitCode = report.ok ? 0 : 1;
    });
}
