/**
 * Child processes for sources and transforms: argv arrays only (never a shell string), secrets through the
 * environment or files, stderr kept for the error message, and a non-zero exit turned into a
 * stream error so a failed dump can never look like a finished one.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Duplex, finished, PassThrough, type Readable } from "node:stream";
import type { Logger } from "./contracts.ts";
import { showCommand } from "./echo.ts";
import { SourceError } from "./errors.ts";

export interface ExecOptions {
  env?: Record<string, string | undefined>;
  /** Working folder of the program. */
  cwd?: string;
  signal: AbortSignal;
  logger: Logger;
  /** Shown when the program is missing, e.g. `apt-get install postgresql-client`. */
  installHint?: string;
  /** Sees every stderr line (the error message keeps only the last few). */
  onStderrLine?: (line: string) => void;
  /**
   * Run in a process group of its own and stop the whole group: for shell lines (command sources,
   * hooks), whose children would otherwise outlive a stop and hold the output pipe open.
   */
  processGroup?: boolean;
}

const STDERR_LINES = 20;

class StderrTail {
  private lines: string[] = [];
  private partial = "";
  private readonly logger: Logger;
  private readonly onLine: ((line: string) => void) | undefined;
  constructor(options: ExecOptions) {
    this.logger = options.logger;
    this.onLine = options.onStderrLine;
  }
  push(chunk: Buffer): void {
    const text = this.partial + chunk.toString("utf8");
    const lines = text.split("\n");
    this.partial = lines.pop() ?? "";
    for (const line of lines) this.add(line);
  }
  private add(line: string): void {
    if (!line.trim()) return;
    this.onLine?.(line);
    this.logger.debug(line, { stream: "stderr" });
    this.lines.push(line);
    if (this.lines.length > STDERR_LINES) this.lines.shift();
  }
  text(): string {
    if (this.partial) {
      this.add(this.partial);
      this.partial = "";
    }
    return this.lines.join("\n");
  }
}

