import type { Command } from "commander";
import { type CliContext, examples, printJson, selectionOf, table, withSelection } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  withSelection(program.command("prune"))
    .description(
      "remove the snapshots the retention policy no longer keeps (manifest first), and leftovers of runs that died",
    )
    .argument("[job]", "only this job")
    .option("--destination <name>", "only this destination of the job")
    .option("-n, --dry-run", "show what would be kept and removed, and why; remove nothing")
    .option("--json", "print JSON on stdout")
    .addHelpText(
      "after",
      examples([
        "cairn prune --dry-run",
        "cairn prune app",
        "cairn prune app --destination offsite --json",
        "cairn prune --only production --skip 'tape-*'",
      ]),
    )
    .action(
      async (
        job: string | undefined,
        flags: { destination?: string; dryRun?: boolean; json?: boolean; only?: string[]; skip?: string[] },
        command: Command,
      ) => {
        const [{ runtimeOf }, { prune }] = await Promise.all([
          import("../_runtime.ts"),
          import("../../retention/prune.ts"),
        ]);
        const runtime = await runtimeOf(command, cli);
        const result = await prune({
          config: runtime.config,
          logger: runtime.logger,
          signal: runtime.signal,
          ...(job ? { job } : {}),
          ...(flags.destination ? { destination: flags.destination } : {}),
          ...(flags.dryRun ? { dryRun: true } : {}),
          ...selectionOf(flags),
        });
        const failed = result.destinations.some(
          (d) => d.errors.length > 0 || (d.skipped !== undefined && !d.skipped.startsWith("no retention")),
        );
        process.exitCode = failed ? 1 : 0;
        if (flags.json) {
          printJson(result);
          return;
        }
        const verb = result.dryRun ? "would remove" : "removed";
        for (const d of result.destinations) {
          process.stdout.write(`${d.job} on ${d.destination}: `);
          if (d.skipped) {
            process.stdout.write(`${d.skipped}\n`);
            continue;
          }
          process.stdout.write(`keep ${d.keep.length}, ${verb} ${d.remove.length}\n`);
          const rows = [["SNAPSHOT", "TIME", "ACTION", "WHY"]];
          const all = [
            ...d.keep.map((x) => ({ ...x, action: "keep" })),
            ...d.remove.map((x) => ({ ...x, action: result.dryRun ? "remove (dry run)" : "remove" })),
          ].sort((a, b) => b.time.getTime() - a.time.getTime());
          for (const x of all)
            rows.push([x.id, x.time.toISOString().replace(/\.\d+Z$/, "Z"), x.action, x.reasons.join("; ")]);
          process.stdout.write(table(rows));
          for (const folder of d.leftovers)
            process.stdout.write(
              `${result.dryRun ? "would remove" : "removed"} leftovers of a run that died: ${folder}\n`,
            );
          for (const key of d.temporary)
            process.stdout.write(
              `${result.dryRun ? "would remove" : "removed"} the temporary object of an upload that never finished: ${key}\n`,
            );
          for (const e of d.errors) process.stdout.write(`could not remove ${e.id}: ${e.error}\n`);
        }
      },
    );
}
