/**
 * The kit: what every plugin, built-in or not, is made of — the contracts and define* helpers, the
 * errors and their exit codes, running programs (argv only, secrets in the environment or 0600
 * files, the exit status deciding), stream helpers, batching, finding programs, option schemas.
 * The engine imports the kit; the kit imports nothing of cairn but itself.
 */
export { z } from "zod";
export { Batcher } from "./batch.ts";
export * from "./contracts.ts";
export { formatDuration, parseDuration } from "./duration.ts";
export { announceWrite, type CommandEcho, showCommand } from "./echo.ts";
export { describeSystemError, plainErrno } from "./errno.ts";
export * from "./errors.ts";
export {
  type ExecOptions,
  type Producer,
  type ProgramOptions,
  type RunResult,
  runProgram,
  spawnFilter,
  spawnOutput,
  spawnProducer,
  spawnReader,
} from "./exec.ts";
export { createLogger, createRedactor, type LoggerOptions, silentLogger } from "./logger.ts";
export { SAFE_NAME, safeFileName } from "./names.ts";
export { sizeField } from "./schema.ts";
export { privateFile, readPasswordFile } from "./secrets.ts";
export { Semaphore } from "./semaphore.ts";
export { shellWord } from "./shell.ts";
export { formatSize, parseSize } from "./size.ts";
export {
  ByteCounter,
  Coalesce,
  EndMarkerCheck,
  HoldBackLast,
  type ObjectOutput,
  ObjectSink,
  ObjectVerifier,
  type ObjectWriter,
  Sha256Counter,
  through,
} from "./streams.ts";
export { VERSION } from "./version.ts";
export { findProgram, searchPath } from "./which.ts";
