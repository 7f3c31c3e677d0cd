/** A generic webhook: the run as JSON, or a body made from a template (e.g. an SMS gateway's form). */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { json, send, text, title } from "./_shared.ts";

const schema = z.object({
  url: z.url().describe("where to send it"),
  method: z.enum(["POST", "PUT", "GET"]).default("POST"),
  headers: z
    .record(z.string(), z.string())
    .default({})
    .describe("extra headers, e.g. Authorization (secret)"),
  template: z
    .string()
    .optional()
    .describe(
      "the body instead of the JSON event: {title}, {text}, {job}, {status}, {host}, {snapshot}, {error} are replaced",
    ),
  content_type: z.string().default("text/plain; charset=utf-8").describe("of a templated body"),
});

export const webhookNotifier = defineNotifier({
  type: "webhook",
  description: "any HTTP endpoint: the run as JSON, or a templated body (SMS gateways …)",
  schema,
  secrets: ["headers", "url"],
  create: (options, env) => ({
    async send(event, ctx) {
      const fields: Record<string, string> = {
        title: title(event),
        text: text(event),
        job: event.job,
        status: event.kind,
        host: event.host,
        snapshot: event.snapshot,
        error: event.error?.message ?? "",
      };
      const body = options.template
        ? {
            headers: { "content-type": options.content_type },
            body: options.template.replace(/\{(\w+)\}/g, (all, name: string) => fields[name] ?? all),
          }
        : json({ ...event, title: fields.title, text: fields.text });
      await send(
        env.name,
        options.url,
        {
          method: options.method,
          headers: { ...body.headers, ...options.headers },
          ...(options.method === "GET" ? {} : { body: body.body }),
        },
        ctx,
      );
    },
  }),
});
