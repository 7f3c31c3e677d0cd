import { resolve } from "node:path";
import type { Command } from "commander";
import { type CliContext, examples, globalsOf } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  program
    .command("daemon")
    .description(
      "run every job that has a `schedule` on time, until stopped: never two runs of a job at once, a missed run caught up at start, SIGHUP reloads the config, SIGTERM stops cleanly",
    )
    .addHelpText(
      "after",
      examples([
        "cairn daemon",
        "cairn -c /etc/cairn/cairn.yaml --log-format json daemon",
        "kill -HUP $(pidof cairn)    # reload the config",
      ]),
    )
    .action(async (_flags: unknown, command: Command) => {
      const [{ runtimeOf, configOf }, { runDaemon }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../schedule/daemon.ts"),
      ]);
      const runtime = await runtimeOf(command, cli);
      const globals = globalsOf(command);
      // A reload reads the file the daemon started with, wherever it was found.
      const reload = { ...globals, config: runtime.config.file ?? globals.config, configStdin: false };
      // Each job runs as `cairn backup JOB` with the daemon's config file and log options.
      const logOptions = [
        "--log-format",
        globals.logFormat,
        ...(globals.verbose ? ["--verbose"] : []),
        ...(globals.quiet ? ["--quiet"] : []),
        ...(globals.logFile ? ["--log-file", resolve(globals.logFile)] : []),
        ...(globals.syslog ? ["--syslog"] : []),
      ];
      await runDaemon({
        load: () => configOf(reload, cli),
        logger: runtime.logger.child({ component: "daemon" }),
        signal: runtime.signal,
        globalArgs: logOptions,
      });
    });
}
