/**
 * Progress on stderr: on a terminal, one line per artifact redrawn in place (bytes of the total,
 * rate, ETA), cleared before any log line is written and drawn again by the next update; `--progress plain`
 * writes it as a log line every 10 seconds instead, on any output; nothing elsewhere.
 */

import type { Progress } from "../engine/backup.ts";
import { formatSize } from "../kit/size.ts";

export type ProgressMode = "auto" | "plain" | "none";
export const PROGRESS_MODES: ProgressMode[] = ["auto", "plain", "none"];

/** The progress line on the terminal now, redrawn after a log line. */
let shown = "";

/** Every log line for stderr passes here, so that it never runs into the progress line. */
export function writeLogLine(line: string): void {
  if (!shown) {
    process.stderr.write(`${line}\n`);
    return;
  }
  // The next update draws the line again: redrawn here, it would outlive its artifact.
  process.stderr.write(`\r\x1b[K${line}\n`);
  shown = "";
}

/** Seconds as m:ss (or h:mm:ss), as ETAs are read. */
function clock(seconds: number): string {
  const s = Math.ceil(seconds);
  const two = (n: number) => String(n).padStart(2, "0");
  return s >= 3600
    ? `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`
    : `${Math.floor(s / 60)}:${two(s % 60)}`;
}

export function describeProgress(p: Progress): string {
  const what = `${p.job} ${p.artifact ?? p.source}`;
  const rate = p.elapsed > 0 ? p.bytes / p.elapsed : 0;
  const rateText = rate > 0 ? `, ${formatSize(rate)}/s` : "";
  if (!p.total) return `${what}: ${formatSize(p.bytes)}${rateText}`;
  const estimate = p.phase === "backup" ? "~" : "";
  const share = Math.min(100, Math.floor((p.bytes / p.total) * 100));
  const left = rate > 0 && p.bytes < p.total ? `, ETA ${clock((p.total - p.bytes) / rate)}` : "";
  return `${what}: ${formatSize(p.bytes)} of ${estimate}${formatSize(p.total)} (${share}%)${rateText}${left}`;
}

export interface ProgressReporter {
  update(progress: Progress): void;
  done(): void;
}

export function progressReporter(
  mode: ProgressMode,
  plainLine: (text: string) => void,
): ProgressReporter | undefined {
  if (mode === "none") return undefined;
  if (mode === "plain") {
    const last = new Map<string, number>();
    return {
      update(p) {
        const key = `${p.job}/${p.artifact ?? p.source}`;
        const now = Date.now();
        if (now - (last.get(key) ?? 0) < 10_000) return;
        last.set(key, now);
        plainLine(`progress ${describeProgress(p)}`);
      },
      done: () => {},
    };
  }
  if (!process.stderr.isTTY) return undefined;
  return {
    update(p) {
      const width = process.stderr.columns || 100;
      shown = describeProgress(p).slice(0, Math.max(20, width - 1));
      process.stderr.write(`\r\x1b[K${shown}`);
    },
    done() {
      if (shown) process.stderr.write("\r\x1b[K");
      shown = "";
    },
  };
}
