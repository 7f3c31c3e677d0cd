/**
 * Tells the configured notifiers about a job's run: its start, its success or its failure, as
 * each notifier's `on` asks. A notifier that fails is logged and reported, never allowed to change
 * the job's result. What a notifier type needs beyond that is its definition's: `heartbeat`
 * (hears everything, a skipped run as a success) and `fromEnvironment` (options from variables).
 */
import type { Config } from "../config/load.ts";
import type { PluginOptions } from "../config/schema.ts";
import type { Logger, NotifierDefinition, RunEvent } from "../kit/contracts.ts";
import { silentLogger } from "../kit/logger.ts";

export interface NotifyOptions {
  /** Notifiers named for this run (`--notify NAME`): sent even when `enabled: false`. */
  only?: string[];
  /** Variables over the process's, for `fromEnvironment` (`--sentry-dsn` is SENTRY_DSN). */
  env?: Record<string, string | undefined>;
  logger?: Logger;
  signal?: AbortSignal;
}

type Kind = RunEvent["kind"];
type Common = { on: string | Kind[]; enabled: boolean; jobs?: string[] };

/** The kinds of event `on` asks for: `always` is success and failure; a list says them all. */
export function kindsOf(on: string | Kind[]): Kind[] {
  if (Array.isArray(on)) return on;
  return on === "always" ? ["success", "failure"] : [on as Kind];
}

function wanted(
  options: PluginOptions & Common,
  definition: NotifierDefinition,
  event: RunEvent,
  named: boolean,
  skipped: boolean,
): boolean {
  if (!options.enabled && !named) return false;
  if (options.jobs && !options.jobs.includes(event.job)) return false;
  if (definition.heartbeat) return true;
  return !skipped && kindsOf(options.on).includes(event.kind);
}

/** The configured notifiers, and one per type whose variables the environment sets (e.g. SENTRY_DSN). */
function notifiersOf(
  config: Config,
  env: Record<string, string | undefined>,
): [string, PluginOptions & Common][] {
  const configured = Object.entries(config.notifications) as [string, PluginOptions & Common][];
  for (const definition of config.registry.notifiers.values()) {
    const implied = definition.fromEnvironment?.(env);
    if (implied && !configured.some(([, n]) => n.type === definition.type))
      configured.push([definition.type, { ...implied, type: definition.type, on: "failure", enabled: true }]);
  }
  return configured;
}

const defined = (options: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));

/** Sends `event` to every notifier that wants it; returns the failures (already logged). */
export async function notify(
  config: Config,
  event: RunEvent,
  options: NotifyOptions = {},
  skipped = false,
): Promise<{ notifier: string; error: string }[]> {
  const logger = options.logger ?? silentLogger;
  const env = { ...process.env, ...options.env };
  const failures: { notifier: string; error: string }[] = [];
  const ctx = { signal: options.signal ?? new AbortController().signal, logger, workDir: "" };
  await Promise.all(
    notifiersOf(config, env).map(async ([name, notifierOptions]) => {
      const definition = config.registry.notifiers.get(notifierOptions.type);
      if (!definition) return;
      if (!wanted(notifierOptions, definition, event, options.only?.includes(name) ?? false, skipped)) return;
      const { on: _on, enabled: _enabled, jobs: _jobs, ...own } = notifierOptions;
      const sent = skipped && event.kind !== "start" ? { ...event, kind: "success" as const } : event;
      try {
        const parsed = definition.schema.parse({ ...definition.fromEnvironment?.(env), ...defined(own) });
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
