/**
 * Announces each put and delete (kit/echo.ts) as the command that would do the same by hand —
 * `aws s3 cp - URL`, `curl -T - URL`, `rm -f PATH` …, each destination's `handCommand` — before
 * doing it.
 */

import type { Storage, WriteOp } from "../kit/contracts.ts";
import { announceWrite } from "../kit/echo.ts";
import { wrap } from "./wrap.ts";

/** The destination's own hand-made command for a write, or a comment saying what is written where. */
export function writeCommand(storage: Storage, key: string, op: WriteOp): string {
  return storage.handCommand?.(key, op) ?? `# ${op} ${key} on ${storage.location}`;
}

export function withShownCommands(storage: Storage): Storage {
  return wrap(storage, {
    async put(key, body, ctx) {
      await announceWrite(writeCommand(storage, key, "put"));
      return storage.put(key, body, ctx);
    },
    async delete(key, ctx) {
      await announceWrite(writeCommand(storage, key, "delete"));
      return storage.delete(key, ctx);
    },
  });
}
