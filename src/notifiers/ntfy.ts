/** ntfy (ntfy.sh or self-hosted): a push message to a topic. */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { send, text, title } from "./_shared.ts";

const schema = z.object({
  url: z.url().describe("the topic's URL, e.g. https://ntfy.sh/acme-backups"),
  token: z.string().optional().describe("access token for a protected topic (a secret)"),
  priority: z
    .enum(["min", "low", "default", "high", "max"])
    .optional()
    .describe("default: high for failures"),
});

export const ntfyNotifier = defineNotifier({
  type: "ntfy",
  description: "ntfy push notification",
  schema,
  secrets: ["token"],
  create: (options, env) => ({
    send: (event, ctx) =>
      send(
        env.name,
        options.url,
        {
          headers: {
            title: title(event),
            priority: options.priority ?? (event.kind === "failure" ? "high" : "default"),
            tags: event.kind === "failure" ? "warning" : "white_check_mark",
            ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          },
          body: text(event).split("\n").slice(1).join("\n"),
        },
        ctx,
      ),
  }),
});
