import type { Command } from "commander";
import { formatSize } from "../../kit/size.ts";
import { type CliContext, examples, printJson, table } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  program
    .command("list")
    .alias("ls")
    .description("list the good snapshots on the destinations (read from the manifests they hold)")
    .argument("[job]", "only this job")
    .option("--json", "print JSON on stdout")
    .addHelpText("after", examples(["cairn list", "cairn list app --json"]))
    .action(async (job: string | undefined, flags: { json?: boolean }, command: Command) => {
      const [{ runtimeOf }, { list }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../engine/list.ts"),
      ]);
      const runtime = await runtimeOf(command, cli);
      const result = await list({
        config: runtime.config,
        logger: runtime.logger,
        signal: runtime.signal,
        ...(job ? { job } : {}),
      });
      for (const bad of result.unreadable)
        runtime.logger.warn("unreadable manifest: that snapshot is not usable", {
          destination: bad.destination,
          key: bad.key,
          error: bad.error,
        });
      if (flags.json) {
        printJson(result);
        return;
      }
      if (result.snapshots.length === 0) {
        process.stdout.write("no snapshots\n");
        return;
      }
      const rows = [["SNAPSHOT", "TIME", "SIZE", "STORED", "SOURCES", "DESTINATIONS", "STATUS"]];
      for (const s of result.snapshots)
        rows.push([
          `${s.job}@${s.id}`,
          s.startedAt.replace("T", " ").replace(/\.\d+Z$/, "Z"),
          formatSize(s.rawBytes),
          formatSize(s.storedBytes),
          [...new Set(s.artifacts.map((a) => a.source))].join(","),
          s.destinations.join(","),
          s.status === "partial" ? `partial (failed: ${s.failures.map((f) => f.source).join(",")})` : "ok",
        ]);
      process.stdout.write(table(rows));
    });
}
