import type { Command } from "commander";
import type { Config } from "../../config/load.ts";
import type { Check } from "../../engine/doctor.ts";
import { EXIT } from "../../kit/errors.ts";
import { type CliContext, examples, globalsOf, printJson, table } from "../_shared.ts";

const MARK: Record<Check["status"], string> = { ok: "ok", warn: "WARN", fail: "FAIL", skip: "-" };

export function register(program: Command, cli: CliContext): void {
  program
    .command("doctor")
    .description(
      "check everything a backup needs without backing up: tools, config, sources, destinations (a probe object), keys",
    )
    .option("--json", "print the checks as JSON")
    .addHelpText(
      "after",
      examples([
        "cairn doctor",
        "cairn -c /etc/cairn/cairn.yaml doctor",
        "cairn doctor --json | jq '.checks[] | select(.status == \"fail\")'",
      ]),
    )
    .action(async (flags: { json?: boolean }, command: Command) => {
      const [{ configOf, loggerFor }, { doctor }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../engine/doctor.ts"),
      ]);
      const globals = globalsOf(command);
      let config: Config | Error;
      try {
        config = await configOf(globals, cli);
      } catch (error) {
        config = error as Error;
      }
      const checks = await doctor({ config, logger: loggerFor(globals), signal: cli.signal });
      const failed = checks.filter((c) => c.status === "fail").length;
      if (flags.json) printJson({ ok: failed === 0, checks });
      else {
        const rows = checks.flatMap((c) => [
          [MARK[c.status], c.section, c.name, c.detail],
          ...(c.fix && c.status !== "ok" ? [["", "", "", `→ ${c.fix}`]] : []),
        ]);
        process.stdout.write(table([["", "CHECK", "NAME", "DETAIL"], ...rows]));
        const warned = checks.filter((c) => c.status === "warn").length;
        process.stdout.write(
          `\n${failed === 0 ? "no problems" : `${failed} problem(s)`}${warned ? `, ${warned} warning(s)` : ""}\n`,
        );
      }
      process.exitCode = failed === 0 ? EXIT.ok : EXIT.failed;
    });
}
