/**
 * What a command needs once it runs: the config, the logger, the keys, progress. Commands import
 * this module when their action starts, so that `cairn --version` and `--help` load none of it.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { parseIdentityFile } from "../age/index.ts";
import { Catalog } from "../catalog/catalog.ts";
import { type Config, loadConfigAsync } from "../config/load.ts";
import type { Progress } from "../engine/backup.ts";
import { refuseOpenKeyFile } from "../engine/key-files.ts";
import { parseSnapshotSpec } from "../engine/list.ts";
import { fileSink, LOCAL_SYSLOG, type Sink, syslogSink } from "../engine/log-sinks.ts";
import type { KeyOptions } from "../engine/restore.ts";
import type { Logger, LogLevel } from "../kit/contracts.ts";
import { plainErrno } from "../kit/errno.ts";
import { NotFoundError, UsageError } from "../kit/errors.ts";
import { createLogger, LEVELS } from "../kit/logger.ts";
import { activatePlugins } from "../plugins/load.ts";
import {
  atCommandEnd,
  type CliContext,
  type GlobalOptions,
  globalsOf,
  type KeyFlags,
  sinkOnce,
} from "./_shared.ts";
import { progressReporter, writeLogLine } from "./progress.ts";

export interface Runtime {
  config: Config;
  logger: Logger;
  signal: AbortSignal;
  globals: GlobalOptions;
}

/** The config the global options name, its secrets added to those every error is cleaned of. */
export async function configOf(globals: GlobalOptions, cli: CliContext): Promise<Config> {
  const config = await loadConfigAsync({
    ...(globals.config ? { file: globals.config } : {}),
    ...(globals.configStdin ? { text: readFileSync(0, "utf8") } : {}),
  });
  for (const secret of config.secrets) cli.secrets.add(secret);
  return config;
}

/** Plugins are activated once per process, by the first command that uses the config. */
let activated = false;

/** The config and a logger that knows its secrets, for commands that need a config. */
export async function runtimeOf(command: Command, cli: CliContext): Promise<Runtime> {
  const globals = globalsOf(command);
  const config = await configOf(globals, cli);
  const logger = loggerFor(globals, config.secrets, config);
  for (const warning of config.warnings ?? []) logger.warn(warning);
  if (config.plugins?.length && !activated) {
    activated = true;
    atCommandEnd(await activatePlugins(config.plugins, logger));
  }
  return { config, logger, signal: cli.signal, globals };
}

/** The options every command about one snapshot (`JOB[@ID]`) passes to the library. */
export async function snapshotRequest(
  command: Command,
  cli: CliContext,
  spec: string,
  flags: { destination?: string },
) {
  const runtime = await runtimeOf(command, cli);
  const { job, snapshot } = await resolveSpec(runtime.config, spec);
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

/** A bare snapshot id (or unique prefix of one) names its job, found in the catalog. */
const SNAPSHOT_ID = /^\d{4}-\d\d-\d\d(T[\dA-Za-z-]*)?$/;

async function resolveSpec(config: Config, spec: string): Promise<{ job: string; snapshot: string }> {
  if (spec.includes("@") || spec in config.jobs || !SNAPSHOT_ID.test(spec)) return parseSnapshotSpec(spec);
  const catalog = await Catalog.open(config.stateDir);
  try {
    const matches = catalog.snapshots().filter((row) => row.id.startsWith(spec) && row.job in config.jobs);
    const named = [...new Set(matches.map((row) => `${row.job}@${row.id}`))];
    if (named.length === 1) return parseSnapshotSpec(named[0]!);
    if (named.length === 0)
      throw new NotFoundError(`no snapshot ${spec} in the catalog of this host`, {
        hint: "write JOB@ID, or run cairn catalog rebuild to read the destinations",
      });
    throw new UsageError(`${spec} matches ${named.length} snapshots: ${named.slice(0, 5).join(", ")}`, {
      hint: "write more of the id, or JOB@ID",
    });
  } finally {
    catalog.close();
  }
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

/**
 * The keys for restore and verify: -i files, else $CAIRN_IDENTITY_FILE, else what
 * $CAIRN_IDENTITY_COMMAND prints; the passphrase from --passphrase-file, $CAIRN_PASSPHRASE_FILE,
 * what $CAIRN_PASSPHRASE_COMMAND prints, or $CAIRN_PASSPHRASE (restic's --password-command).
 */
export function keysFrom(flags: KeyFlags, env: NodeJS.ProcessEnv = process.env): KeyOptions {
  const identityFiles = flags.identity?.length
    ? flags.identity
    : env.CAIRN_IDENTITY_FILE
      ? [env.CAIRN_IDENTITY_FILE]
      : [];
  const identities =
    identityFiles.length === 0 && env.CAIRN_IDENTITY_COMMAND
      ? parseIdentities(commandOutput(env.CAIRN_IDENTITY_COMMAND, "CAIRN_IDENTITY_COMMAND"))
      : [];
  const passphraseFile = flags.passphraseFile ?? env.CAIRN_PASSPHRASE_FILE;
  const passphrase = passphraseFile
    ? readPassphraseFile(passphraseFile)
    : env.CAIRN_PASSPHRASE_COMMAND
      ? commandOutput(env.CAIRN_PASSPHRASE_COMMAND, "CAIRN_PASSPHRASE_COMMAND").replace(/\r?\n$/, "")
      : env.CAIRN_PASSPHRASE;
  return {
    identityFiles,
    ...(identities.length > 0 ? { identities } : {}),
    ...(passphrase !== undefined ? { passphrase } : {}),
  };
}

function readPassphraseFile(file: string): string {
  refuseOpenKeyFile(file, "passphrase file");
  try {
    return readFileSync(file, "utf8").replace(/\r?\n$/, "");
  } catch (error) {
    throw new UsageError(
      `cannot read passphrase file ${file}: ${plainErrno((error as NodeJS.ErrnoException).code)}`,
    );
  }
}

/** What a key command prints on stdout; it may ask on the terminal (stdin and stderr are cairn's). */
function commandOutput(command: string, variable: string): string {
  const r = spawnSync("/bin/sh", ["-c", command], {
    stdio: ["inherit", "pipe", "inherit"],
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new UsageError(
      `${variable} (${command}) ${r.error ? `could not run: ${r.error.message}` : `exited with code ${r.status}`}`,
      {
        hint: "the command must print the key on stdout and exit 0",
      },
    );
  if (!r.stdout.trim()) throw new UsageError(`${variable} (${command}) printed nothing`);
  return r.stdout;
}

function parseIdentities(text: string): string[] {
  try {
    return parseIdentityFile(text);
  } catch (error) {
    throw new UsageError(`CAIRN_IDENTITY_COMMAND printed no age identity: ${(error as Error).message}`);
  }
}
