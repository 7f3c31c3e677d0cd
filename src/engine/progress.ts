/** What restore, verify and backup report while data flows. */
import type { Logger } from "../kit/contracts.ts";

export interface Progress {
  /** What is under way: a backup reads the source, restore and verify read stored objects. */
  phase?: "backup" | "restore" | "verify";
  job: string;
  source: string;
  artifact?: string;
  /** Bytes read so far: from the source (backup), or stored bytes (restore, verify). */
  bytes: number;
  /** How many bytes there are: exact for restore and verify, the last snapshot's for backup. */
  total?: number;
  /** Seconds since this artifact started. */
  elapsed: number;
}

/** A progress callback that throws is logged; it never stops the backup (nor crashes the process). */
export function safely(ctx: { logger: Logger }, report: () => void): void {
  try {
    report();
  } catch (error) {
    ctx.logger.debug(`the progress callback failed: ${(error as Error).message}`);
  }
}
