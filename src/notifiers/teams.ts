/** Microsoft Teams incoming webhooks (a connector or a Workflows webhook URL). */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { json, send, text, title } from "./_shared.ts";

const schema = z.object({ webhook_url: z.url().describe("the channel webhook's URL (a secret)") });

export const teamsNotifier = defineNotifier({
  type: "teams",
  description: "Microsoft Teams incoming webhook",
  schema,
  secrets: ["webhook_url"],
  create: (options, env) => ({
    send: (event, ctx) =>
      send(
        env.name,
        options.webhook_url,
        json({
          "@type": "MessageCard",
          "@context": "https://schema.org/extensions",
          summary: title(event),
          themeColor: event.kind === "failure" ? "C0392B" : "27AE60",
          title: title(event),
          text: text(event).split("\n").slice(1).join("  \n"),
        }),
        ctx,
      ),
  }),
});
