import type { Command } from "commander";
import { formatSize } from "../../kit/size.ts";
import { type CliContext, examples, printJson, table } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  const catalog = program
    .command("catalog")
    .description("the local catalog of runs and snapshots (a cache: the destinations are the truth)")
    .addHelpText("after", examples(["cairn catalog rebuild", "cairn catalog runs app --json"]));
  catalog
    .command("rebuild")
    .description("recreate the catalog's snapshots from the manifests on every destination")
    .argument("[job]", "only this job")
    .addHelpText("after", examples(["cairn catalog rebuild", "cairn catalog rebuild app"]))
    .action(async (job: string | undefined, _flags: object, command: Command) => {
      const [{ runtimeOf }, { rebuildCatalog }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../engine/list.ts"),
      ]);
      const runtime = await runtimeOf(command, cli);
      const results = await rebuildCatalog({
        config: runtime.config,
        logger: runtime.logger,
        signal: runtime.signal,
        ...(job ? { job } : {}),
      });
      for (const r of results) {
        for (const bad of r.unreadable)
          runtime.logger.warn("unreadable manifest skipped", { key: bad.key, error: bad.error });
        process.stdout.write(`${r.job}: ${r.snapshots} snapshot(s) recorded\n`);
      }
    });
  catalog
    .command("runs")
    .description("history of backup runs on this machine, failures included")
    .argument("[job]", "only this job")
    .option("-n, --limit <n>", "how many", "20")
    .option("--json", "print JSON on stdout")
    .addHelpText("after", examples(["cairn catalog runs", "cairn catalog runs app -n 5 --json"]))
    .action(async (job: string | undefined, flags: { limit: string; json?: boolean }, command: Command) => {
      const [{ runtimeOf }, { Catalog }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../catalog/catalog.ts"),
      ]);
      const runtime = await runtimeOf(command, cli);
      const db = await Catalog.open(runtime.config.stateDir);
      try {
        const runs = db.runs(job, Number(flags.limit) || 20);
        if (flags.json) return printJson(runs);
        const rows = [["JOB", "SNAPSHOT", "STARTED", "STATUS", "SIZE", "ERROR"]];
        for (const r of runs)
          rows.push([
            r.job,
            r.snapshot,
            r.started_at,
            r.status,
            r.raw_bytes === null ? "" : formatSize(r.raw_bytes),
            r.error ?? "",
          ]);
        process.stdout.write(runs.length ? table(rows) : "no runs recorded\n");
      } finally {
        db.close();
      }
    });
}
