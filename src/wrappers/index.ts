/** Cross-cutting behaviour of every destination, as wrappers around its Storage (decision 011). */
import type { Storage } from "../kit/contracts.ts";
import { withDryRun } from "./dry-run.ts";
import { withBandwidthLimit, withConcurrencyLimit } from "./limits.ts";
import { withRetries } from "./retry.ts";
import { withShownCommands } from "./show-commands.ts";
import { withTimeout } from "./timeout.ts";

export interface WrapperOptions {
  /** Attempts for transient failures of reads, listings and deletes (1 = no retries). */
  retries: number;
  /** Milliseconds without progress before an operation fails; 0 = never. */
  timeoutMs: number;
  /** Transfers at once; 0 = no limit. */
  concurrency: number;
  /** Bytes per second for all transfers together; 0 = no limit. */
  bandwidth: number;
  dryRun?: boolean;
}

/**
 * Order matters: the timeout sits on the storage itself so a retry gets a fresh one; the limits
 * sit outside the retries so a retried read keeps its slot and its place in the pace.
 */
export function wrapStorage(storage: Storage, options: WrapperOptions): Storage {
  let wrapped = storage;
  if (options.timeoutMs > 0) wrapped = withTimeout(wrapped, options.timeoutMs);
  wrapped = withRetries(wrapped, { attempts: options.retries, baseDelayMs: 500, maxDelayMs: 30_000 });
  if (options.bandwidth > 0) wrapped = withBandwidthLimit(wrapped, options.bandwidth);
  if (options.concurrency > 0) wrapped = withConcurrencyLimit(wrapped, options.concurrency);
  if (options.dryRun) wrapped = withDryRun(wrapped);
  // Outermost: a write is shown (and confirmed) before a dry run drops it or a limit delays it.
  return withShownCommands(wrapped);
}

export { withBandwidthLimit, withConcurrencyLimit, withDryRun, withRetries, withTimeout };
