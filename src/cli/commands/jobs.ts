import type { Command } from "commander";
import { listJobs, setJobEnabled } from "../../core/jobs.ts";
import { type CliContext, examples, printJson, runtimeOf, table } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  program
    .command("jobs")
    .description("list the configured jobs: enabled or not, sources, destinations, last run")
    .option("--json", "print JSON on stdout")
    .addHelpText("after", examples(["cairn jobs", "cairn jobs --json"]))
    .action(async (flags: { json?: boolean }, command: Command) => {
      const runtime = runtimeOf(command, cli);
      const jobs = await listJobs(runtime.config);
      if (flags.json) return printJson(jobs);
      const rows = [["JOB", "ENABLED", "SOURCES", "DESTINATIONS", "LAST RUN"]];
      for (const j of jobs)
        rows.push([
          j.job,
          j.enabled ? "yes" : "no",
          j.sources.join(","),
          j.destinations.join(","),
          j.lastRun ? `${j.lastRun.status} ${j.lastRun.started_at}` : "never",
        ]);
      process.stdout.write(table(rows));
    });
  for (const [name, enabled] of [
    ["enable", true],
    ["disable", false],
  ] as const) {
    program
      .command(name)
      .description(
        enabled
          ? "let a bare `cairn backup` run this job again"
          : "leave this job out of a bare `cairn backup` (naming it still runs it)",
      )
      .argument("<job>", "job name")
      .addHelpText("after", examples([`cairn ${name} app`, "cairn jobs"]))
      .action((job: string, _flags: object, command: Command) => {
        const runtime = runtimeOf(command, cli);
        setJobEnabled(runtime.config, job, enabled);
        process.stdout.write(`${job}: ${enabled ? "enabled" : "disabled"}\n`);
      });
  }
}
