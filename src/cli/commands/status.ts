import type { Command } from "commander";
import { formatDuration, parseDuration } from "../../kit/duration.ts";
import { UsageError } from "../../kit/errors.ts";
import { type CliContext, examples, printJson, selectionOf, table, withSelection } from "../_shared.ts";

const NAGIOS = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;

function age(option: string | undefined, flag: string): number | undefined {
  if (option === undefined) return undefined;
  const ms = parseDuration(option);
  if (ms === undefined) throw new UsageError(`${flag}: not a duration: ${option} (e.g. 26h, 3d)`);
  return ms;
}

export function register(program: Command, cli: CliContext): void {
  withSelection(program.command("status"))
    .description(
      "for every job and destination: the newest good snapshot, and whether it is older than the frequency allows (dead-man check)",
    )
    .argument("[job]", "only this job")
    .option("--json", "print JSON on stdout")
    .option("--nrpe", "print one Nagios/NRPE line; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN")
    .option("--warning <age>", "with --nrpe: WARNING when the newest good snapshot is older, e.g. 26h")
    .option(
      "--critical <age>",
      "with --nrpe: CRITICAL when older, e.g. 50h (default: overdue by the frequency)",
    )
    .addHelpText(
      "after",
      examples([
        "cairn status",
        "cairn status --nrpe --warning 26h --critical 50h",
        "cairn status db --json",
        "cairn status --nrpe --only offsite",
      ]),
    )
    .action(
      async (
        job: string | undefined,
        flags: {
          json?: boolean;
          nrpe?: boolean;
          warning?: string;
          critical?: string;
          only?: string[];
          skip?: string[];
        },
        command: Command,
      ) => {
        const [{ runtimeOf }, { status }] = await Promise.all([
          import("../_runtime.ts"),
          import("../../schedule/status.ts"),
        ]);
        const runtime = await runtimeOf(command, cli);
        const warning = age(flags.warning, "--warning");
        const critical = age(flags.critical, "--critical");
        const rows = await status({
          config: runtime.config,
          logger: runtime.logger,
          signal: runtime.signal,
          ...(job ? { job } : {}),
          ...selectionOf(flags),
        });
        if (flags.nrpe) {
          let level = 0;
          const problems: string[] = [];
          for (const row of rows) {
            const where = `${row.job} on ${row.destination}`;
            const old =
              row.ageMs === undefined ? "no good snapshot" : `newest good ${formatDuration(row.ageMs)} old`;
            let rowLevel = 0;
            if (row.error) rowLevel = 3;
            else if (row.ageMs === undefined) rowLevel = 2;
            else if (critical !== undefined ? row.ageMs > critical : row.overdue) rowLevel = 2;
            else if (warning !== undefined && row.ageMs > warning) rowLevel = 1;
            if (rowLevel > 0) problems.push(`${where}: ${row.error ? `cannot read: ${row.error}` : old}`);
            // UNKNOWN only when nothing worse is known.
            level = level === 2 || rowLevel === 2 ? 2 : Math.max(level, rowLevel);
          }
          const newest = rows
            .filter((r) => r.ageMs !== undefined)
            .map((r) => `${r.job}/${r.destination}=${Math.round((r.ageMs as number) / 1000)}s`);
          process.stdout.write(
            `CAIRN ${NAGIOS[level]} - ${problems.length ? problems.join("; ") : `${rows.length} destination(s) have a recent good snapshot`} | ${newest.join(" ")}\n`,
          );
          process.exitCode = level;
          return;
        }
        process.exitCode = rows.some((r) => r.overdue || r.error) ? 1 : 0;
        if (flags.json) {
          printJson({ destinations: rows });
          return;
        }
        const lines = [["JOB", "DESTINATION", "FREQUENCY", "NEWEST GOOD", "AGE", "STATUS"]];
        for (const r of rows)
          lines.push([
            r.job,
            r.destination,
            r.frequency ?? "-",
            r.newestGood?.replace(/\.\d+Z$/, "Z") ?? "none",
            r.ageMs === undefined ? "-" : formatDuration(r.ageMs),
            r.error ? `ERROR: ${r.error}` : r.overdue ? "OVERDUE" : "ok",
          ]);
        process.stdout.write(table(lines));
      },
    );
}
