import type { Command } from "commander";
import { formatSize } from "../../kit/size.ts";
import { type CliContext, examples, printJson } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  program
    .command("show")
    .description("show one snapshot: its artifacts, objects, checksums and how to restore it without cairn")
    .argument("<snapshot>", "JOB, JOB@latest, JOB@ID or JOB@ID-PREFIX")
    .option("--destination <name>", "read from this destination")
    .option("--json", "print the manifest as JSON on stdout")
    .addHelpText("after", examples(["cairn show app", "cairn show app@2026-11-23T07-45-12Z-3f9a --json"]))
    .action(async (spec: string, flags: { json?: boolean; destination?: string }, command: Command) => {
      const [{ snapshotRequest }, { show }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../engine/restore.ts"),
      ]);
      const result = await show(await snapshotRequest(command, cli, spec, flags));
      if (flags.json) {
        printJson(result);
        return;
      }
      const m = result.manifest;
      const out = [
        `snapshot  ${m.job}@${m.id}`,
        `host      ${m.host}`,
        `time      ${m.startedAt} → ${m.finishedAt}`,
        `where     ${result.destinations.join(", ")}: ${result.folder}/`,
        `size      ${formatSize(result.rawBytes)} (${formatSize(result.storedBytes)} stored)`,
        ...(m.tags.length ? [`tags      ${m.tags.join(", ")}`] : []),
        "",
      ];
      for (const a of m.artifacts) {
        out.push(
          `${a.source} (${a.type}): ${a.name}, ${formatSize(a.rawSize)}, ${a.transforms.map((t) => t.type).join(" → ") || "stored as is"}`,
        );
        for (const o of a.objects) out.push(`  ${o.key}  ${o.size} bytes  sha256:${o.sha256}`);
        out.push(`  without cairn: ${a.restoreWithoutCairn}`);
      }
      process.stdout.write(`${out.join("\n")}\n`);
    });
}
