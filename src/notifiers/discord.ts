/** Discord channel webhooks. */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { json, send, text } from "./_shared.ts";

const schema = z.object({ webhook_url: z.url().describe("the channel webhook's URL (a secret)") });

export const discordNotifier = defineNotifier({
  type: "discord",
  description: "Discord channel webhook",
  schema,
  secrets: ["webhook_url"],
  create: (options, env) => ({
    // Discord refuses content over 2000 characters.
    send: (event, ctx) =>
      send(env.name, options.webhook_url, json({ content: text(event).slice(0, 1990) }), ctx),
  }),
});
