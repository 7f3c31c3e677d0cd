/** What every notifier says, and how the HTTP ones send it. */

import type { PluginContext, RunEvent } from "../kit/contracts.ts";
import { formatDuration } from "../kit/duration.ts";
import { CairnError } from "../kit/errors.ts";
import { formatSize } from "../kit/size.ts";

export class NotifyError extends CairnError {
  constructor(message: string) {
    super("INTERNAL", message);
  }
}

export function title(event: RunEvent): string {
  const what = event.kind === "failure" ? "FAILED" : event.kind === "start" ? "started" : "succeeded";
  return `cairn: backup of ${event.job} on ${event.host} ${what}`;
}

/** The message body: what, where, why, how long, how big, and the failing tool's last lines. */
export function text(event: RunEvent): string {
  const lines = [title(event)];
  if (event.kind !== "start") {
    lines.push(
      `snapshot: ${event.job}@${event.snapshot}`,
      `started: ${event.startedAt}, ran ${formatDuration(event.durationMs)}`,
      `size: ${formatSize(event.rawBytes)} read, ${formatSize(event.storedBytes)} stored`,
      `destinations: ${event.destinations.length ? event.destinations.join(", ") : "none"}`,
    );
  }
  if (event.error) {
    lines.push(`error: ${event.error.message}`);
    if (event.error.hint) lines.push(`hint: ${event.error.hint}`);
    if (event.error.stderr) lines.push("last output of the failing program:", event.error.stderr);
  }
  return lines.join("\n");
}

/** Sends one HTTP request; a non-2xx answer is an error naming the notifier, never the URL (it may hold a token). */
export async function send(
  notifier: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
  ctx: PluginContext,
): Promise<void> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.method ?? "POST",
      headers: init.headers ?? {},
      ...(init.body !== undefined ? { body: init.body } : {}),
      signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(30_000)]),
    });
  } catch (error) {
    throw new NotifyError(`notifier ${notifier}: the request failed: ${(error as Error).message}`);
  }
  const answer = await response.text().catch(() => "");
  if (!response.ok)
    throw new NotifyError(`notifier ${notifier}: HTTP ${response.status} ${answer.trim().slice(0, 200)}`);
}

export const json = (body: unknown) => ({
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});
