import { Command, CommanderError, Option } from "commander";
import { setCommandEcho } from "../kit/echo.ts";
import { describeSystemError } from "../kit/errno.ts";
import { CairnError, ConfigError, EXIT, exitCodeOf, SourceError, UsageError } from "../kit/errors.ts";
import { createRedactor } from "../kit/logger.ts";
import { VERSION } from "../kit/version.ts";
import { type CliContext, closeLogSinks, examples, logToSinks, runCommandEnds } from "./_shared.ts";
import { register as registerBackup } from "./commands/backup.ts";
import { register as registerCatalog } from "./commands/catalog.ts";
import { register as registerCompletion } from "./commands/completion.ts";
import { register as registerConfig } from "./commands/config.ts";
import { register as registerDaemon } from "./commands/daemon.ts";
import { register as registerDoctor } from "./commands/doctor.ts";
import { register as registerInit } from "./commands/init.ts";
import { register as registerJobs } from "./commands/jobs.ts";
import { register as registerKeygen } from "./commands/keygen.ts";
import { register as registerList } from "./commands/list.ts";
import { register as registerPlugins } from "./commands/plugins.ts";
import { register as registerPrune } from "./commands/prune.ts";
import { register as registerRestore } from "./commands/restore.ts";
import { register as registerSchedule } from "./commands/schedule.ts";
import { register as registerShow } from "./commands/show.ts";
import { register as registerStatus } from "./commands/status.ts";
import { register as registerUpload } from "./commands/upload.ts";
import { register as registerVerify } from "./commands/verify.ts";
import { PROGRESS_MODES } from "./progress.ts";
import { terminalQuestions } from "./questions.ts";

export function buildProgram(cli: CliContext, questions = terminalQuestions(), json = false): Command {
  const program = new Command("cairn")
    // With --json, a usage error is reported as one JSON object (report), not commander's text.
    .configureOutput(json ? { writeErr: () => {} } : {})
    .description(
      "Back up databases and files: compressed, age-encrypted, verified, restorable with standard tools.",
    )
    .version(VERSION, "-V, --version")
    .option("-c, --config <file>", "configuration file (default: $CAIRN_CONFIG, then ./cairn.yaml)")
    .addOption(new Option("--config-stdin", "read the config file's text from stdin").hideHelp())
    .addOption(
      new Option("--log-format <format>", "log format on stderr").choices(["human", "json"]).default("human"),
    )
    .option("--log-file <file>", "also append log lines to this file, timestamped (info; debug with -v)")
    .option("--syslog", "also send log lines to the local syslog (log.syslog in the config for more)")
    .option("--show-commands", "print every program run and every write to a destination as a shell line")
    .option(
      "--confirm-commands",
      "like --show-commands, and ask before each write to a destination (terminal only)",
    )
    .option("-v, --verbose", "log debug details (the tools' own stderr included)")
    .option("-q, --quiet", "log warnings and errors only")
    .addOption(
      new Option(
        "--progress <mode>",
        "progress of each artifact: auto (a line on a terminal), plain (a log line every 10 s), none",
      )
        .choices(PROGRESS_MODES)
        .default("auto"),
    )
    .showHelpAfterError("(run with --help for usage)")
    .addHelpText(
      "after",
      examples([
        "cairn keygen -o key.txt",
        "cairn backup",
        "cairn list",
        "cairn restore app --source db --to-database app_copy -i key.txt",
        "cairn verify app -i key.txt",
      ]),
    );
  program.hook("preAction", (_program, action) => {
    const flags = action.optsWithGlobals() as { showCommands?: boolean; confirmCommands?: boolean };
    if (flags.confirmCommands && !process.stdin.isTTY)
      throw new UsageError("--confirm-commands asks on a terminal, and stdin is not one", {
        hint: "use --show-commands (or --dry-run) to see what would be done without a terminal",
      });
    if (flags.showCommands || flags.confirmCommands)
      setCommandEcho({
        show: (line) => process.stderr.write(`+ ${createRedactor(cli.secrets)(line)}\n`),
        ...(flags.confirmCommands
          ? {
              confirm: (line: string) => questions.ask(`run: ${createRedactor(cli.secrets)(line)}\n  [y/N] `),
            }
          : {}),
      });
  });
  registerBackup(program, cli);
  registerList(program, cli);
  registerShow(program, cli);
  registerRestore(program, cli);
  registerVerify(program, cli);
  registerPrune(program, cli);
  registerStatus(program, cli);
  registerDaemon(program, cli);
  registerSchedule(program, cli);
  registerConfig(program, cli);
  registerCatalog(program, cli);
  registerJobs(program, cli);
  registerUpload(program, cli);
  registerInit(program);
  registerDoctor(program, cli);
  registerPlugins(program, cli);
  registerKeygen(program);
  registerCompletion(program);
  program.exitOverride();
  program.commands.forEach(function override(command: Command) {
    command.exitOverride();
    command.commands.forEach(override);
  });
  return program;
}

