import { resolve } from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../../config/load.ts";
import { runDaemon } from "../../schedule/daemon.ts";
import { type CliContext, examples, globalsOf, runtimeOf } from "../_shared.ts";

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
      const runtime = runtimeOf(command, cli);
      const globals = globalsOf(command);
      const file = runtime.config.file;
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
        load: () => {
          const config = loadConfig(file ? { file } : {});
          for (const secret of config.secrets) cli.secrets.add(secret);
          return config;
        },
        logger: runtime.logger.child({ component: "daemon" }),
        signal: runtime.signal,
        globalArgs: logOptions,
      });
    });
}
