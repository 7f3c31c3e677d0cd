/** Gotify: a message to a self-hosted server with an application token. */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { json, send, text, title } from "./_shared.ts";

const schema = z.object({
  url: z.url().describe("the Gotify server, e.g. https://push.example.net"),
  token: z.string().min(1).describe("the application's token (a secret)"),
  priority: z.number().int().min(0).max(10).optional().describe("default: 8 for failures, 4 otherwise"),
});

export const gotifyNotifier = defineNotifier({
  type: "gotify",
  description: "Gotify push message",
  schema,
  secrets: ["token"],
  create: (options, env) => ({
    send: (event, ctx) => {
      const body = json({
        title: title(event),
        message: text(event).split("\n").slice(1).join("\n"),
        priority: options.priority ?? (event.kind === "failure" ? 8 : 4),
      });
      return send(
        env.name,
        `${options.url.replace(/\/+$/, "")}/message`,
        { headers: { ...body.headers, "x-gotify-key": options.token }, body: body.body },
        ctx,
      );
    },
  }),
});