/** The error that ends the command as one JSON object on stderr (restic's exit_error). */
function reportJson(error: unknown, redact: (text: string) => string): number {
  const exit =
    error instanceof CommanderError
      ? error.exitCode === 0
        ? EXIT.ok
        : EXIT.usage
      : error instanceof CairnError
        ? exitCodeOf(error.code)
        : EXIT.failed;
  if (exit === EXIT.ok) return exit;
  const message = (
    describeSystemError(error) ?? (error instanceof Error ? error.message : String(error))
  ).replace(/^error: /, "");
  const body = {
    message_type: "exit_error",
    code: error instanceof CairnError ? error.code : error instanceof CommanderError ? "USAGE" : "FAILED",
    exit,
    message: redact(message),
    ...(error instanceof CairnError && error.hint ? { hint: redact(error.hint) } : {}),
    ...(error instanceof ConfigError ? { problems: error.problems } : {}),
  };
  process.stderr.write(`${JSON.stringify(body)}\n`);
  logToSinks(body.message, "error");
  return exit;
}

function report(error: unknown, redact: (text: string) => string): number {
  const write = (text: string) => {
    process.stderr.write(redact(text));
    // The error that ends the command belongs in the log file and syslog too.
    for (const line of redact(text).trimEnd().split("\n")) logToSinks(line, "error");
  };
  if (error instanceof CommanderError) {
    // Commander already printed help, the version or the usage error.
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof CairnError) {
    write(`cairn: ${error.message}\n`);
    if (error.hint) write(`  → ${error.hint}\n`);
    if (error instanceof SourceError && error.stderrTail) write(`${error.stderrTail}\n`);
    return exitCodeOf(error.code);
  }
  if ((error as NodeJS.ErrnoException)?.code === "EPIPE") {
    write("cairn: the reader of stdout exited before the end: the data it got is incomplete\n");
    return EXIT.failed;
  }
  if ((error as Error)?.name === "AbortError") {
    process.stderr.write("cairn: interrupted\n");
    return EXIT.interrupted;
  }
  const system = describeSystemError(error);
  if (system) {
    write(`cairn: ${system}\n`);
    if (process.env.CAIRN_DEBUG && error instanceof Error) write(`${error.stack}\n`);
    return EXIT.failed;
  }
  const message = error instanceof Error ? error.message : String(error);
  write(`cairn: unexpected error: ${message}\n`);
  if (process.env.CAIRN_DEBUG && error instanceof Error) write(`${error.stack}\n`);
  return EXIT.failed;
}

export async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`cairn: ${signal} received, stopping (again to force)\n`);
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  // `cairn list | head -1`: a reader that stops early is not an error (the command ends quietly);
  // a data stream cut short fails where it is written (see report).
  // Errors of stdout arrive a tick after the write, maybe after the command ended: never removed.
  if (process.stdout.listenerCount("error") === 0) process.stdout.on("error", () => {}); // a pipeline writing to stdout reports its own
  const cli: CliContext = { signal: controller.signal, secrets: new Set() };
  const questions = terminalQuestions();
  const json = argv.includes("--json");
  try {
    await buildProgram(cli, questions, json).parseAsync(argv);
    // A command that ends on its own after a signal (the daemon's stop) chose its exit code.
    return typeof process.exitCode === "number" ? process.exitCode : EXIT.ok;
  } catch (error) {
    return (json ? reportJson : report)(error, createRedactor(cli.secrets));
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
    setCommandEcho(undefined);
    questions.close();
    await runCommandEnds();
    await closeLogSinks();
  }
}
