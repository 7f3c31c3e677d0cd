/** healthchecks.io-style pings (also Uptime Kuma push, Cronitor …): /start, success, /fail. */
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { send, text } from "./_shared.ts";

const schema = z.object({
  url: z.url().describe("the check's ping URL, e.g. https://hc-ping.com/UUID (a secret)"),
});

export const healthchecksNotifier = defineNotifier({
  type: "healthchecks",
  heartbeat: true,
  description: "healthchecks.io-style pings: start, success, fail (a missed run is noticed by the service)",
  schema,
  secrets: ["url"],
  create: (options, env) => ({
    send: (event, ctx) => {
      const base = options.url.replace(/\/+$/, "");
      const url = event.kind === "start" ? `${base}/start` : event.kind === "failure" ? `${base}/fail` : base;
      return send(env.name, url, { body: event.kind === "start" ? "" : text(event) }, ctx);
    },
  }),
});
