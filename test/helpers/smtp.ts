/**
 * An SMTP server on 127.0.0.1 (the smtp-server package) with STARTTLS on a self-signed certificate
 * (cert.pem in `dir`, for the notifier's ca_file) and one login, cairn / smtp-secret-9; it keeps
 * every message it receives; the password is written to `dir`/smtp-password.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after } from "node:test";
import { SMTPServer } from "smtp-server";
import { selfSignedCertificate } from "./env.ts";

export async function startSmtp(dir: string) {
  const { key, cert } = selfSignedCertificate(dir);
  const messages: { from: string; to: string[]; raw: string; secure: boolean; user: string }[] = [];
  const server = new SMTPServer({
    key: readFileSync(key),
    cert: readFileSync(cert),
    authMethods: ["PLAIN", "LOGIN"],
    onAuth(auth, _session, callback) {
      if (auth.username === "cairn" && auth.password === "smtp-secret-9")
        return callback(null, { user: "cairn" });
      return callback(new Error("invalid login"));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString("utf8"),
          secure: session.secure,
          user: String(session.user ?? ""),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  after(() => server.close());
  const port = (server.server.address() as AddressInfo).port;
  writeFileSync(join(dir, "smtp-password"), "smtp-secret-9\n");
  /** The email notifier's connection options for this server, as YAML lines under `indent`. */
  const yaml = (indent: string) =>
    ["host: 127.0.0.1", `port: ${port}`, "user: cairn", "password_file: smtp-password", "ca_file: cert.pem"]
      .map((line) => `${indent}${line}`)
      .join("\n");
  return { port, messages, yaml };
}
