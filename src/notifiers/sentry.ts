/** Sentry: a failed run as an event (Sentry's store API), the job and host as tags. */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { VERSION } from "../kit/version.ts";
import { json, NotifyError, send, title } from "./_shared.ts";

const schema = z.object({
  dsn: z.string().optional().describe("the project's DSN (a secret); default --sentry-dsn or $SENTRY_DSN"),
  environment: z.string().optional(),
});

export const sentryNotifier = defineNotifier({
  type: "sentry",
  description: "Sentry: failures as events, with the job as context",
  schema,
  secrets: ["dsn"],
  fromEnvironment: (env) => (env.SENTRY_DSN ? { dsn: env.SENTRY_DSN } : undefined),
  create: (options, env) => ({
    send: async (event, ctx) => {
      const dsn = options.dsn;
      if (!dsn) throw new NotifyError(`notifier ${env.name}: no DSN (set dsn, --sentry-dsn or $SENTRY_DSN)`);
      const parsed = new URL(dsn);
      const project = parsed.pathname.split("/").filter(Boolean).pop();
      const path = parsed.pathname.slice(0, parsed.pathname.lastIndexOf("/"));
      const store = `${parsed.protocol}//${parsed.host}${path}/api/${project}/store/`;
      const body = json({
        event_id: randomBytes(16).toString("hex"),
        timestamp: new Date().toISOString(),
        platform: "node",
        level: event.kind === "failure" ? "error" : "info",
        logger: "cairn",
        server_name: event.host,
        release: `cairn@${VERSION}`,
        ...(options.environment ? { environment: options.environment } : {}),
        message: { formatted: event.error ? `${title(event)}: ${event.error.message}` : title(event) },
        ...(event.error
          ? { exception: { values: [{ type: "BackupFailed", value: event.error.message }] } }
          : {}),
        tags: { job: event.job, host: event.host },
        extra: {
          snapshot: event.snapshot,
          startedAt: event.startedAt,
          durationMs: event.durationMs,
          destinations: event.destinations,
          ...(event.error?.hint ? { hint: event.error.hint } : {}),
          ...(event.error?.stderr ? { stderr: event.error.stderr } : {}),
        },
      });
      await send(
        env.name,
        store,
        {
          headers: {
            ...body.headers,
            "x-sentry-auth": `Sentry sentry_version=7, sentry_client=cairn/${VERSION}, sentry_key=${decodeURIComponent(parsed.username)}`,
          },
          body: body.body,
        },
        ctx,
      );
    },
  }),
});
