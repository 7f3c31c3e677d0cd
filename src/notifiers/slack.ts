/** Slack (and Mattermost, Rocket.Chat) incoming webhooks. */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { json, send, text } from "./_shared.ts";

const schema = z.object({ webhook_url: z.url().describe("the incoming webhook's URL (a secret)") });

export const slackNotifier = defineNotifier({
  type: "slack",
  description: "Slack (or Mattermost) incoming webhook",
  schema,
  secrets: ["webhook_url"],
  create: (options, env) => ({
    send: (event, ctx) => send(env.name, options.webhook_url, json({ text: text(event) }), ctx),
  }),
});
