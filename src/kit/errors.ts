/**
 * Typed errors with a stable `code`. The CLI maps them to exit codes; messages say what went wrong
 * and what to do, and never contain secrets.
 */
export type ErrorCode =
  | "CONFIG"
  | "USAGE"
  | "SOURCE"
  | "STORAGE"
  | "NOT_FOUND"
  | "INTEGRITY"
  | "DECRYPT"
  | "RESTORE"
  | "ABORTED"
  | "LOCKED"
  | "INTERNAL";

export interface CairnErrorOptions {
  cause?: unknown;
  retryable?: boolean;
  hint?: string;
}

export class CairnError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  /** What the user can do about it, printed after the message. */
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: CairnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.hint = options.hint;
  }
}

export interface ConfigProblem {
  file?: string;
  line?: number;
  column?: number;
  /** Dotted path of the key, e.g. `jobs.app.sources.db.port`. */
  path: string;
  message: string;
}

export class ConfigError extends CairnError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[], options: CairnErrorOptions = {}) {
    super("CONFIG", formatProblems(problems), options);
    this.problems = problems;
  }
}

function formatProblems(problems: ConfigProblem[]): string {
  const lines = problems.map((p) => {
    const where = [p.file, p.line, p.column].filter((x) => x !== undefined).join(":");
    const key = p.path ? `${p.path}: ` : "";
    return `  ${where ? `${where}: ` : ""}${key}${p.message}`;
  });
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return `invalid configuration (${count}):\n${lines.join("\n")}`;
}

export class UsageError extends CairnError {
  constructor(message: string, options: CairnErrorOptions = {}) {
    super("USAGE", message, options);
  }
}

export class SourceError extends CairnError {
  /** Last lines the failing tool wrote to stderr, already redacted. */
  readonly stderrTail: string | undefined;
  /** The failing tool's exit code, when a tool failed. */
  readonly exitCode: number | undefined;
  constructor(message: string, options: CairnErrorOptions & { stderrTail?: string; exitCode?: number } = {}) {
    super("SOURCE", message, options);
    this.stderrTail = options.stderrTail;
    this.exitCode = options.exitCode;
  }
}

export class StorageError extends CairnError {
  constructor(message: string, options: CairnErrorOptions = {}) {
    super("STORAGE", message, options);
  }
}

/** Another run holds the job (on this host, or on a destination several hosts share). */
export class LockError extends CairnError {
  constructor(message: string, options: CairnErrorOptions = {}) {
    super("LOCKED", message, options);
  }
}

export class NotFoundError extends CairnError {
  constructor(message: string, options: CairnErrorOptions = {}) {
    super("NOT_FOUND", message, options);
  }
}

/** Stored bytes do not match what the manifest promised (checksum, size, truncation). */
export class IntegrityError extends CairnError {
  constructor(message: string, options: CairnErrorOptions = {}) {
    super("INTEGRITY", message, options);
  }
}

/** Wrong key, wrong passphrase, or ciphertext that does not authenticate. */
export class DecryptError extends CairnError {
  constructor(message: string, options: CairnErrorOptions = {}) {
    super("DECRYPT", message, options);
  }
}

export class RestoreError extends CairnError {
  constructor(message: string, options: CairnErrorOptions = {}) {
    super("RESTORE", message, options);
  }
}

export class AbortedError extends CairnError {
  constructor(message = "aborted", options: CairnErrorOptions = {}) {
    super("ABORTED", message, options);
  }
}

export function isCairnError(error: unknown): error is CairnError {
  return error instanceof CairnError;
}

/** A one-line description of any thrown value, for logs and reports. */
export function describeError(error: unknown): string {
  if (error instanceof CairnError) return error.hint ? `${error.message} (${error.hint})` : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Exit codes operators can script against (restic's contract; docs/commands.md). */
export const EXIT = {
  ok: 0,
  failed: 1,
  /** Bad usage or configuration, or a refused action: nothing was done. */
  usage: 2,
  /** Some of it was done: a snapshot stored on some destinations only, or without a failed source. */
  partial: 3,
  notFound: 10,
  locked: 11,
  /** Wrong key, passphrase or credentials. */
  key: 12,
  interrupted: 130,
} as const;

const EXIT_OF_CODE: Partial<Record<ErrorCode, number>> = {
  CONFIG: EXIT.usage,
  USAGE: EXIT.usage,
  NOT_FOUND: EXIT.notFound,
  LOCKED: EXIT.locked,
  DECRYPT: EXIT.key,
  ABORTED: EXIT.interrupted,
};

/** The exit code for an error's code (1 for any code without its own). */
export function exitCodeOf(code: string): number {
  return EXIT_OF_CODE[code as ErrorCode] ?? EXIT.failed;
}

/** Least to most severe: when several things happened, the most severe one's code is the exit code. */
const SEVERITY: number[] = [
  EXIT.ok,
  EXIT.partial,
  EXIT.failed,
  EXIT.notFound,
  EXIT.locked,
  EXIT.key,
  EXIT.usage,
  EXIT.interrupted,
];

export function mostSevere(codes: number[]): number {
  return codes.reduce((a, b) => (SEVERITY.indexOf(b) > SEVERITY.indexOf(a) ? b : a), EXIT.ok);
}
