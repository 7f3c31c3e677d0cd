import { renameSync, writeFileSync } from "node:fs";

/** Replaces a small state file whole: written beside it, then renamed over it, so no reader sees half. */
export function replaceFile(path: string, text: string, mode: number): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode });
  renameSync(temp, path);
}
