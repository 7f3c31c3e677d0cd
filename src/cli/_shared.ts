import type { Command } from "commander";
import type { Sink } from "../engine/log-sinks.ts";
import type { LogLevel } from "../kit/contracts.ts";
import { LEVELS } from "../kit/logger.ts";
import type { ProgressMode } from "./progress.ts";

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

export function globalsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** The log file and syslog outputs of this process, opened once whoever asks for a logger. */
const sinks: Sink[] = [];
const opened = new Map<string, Sink>();

export function sinkOnce(key: string, open: () => Sink): Sink {
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

/** What must run when the command ends, whatever happened (plugins' deactivate). */
const endings: (() => Promise<void>)[] = [];

export function atCommandEnd(ending: () => Promise<void>): void {
  endings.push(ending);
}

export async function runCommandEnds(): Promise<void> {
  for (const ending of endings.splice(0).reverse()) await ending().catch(() => {});
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

/** `--only` / `--skip`, repeatable globs on job and destination names and tags (engine/select.ts). */
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
