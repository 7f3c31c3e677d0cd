/**
 * Where log lines go besides stderr: a file (appended, one timestamped line per event, kept at
 * info level even with --quiet) and syslog, through util-linux's `logger` — the local socket, or a
 * remote server over UDP or TCP (RFC 5424 framing is logger's). Lines arrive already redacted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { z } from "zod";
import type { LogLevel } from "../kit/contracts.ts";

const SEVERITY: Record<LogLevel, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const FACILITIES = [
  "kern",
  "user",
  "mail",
  "daemon",
  "auth",
  "syslog",
  "lpr",
  "news",
  "uucp",
  "cron",
  "authpriv",
  "ftp",
] as const;
const facilityCode = (name: string) =>
  name.startsWith("local")
    ? 16 + Number(name.slice(5))
    : FACILITIES.indexOf(name as (typeof FACILITIES)[number]);

/** `syslog: true` and `--syslog`: the local syslog, facility user, tag cairn. */
export const LOCAL_SYSLOG: { facility: "user"; tag: string; server?: string } = {
  facility: "user",
  tag: "cairn",
};

export const syslogSchema = z
  .union([
    z.literal(true),
    z
      .object({
        facility: z
          .enum([
            ...FACILITIES,
            "local0",
            "local1",
            "local2",
            "local3",
            "local4",
            "local5",
            "local6",
            "local7",
          ])
          .default("user")
          .describe("syslog facility"),
        tag: z.string().default("cairn").describe("the program name in each message"),
        server: z
          .string()
          .regex(/^(udp|tcp):\/\/[^/:]+(:\d+)?$/, "write udp://HOST[:PORT] or tcp://HOST[:PORT]")
          .optional()
          .describe("a remote syslog server, udp://host:514 or tcp://host:514; default the local /dev/log"),
      })
      .strict(),
  ])
  .transform((value) => (value === true ? LOCAL_SYSLOG : value));

export type SyslogSettings = z.output<typeof syslogSchema>;

export interface Sink {
  level: LogLevel;
  write(line: string, level: LogLevel): void;
  close?(): Promise<void>;
}

/** Appends to `path` (created 0600, its folder too). */
export function fileSink(path: string, level: LogLevel, format: "human" | "json"): Sink {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, "a", 0o600);
  return {
    level,
    write(line) {
      writeSync(fd, format === "json" ? `${line}\n` : `${new Date().toISOString()} ${line}\n`);
    },
    async close() {
      closeSync(fd);
    },
  };
}

/** One `logger --prio-prefix` process for the whole run; each line goes with its own priority. */
export function syslogSink(settings: SyslogSettings, level: LogLevel): Sink {
  const args = ["--prio-prefix", "--tag", settings.tag, `--id=${process.pid}`];
  if (settings.server) {
    const url = new URL(settings.server);
    args.push(
      "--server",
      url.hostname,
      "--port",
      url.port || "514",
      url.protocol === "tcp:" ? "--tcp" : "--udp",
    );
    args.push("--rfc5424");
  }
  let child: ChildProcess | undefined;
  let broken = false;
  const start = () => {
    child = spawn("logger", args, { stdio: ["pipe", "ignore", "ignore"] });
    child.on("error", () => {
      broken = true; // no `logger` here: syslog is best effort, the other sinks still have the line
    });
    child.stdin?.on("error", () => {
      broken = true;
    });
    return child;
  };
  const facility = facilityCode(settings.facility);
  return {
    level,
    write(line, lineLevel) {
      if (broken) return;
      const pri = facility * 8 + SEVERITY[lineLevel];
      // One message per line: a multi-line message (a tool's stderr) is split by logger itself.
      for (const part of line.split("\n")) (child ?? start()).stdin?.write(`<${pri}>${part}\n`);
    },
    async close() {
      const running = child;
      if (!running?.stdin || broken || running.exitCode !== null || running.signalCode !== null) return;
      const exited = new Promise((resolve) => running.once("close", resolve));
      running.stdin.end();
      await exited;
    },
  };
}
