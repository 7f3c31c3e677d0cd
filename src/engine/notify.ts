/**
 * Tells the configured notifiers about a job's run. A notifier that fails is logged and reported,
 * never allowed to change the job's result. `start` events go only to heartbeat services
 * (healthchecks), which also hear of a job skipped as not due as a success: cairn is alive.
 */
import type { Config } from "../config/load.ts";
import type { PluginOptions } from "../config/schema.ts";
import type { Logger, RunEvent } from "../kit/contracts.ts";
import { silentLogger } from "../kit/logger.ts";

export interface NotifyOptions {
  /** Notifiers named for this run (`--notify NAME`): sent even when `enabled: false`. */
  only?: string[];
  /** `--sentry-dsn`: report failures to Sentry even without a sentry notifier in the config. */
  sentryDsn?: string;
  logger?: Logger;
  signal?: AbortSignal;
}

const HEARTBEATS = new Set(["healthchecks"]);

function wanted(options: PluginOptions, event: RunEvent, named: boolean, skipped: boolean): boolean {
  const { on, enabled, jobs } = options as PluginOptions & { on: string; enabled: boolean; jobs?: string[] };
  if (!enabled && !named) return false;
  if (jobs && !jobs.includes(event.job)) return false;
  if (HEARTBEATS.has(options.type)) return true;
  if (event.kind === "start" || skipped) return false;
  return on === "always" || on === (event.kind === "failure" ? "failure" : "success");
}

/** Sends `event` to every notifier that wants it; returns the failures (already logged). */
export async function notify(
  config: Config,
  event: RunEvent,
  options: NotifyOptions = {},
  skipped = false,
): Promise<{ notifier: string; error: string }[]> {
  const logger = options.logger ?? silentLogger;
  const notifiers: [string, PluginOptions][] = Object.entries(config.notifications);
  const dsn = options.sentryDsn ?? process.env.SENTRY_DSN;
  if (dsn && !notifiers.some(([, n]) => n.type === "sentry"))
    notifiers.push(["sentry", { type: "sentry", on: "failure", enabled: true, dsn }]);
  const failures: { notifier: string; error: string }[] = [];
  const ctx = { signal: options.signal ?? new AbortController().signal, logger, workDir: "" };
  await Promise.all(
    notifiers.map(async ([name, notifierOptions]) => {
      if (!wanted(notifierOptions, event, options.only?.includes(name) ?? false, skipped)) return;
      const definition = config.registry.notifiers.get(notifierOptions.type);
      if (!definition) return;
      const { on: _on, enabled: _enabled, jobs: _jobs, ...own } = notifierOptions;
      const sent = skipped && event.kind !== "start" ? { ...event, kind: "success" as const } : event;
      try {
        const parsed = definition.schema.parse({
          ...own,
          ...(own.type === "sentry" && dsn && !own.dsn ? { dsn } : {}),
        });
        await definition.create(parsed, { name, baseDir: config.baseDir }).send(sent, ctx);
        logger.debug("notified", { notifier: name, event: sent.kind });
      } catch (error) {
        const message = (error as Error).message;
        failures.push({ notifier: name, error: message });
        logger.warn(`notifier ${name} failed (the job's result stands): ${message}`);
      }
    }),
  );
  return failures;
}
