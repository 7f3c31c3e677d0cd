import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { type Config, loadConfig } from "../config/load.ts";
import type { Progress } from "../core/backup.ts";
import { refuseOpenKeyFile } from "../core/key-files.ts";
import { parseSnapshotSpec } from "../core/list.ts";
import { fileSink, LOCAL_SYSLOG, type Sink, syslogSink } from "../core/log-sinks.ts";
import { createLogger, LEVELS } from "../core/logger.ts";
import type { KeyOptions } from "../core/restore.ts";
import { UsageError } from "../errors.ts";
import type { Logger, LogLevel } from "../types.ts";
import { type ProgressMode, progressReporter, writeLogLine } from "./progress.ts";

export interface GlobalOptions {
  config?: string;
  logFile?: string;
  syslog?: boolean;
  /** The config's text comes on stdin (`cairn daemon` hands its jobs the config it validated). */
  configStdin?: boolean;
  logFormat: "human" | "json";
  verbose?: boolean;
  quiet?: boolean;
  progress?: ProgressMode;
}

/** What every command shares: the cancellation signal, and every secret seen, for redacting errors. */
export interface CliContext {
  signal: AbortSignal;
  secrets: Set<string>;
}

export interface Runtime {
  config: Config;
  logger: Logger;
  signal: AbortSignal;
  globals: GlobalOptions;
}

export function globalsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** The config the global options name, its secrets added to those every error is cleaned of. */
export function configOf(globals: GlobalOptions, cli: CliContext): Config {
  const config = loadConfig({
    ...(globals.config ? { file: globals.config } : {}),
    ...(globals.configStdin ? { text: readFileSync(0, "utf8") } : {}),
  });
  for (const secret of config.secrets) cli.secrets.add(secret);
  return config;
}

/** The config and a logger that knows its secrets, for commands that need a config. */
export function runtimeOf(command: Command, cli: CliContext): Runtime {
  const globals = globalsOf(command);
  const config = configOf(globals, cli);
  const logger = loggerFor(globals, config.secrets, config);
  for (const warning of config.warnings ?? []) logger.warn(warning);
  return { config, logger, signal: cli.signal, globals };
}

/** The options every command about one snapshot (`JOB[@ID]`) passes to the library. */
export function snapshotRequest(
  command: Command,
  cli: CliContext,
  spec: string,
  flags: { destination?: string },
) {
  const runtime = runtimeOf(command, cli);
  const { job, snapshot } = parseSnapshotSpec(spec);
  return {
    runtime,
    config: runtime.config,
    logger: runtime.logger,
    signal: runtime.signal,
    job,
    snapshot,
    ...(flags.destination ? { destination: flags.destination } : {}),
  };
}

/** The log file and syslog outputs of this process, opened once whoever asks for a logger. */
const sinks: Sink[] = [];
const opened = new Map<string, Sink>();

function sinkOnce(key: string, open: () => Sink): Sink {
  let sink = opened.get(key);
  if (!sink) {
    sink = open();
    opened.set(key, sink);
    sinks.push(sink);
  }
  return sink;
}

/** A line for the log file and syslog only (stderr has it already). */
export function logToSinks(line: string, level: LogLevel): void {
  for (const sink of sinks) if (LEVELS[level] >= LEVELS[sink.level]) sink.write(line, level);
}

/** Flushes and closes the log file and the syslog connection (at the end of a command). */
export async function closeLogSinks(): Promise<void> {
  opened.clear();
  await Promise.all(sinks.splice(0).map((sink) => sink.close?.()));
}

/**
 * The command's logger: stderr at the level of -v/-q, and the log file and syslog of the flags or
 * the config at info (debug with -v), whatever -q says.
 */
export function loggerFor(globals: GlobalOptions, secrets: string[] = [], config?: Config): Logger {
  const detail: LogLevel = globals.verbose ? "debug" : "info";
  const outputs: Sink[] = [
    {
      level: globals.verbose ? "debug" : globals.quiet ? "warn" : "info",
      write: (line) => writeLogLine(line),
    },
  ];
  const file = globals.logFile ?? config?.log.file;
  if (file) {
    try {
      outputs.push(sinkOnce(`file:${resolve(file)}`, () => fileSink(file, detail, globals.logFormat)));
    } catch (error) {
      throw new UsageError(`cannot open the log file ${file}: ${(error as NodeJS.ErrnoException).code}`);
    }
  }
  const syslog = globals.syslog ? (config?.log.syslog ?? LOCAL_SYSLOG) : config?.log.syslog;
  if (syslog) outputs.push(sinkOnce(`syslog:${JSON.stringify(syslog)}`, () => syslogSink(syslog, detail)));
  // The logger drops what no output wants; each output then keeps what its own level allows.
  const lowest = outputs.reduce<LogLevel>((a, o) => (LEVELS[o.level] < LEVELS[a] ? o.level : a), "error");
  return createLogger({
    format: globals.logFormat,
    level: lowest,
    secrets,
    write: (line, level) => {
      for (const output of outputs) if (LEVELS[level] >= LEVELS[output.level]) output.write(line, level);
    },
  });
}

/**
 * Runs `fn` with a progress callback as the global --progress asks (on a terminal by default,
 * never with -q), and clears the progress line when it ends.
 */
export async function withProgress<T>(
  runtime: Runtime,
  fn: (onProgress: ((progress: Progress) => void) | undefined) => Promise<T>,
): Promise<T> {
  const mode = runtime.globals.progress ?? "auto";
  const wanted =
    mode === "plain" || (mode === "auto" && runtime.globals.logFormat === "human" && !runtime.globals.quiet);
  const reporter = wanted ? progressReporter(mode, (line) => runtime.logger.info(line)) : undefined;
  try {
    return await fn(reporter?.update);
  } finally {
    reporter?.done();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export interface KeyFlags {
  identity?: string[];
  passphraseFile?: string;
}

/** Keys from flags, then the environment: CAIRN_IDENTITY_FILE, CAIRN_PASSPHRASE. Never from argv values. */
export function keysFrom(flags: KeyFlags): KeyOptions {
  const identityFiles = flags.identity?.length
    ? flags.identity
    : process.env.CAIRN_IDENTITY_FILE
      ? [process.env.CAIRN_IDENTITY_FILE]
      : [];
  let passphrase = process.env.CAIRN_PASSPHRASE;
  if (flags.passphraseFile) {
    refuseOpenKeyFile(flags.passphraseFile, "passphrase file");
    try {
      passphrase = readFileSync(flags.passphraseFile, "utf8").replace(/\r?\n$/, "");
    } catch (error) {
      throw new UsageError(
        `cannot read passphrase file ${flags.passphraseFile}: ${(error as NodeJS.ErrnoException).code}`,
      );
    }
  }
  return { identityFiles, ...(passphrase !== undefined ? { passphrase } : {}) };
}

/** `--only` / `--skip`, repeatable globs on job and destination names and tags (core/select.ts). */
export function withSelection(command: Command): Command {
  return command
    .option(
      "--only <pattern>",
      "only jobs or destinations whose name or tag matches (glob; repeatable)",
      collect,
    )
    .option(
      "--skip <pattern>",
      "leave out jobs or destinations whose name or tag matches (glob; repeatable)",
      collect,
    );
}

export function selectionOf(flags: { only?: string[]; skip?: string[] }): {
  only?: string[];
  skip?: string[];
} {
  return { ...(flags.only ? { only: flags.only } : {}), ...(flags.skip ? { skip: flags.skip } : {}) };
}

export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  ${l}`).join("\n")}\n`;
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return "";
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return `${rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ")).join("\n")}\n`;
}
