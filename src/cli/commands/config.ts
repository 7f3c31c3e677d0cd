import type { Command } from "commander";
import { type CliContext, examples, printJson } from "../_shared.ts";
import { register as registerInit } from "./init.ts";

export function register(program: Command, cli: CliContext): void {
  const config = program
    .command("config")
    .description("check or show the configuration")
    .addHelpText("after", examples(["cairn config check", "cairn config show -c /etc/cairn.yaml"]));
  config
    .command("check")
    .description("validate the configuration and report every problem with its file, line and key")
    .option("--json", "print the result as JSON (problems, too, as one JSON error on stderr)")
    .addHelpText(
      "after",
      examples(["cairn config check", "CAIRN_CONFIG=/etc/cairn.yaml cairn config check --json"]),
    )
    .action(async (flags: { json?: boolean }, command: Command) => {
      const { runtimeOf } = await import("../_runtime.ts");
      const runtime = await runtimeOf(command, cli);
      const jobs = Object.keys(runtime.config.jobs);
      if (flags.json) {
        printJson({ file: runtime.config.file, ok: true, jobs, warnings: runtime.config.warnings ?? [] });
        return;
      }
      process.stdout.write(`${runtime.config.file}: ok, ${jobs.length} job(s): ${jobs.join(", ")}\n`);
    });
  registerInit(program, config, "generate");
  config
    .command("show")
    .description(
      "print the configuration as cairn understands it, with defaults filled in and secrets redacted",
    )
    .option("--json", "print JSON instead of YAML")
    .addHelpText("after", examples(["cairn config show", "cairn config show --json | jq .jobs"]))
    .action(async (flags: { json?: boolean }, command: Command) => {
      const [{ runtimeOf }, { redactedConfig }, { stringify }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../config/load.ts"),
        import("yaml"),
      ]);
      const runtime = await runtimeOf(command, cli);
      const shown = redactedConfig(runtime.config);
      if (flags.json) printJson(shown);
      else process.stdout.write(stringify(shown));
    });
}
