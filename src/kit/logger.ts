import type { LogFields, Logger, LogLevel } from "./contracts.ts";

export const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format?: "human" | "json";
  level?: LogLevel;
  /** Where lines go; stderr by default (stdout is for results). */
  write?: (line: string, level: LogLevel) => void;
  /** Values that must never be printed: replaced wherever they appear. */
  secrets?: Iterable<string>;
}

/** Replaces every known secret value in a text. */
export function createRedactor(secrets: Iterable<string>): (text: string) => string {
  const values = [...new Set([...secrets].filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
  if (values.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const value of values) out = out.split(value).join("<redacted>");
    return out;
  };
}

function formatValue(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value);
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "human";
  const min = LEVELS[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const redact = createRedactor(options.secrets ?? []);
  const make = (bound: LogFields): Logger => {
    const log = (level: LogLevel, message: string, fields?: LogFields) => {
      if (LEVELS[level] < min) return;
      const all = { ...bound, ...fields };
      if (format === "json") {
        write(redact(JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...all })), level);
        return;
      }
      // The session id (a long UUID) goes last, so the fields people read come first.
      const { session, ...rest } = all;
      const extra = Object.entries({ ...rest, session })
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${formatValue(v)}`)
        .join(" ");
      const tag = level === "info" ? "" : `${level.toUpperCase()} `;
      write(redact(`${tag}${message}${extra ? `  ${extra}` : ""}`), level);
    };
    return {
      debug: (m, f) => log("debug", m, f),
      info: (m, f) => log("info", m, f),
      warn: (m, f) => log("warn", m, f),
      error: (m, f) => log("error", m, f),
      child: (fields) => make({ ...bound, ...fields }),
    };
  };
  return make({});
}

/** A logger that drops everything: the library default, so embedding apps stay quiet. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
