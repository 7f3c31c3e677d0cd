/** Email over SMTP (STARTTLS by default, or TLS from the start) through nodemailer. */
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { z } from "zod";
import { defineNotifier } from "../kit/contracts.ts";
import { readPasswordFile } from "../kit/secrets.ts";
import { NotifyError, text, title } from "./_shared.ts";

const schema = z.object({
  host: z.string().min(1).describe("SMTP server"),
  port: z
    .number()
    .int()
    .min(1)
    .max(65535)
    .optional()
    .describe("default 587, or 465 with tls: tls, 25 with none"),
  tls: z
    .enum(["starttls", "tls", "none"])
    .default("starttls")
    .describe("starttls: upgrade and require it (default); tls: TLS from the start (port 465); none: plain"),
  user: z.string().optional(),
  password: z.string().optional().describe("e.g. from ${file:…}"),
  password_file: z.string().optional().describe("or a file holding it"),
  ca_file: z.string().optional().describe("PEM file of the CA to trust (a private mail server)"),
  from: z.string().min(3).describe('sender, e.g. "cairn <backup@example.net>"'),
  to: z
    .union([
      z
        .string()
        .min(3)
        .transform((one) => [one]),
      z.array(z.string().min(3)).min(1),
    ])
    .describe("one address or a list"),
  subject_prefix: z.string().default("").describe("e.g. [backup]"),
});

export const emailNotifier = defineNotifier({
  type: "email",
  description: "email over SMTP with STARTTLS or TLS (nodemailer)",
  schema,
  secrets: ["password"],
  create: (options, env) => ({
    async send(event, ctx) {
      const { createTransport } = await import("nodemailer");
      const password =
        options.password ??
        (options.password_file ? readPasswordFile(options.password_file, env.baseDir, env.name) : undefined);
      const transport = createTransport({
        host: options.host,
        port: options.port ?? (options.tls === "tls" ? 465 : options.tls === "none" ? 25 : 587),
        secure: options.tls === "tls",
        requireTLS: options.tls === "starttls",
        ignoreTLS: options.tls === "none",
        ...(options.user ? { auth: { user: options.user, pass: password ?? "" } } : {}),
        ...(options.ca_file
          ? { tls: { ca: readFileSync(posix.resolve(env.baseDir, options.ca_file)) } }
          : {}),
        connectionTimeout: 30_000,
        socketTimeout: 60_000,
      });
      try {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        await transport.sendMail({
          from: options.from,
          to: options.to,
          subject: `${options.subject_prefix ? `${options.subject_prefix} ` : ""}${title(event)}`,
          text: text(event),
        });
      } catch (error) {
        throw new NotifyError(`notifier ${env.name}: ${(error as Error).message}`);
      } finally {
        transport.close();
      }
    },
  }),
});
