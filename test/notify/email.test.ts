/** The email notifier against a real SMTP server on 127.0.0.1 (smtp-server), over STARTTLS with a private CA and a login. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import { startSmtp } from "../helpers/smtp.ts";

/** The text of a quoted-printable body, enough for assertions. */
const decoded = (raw: string) =>
  raw
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

test("email: a failed job sends one mail over STARTTLS, logged in, saying what failed and why", async () => {
  const ws = workspace(tempDir());
  const smtp = await startSmtp(ws.dir);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `notifications:
  ops:
    type: email
${smtp.yaml("    ")}
    from: "cairn <backup@example.net>"
    to: [ops@example.net, oncall@example.net]
    subject_prefix: "[backup]"
jobs:
  db:
    sources:
      dump: { type: command, command: [sh, -c, "echo 'pg_dump: error: connection refused' >&2; exit 1"] }
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  const run = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(run.code, 1);
  assert.equal(smtp.messages.length, 1, run.stdout + run.stderr);
  const [mail] = smtp.messages;
  assert.equal(mail!.secure, true, "STARTTLS was used");
  assert.equal(mail!.user, "cairn");
  assert.equal(mail!.from, "backup@example.net");
  assert.deepEqual(mail!.to, ["ops@example.net", "oncall@example.net"]);
  const body = decoded(mail!.raw);
  assert.match(body, /Subject: \[backup\] cairn: backup of db on .* FAILED/);
  assert.match(body, /pg_dump: error: connection refused/);
  assert.match(body, /snapshot: db@/);
  assert.ok(!`${run.stdout}${run.stderr}`.includes("smtp-secret-9"));
});

test("email: a server refusing the login is logged as a notifier failure; the job's result stands", async () => {
  const ws = workspace(tempDir());
  const smtp = await startSmtp(ws.dir);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `notifications:
  ops: { type: email, host: 127.0.0.1, port: ${smtp.port}, user: cairn, password: wrong, ca_file: cert.pem, from: backup@example.net, to: ops@example.net, on: always }
jobs:
  www:
    sources: { site: { type: command, command: [echo, hello] } }
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  const run = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(run.code, 0, "the backup succeeded: that is the result");
  assert.match(run.stdout, /notifier ops failed \(the result stands\): notifier ops: Invalid login/);
  assert.equal(smtp.messages.length, 0);
});