function childEnv(extra: ExecOptions["env"]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function failure(
  program: string,
  code: number | null,
  signal: NodeJS.Signals | null,
  stderr: string,
): SourceError {
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  // The line that says what went wrong, not whatever the tool printed after it (e.g. the SQL).
  const lines = stderr.split("\n").filter(Boolean);
  const last = lines.findLast((line) => /error|fatal|failed/i.test(line)) ?? lines.pop();
  return new SourceError(`${program} ${how}${last ? `: ${last}` : ""}`, {
    stderrTail: stderr || undefined,
    ...(code !== null ? { exitCode: code } : {}),
  });
}

function spawnError(program: string, error: NodeJS.ErrnoException, hint: string | undefined): SourceError {
  if (error.code === "ENOENT")
    return new SourceError(`${program} is not installed or not on PATH`, { hint, cause: error });
  return new SourceError(`cannot run ${program}: ${error.message}`, { cause: error });
}

function start(
  program: string,
  args: string[],
  options: ExecOptions,
  stdin: "pipe" | "ignore" | Readable,
): ChildProcess {
  showCommand(program, args, options.cwd);
  const child = spawn(program, args, {
    env: childEnv(options.env),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    stdio: [stdin, "pipe", "pipe"],
    signal: options.signal,
    killSignal: "SIGTERM",
    detached: options.processGroup ?? false,
  });
  if (options.processGroup) {
    groups.add(child);
    const stop = () => terminate(child, "SIGTERM");
    // Already stopped (a stop that came while cairn was still starting): no abort event will come.
    if (options.signal.aborted) queueMicrotask(stop);
    options.signal.addEventListener("abort", stop, { once: true });
    child.once("exit", () => options.signal.removeEventListener("abort", stop));
  }
  return child;
}

/** Children started with `processGroup`: signals go to their whole group. */
const groups = new WeakSet<ChildProcess>();

function terminate(child: ChildProcess, signal: NodeJS.Signals): void {
  if (groups.has(child) && child.pid !== undefined) {
    try {
      process.kill(-child.pid, signal);
      return;
    } catch {}
  }
  child.kill(signal);
}

/**
 * Runs `program` and returns its stdout as a stream that ends only if the program exits with 0;
 * otherwise the stream errors with the exit status and the last stderr lines. Destroying the stream
 * kills the program.
 */
export function spawnOutput(program: string, args: string[], options: ExecOptions): Readable {
  return watchOutput(start(program, args, options, "ignore"), program, options);
}

/**
 * A program as a stream filter (e.g. `zstd -3`): what is written goes to its stdin, its stdout is
 * the readable side, which ends only if the program exits with 0.
 */
export function spawnFilter(program: string, args: string[], options: ExecOptions): Duplex {
  const child = start(program, args, options, "pipe");
  const output = watchOutput(child, program, options);
  // A filter that dies makes its stdin fail with EPIPE; the exit status is the error to report.
  child.stdin!.on("error", () => {});
  return Duplex.from({ writable: child.stdin!, readable: output });
}

export interface Producer {
  /** The program's stdout, not read by anyone yet: pipe it, or give it to another program as stdin. */
  stdout: Readable;
  /** Resolves with the program's stderr once it exits with an accepted code; rejects otherwise. */
  completion: Promise<string>;
}

/**
 * Starts a program whose output someone else will consume (see `spawnReader`); its success is
 * known only from `completion`. `input` is fed to its stdin; if `input` fails, the program is
 * killed and `completion` rejects with that failure.
 */
export function spawnProducer(
  program: string,
  args: string[],
  options: ExecOptions & { input?: Readable; okCodes?: number[] },
): Producer {
  const child = start(program, args, options, options.input ? "pipe" : "ignore");
  let inputError: Error | undefined;
  if (options.input && child.stdin) {
    child.stdin.on("error", () => {});
    finished(options.input, { writable: false }, (error) => {
      if (!error) return;
      inputError ??= error;
      terminate(child, "SIGKILL");
    });
    options.input.pipe(child.stdin);
  }
  child.on("close", () => {
    // Nobody reads the input any more: whoever writes it must not wait for ever.
    options.input?.destroy();
  });
  return watchProducer(child, program, options, options.okCodes ?? [0], () => inputError);
}

function watchProducer(
  child: ChildProcess,
  program: string,
  options: ExecOptions,
  okCodes: number[],
  inputError: () => Error | undefined = () => undefined,
): Producer {
  const stderr = new StderrTail(options);
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
  const completion = new Promise<string>((resolve, reject) => {
    child.on("error", (error: NodeJS.ErrnoException) =>
      reject(error.name === "AbortError" ? error : spawnError(program, error, options.installHint)),
    );
    child.on("close", (code, signal) => {
      const failedInput = inputError();
      if (failedInput) reject(failedInput);
      else if (code !== null && okCodes.includes(code)) resolve(stderr.text());
      else reject(failure(program, code, signal, stderr.text()));
    });
  });
  completion.catch(() => {});
  return { stdout: child.stdout!, completion };
}

/**
 * A program that reads its stdin straight from another program's stdout: the bytes go from one
 * process to the other through the kernel, never through Node. It is itself a producer, so chains
 * (tar → zstd → age) form without Node in between.
 */
export function spawnReader(
  program: string,
  args: string[],
  input: Readable,
  options: ExecOptions,
): Producer {
  const child = start(program, args, options, input);
  // The child has its own copy of the pipe now; ours would only keep it open.
  input.destroy();
  return watchProducer(child, program, options, [0]);
}

function watchOutput(child: ChildProcess, program: string, options: ExecOptions): Readable {
  const stderr = new StderrTail(options);
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
  child.stdout!.pipe(out, { end: false });
  let settled = false;
  child.on("error", (error: NodeJS.ErrnoException) => {
    if (settled) return;
    settled = true;
    out.destroy(error.name === "AbortError" ? error : spawnError(program, error, options.installHint));
  });
  child.on("close", (code, signal) => {
    if (settled) return;
    settled = true;
    if (code === 0) out.end();
    else out.destroy(failure(program, code, signal, stderr.text()));
  });
  out.on("close", () => {
    if (!settled) terminate(child, "SIGTERM");
  });
  return out;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export interface ProgramOptions extends ExecOptions {
  /** Fed to the program's stdin. If it errors, the program is killed before its stdin closes. */
  stdin?: Readable;
  /** The program may stop reading early (e.g. `pg_restore --list`): the rest of stdin is drained. */
  stdinMayCloseEarly?: boolean;
  /** Capture stdout (small outputs only); otherwise it is discarded. */
  captureStdout?: boolean;
}

/** Runs a program to completion; rejects with a SourceError on a non-zero exit or a failing stdin. */
export function runProgram(program: string, args: string[], options: ProgramOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = start(program, args, options, options.stdin ? "pipe" : "ignore");
    const stderr = new StderrTail(options);
    const stdout: Buffer[] = [];
    let inputError: Error | undefined;
    let done = false;
    child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.stdout!.on("data", (chunk: Buffer) => {
      if (options.captureStdout) stdout.push(chunk);
    });
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      if (error) reject(error);
      else resolve({ stdout: Buffer.concat(stdout).toString("utf8"), stderr: stderr.text() });
    };
    child.on("error", (error: NodeJS.ErrnoException) =>
      finish(error.name === "AbortError" ? error : spawnError(program, error, options.installHint)),
    );
    const input = options.stdin;
    let inputEnded = !input;
    child.on("close", (code, signal) => {
      if (inputError) return finish(inputError);
      if (code !== 0) return finish(failure(program, code, signal, stderr.text()));
      if (!inputEnded && options.stdinMayCloseEarly && input) {
        // The program is satisfied; the input must still be read to its end so it can verify itself.
        input.unpipe(child.stdin!);
        input.on("end", () => finish());
        input.on("error", (error) => finish(error));
        input.resume();
        return;
      }
      finish();
    });
    if (input && child.stdin) {
      child.stdin.on("error", (error: NodeJS.ErrnoException) => {
        if (error.code === "EPIPE" || error.code === "ERR_STREAM_DESTROYED") return;
        inputError ??= error;
      });
      // finished() also reports a stream that failed before we got here.
      finished(input, { writable: false }, (error) => {
        if (!error) {
          inputEnded = true;
          return;
        }
        inputError ??= error;
        // Kill first: the program must not see a clean end of input and commit a partial restore.
        terminate(child, "SIGKILL");
        child.stdin?.destroy();
      });
      if (!input.destroyed) input.pipe(child.stdin);
    }
  });
}
