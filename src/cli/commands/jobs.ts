import type { Command } from "commander";
import { type CliContext, examples, printJson, table } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  program
    .command("jobs")
    .description("list the configured jobs: enabled or not, sources, destinations, last run")
    .option("--json", "print JSON on stdout")
    .addHelpText("after", examples(["cairn jobs", "cairn jobs --json"]))
    .action(async (flags: { json?: boolean }, command: Command) => {
      const [{ runtimeOf }, { listJobs }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../engine/jobs.ts"),
      ]);
      const runtime = await runtimeOf(command, cli);
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
          ? "let a bare `cairn backup` run these jobs again"
          : "leave these jobs out of a bare `cairn backup` (naming one still runs it)",
      )
      .argument("<jobs...>", "job names")
      .addHelpText("after", examples([`cairn ${name} app`, `cairn ${name} app billing`, "cairn jobs"]))
      .action(async (jobs: string[], _flags: object, command: Command) => {
        const [{ runtimeOf }, { planOf }, { setJobEnabled }] = await Promise.all([
          import("../_runtime.ts"),
          import("../../engine/plan.ts"),
          import("../../engine/jobs.ts"),
        ]);
        const runtime = await runtimeOf(command, cli);
        // Every name is checked before any job changes.
        for (const job of jobs) planOf(runtime.config, job);
        for (const job of jobs) {
          setJobEnabled(runtime.config, job, enabled);
          process.stdout.write(`${job}: ${enabled ? "enabled" : "disabled"}\n`);
        }
      });
  }
}
