/** Telegram through a bot: sendMessage to a chat. */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { json, send, text } from "./_shared.ts";

const schema = z.object({
  bot_token: z.string().min(1).describe("the bot's token from @BotFather (a secret)"),
  chat_id: z.union([z.string(), z.number()]).describe("the chat, group or channel to write to"),
  api_url: z.url().default("https://api.telegram.org").describe("the Bot API server"),
});

export const telegramNotifier = defineNotifier({
  type: "telegram",
  description: "Telegram message through a bot",
  schema,
  secrets: ["bot_token"],
  create: (options, env) => ({
    send: (event, ctx) =>
      send(
        env.name,
        `${options.api_url.replace(/\/+$/, "")}/bot${options.bot_token}/sendMessage`,
        json({ chat_id: options.chat_id, text: text(event).slice(0, 4000) }),
        ctx,
      ),
  }),
});
