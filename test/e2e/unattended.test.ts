/**
 * The operator's story of issue 6, end to end with `cairn daemon`: two jobs, two destinations
 * each, a retention policy pruning after every backup, an email and a webhook notifier. Backups
 * run on schedule, never overlap, keep exactly what the policy says, and a failure reaches both
 * receivers within the run.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI } from "../helpers/env.ts";
import { startHttpCapture } from "../helpers/http-capture.ts";
import { configured } from "../helpers/jobs.ts";
import { startSmtp } from "../helpers/smtp.ts";

test("unattended: the daemon runs two jobs on schedule, prunes to the policy, and a failure arrives by email and webhook", async () => {
  const webhook = await startHttpCapture();
  const { ws } = configured("");
  const smtp = await startSmtp(ws.dir);
  writeFileSync(join(ws.dir, "smtp-password"), "smtp-secret-9\n");
  const job = (name: string, schedule: string, extra = "") => `  ${name}:
    schedule: "${schedule}"
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    retention: { keep_last: 2, prune: after_backup }
    hooks: { before: 'echo "start $(date +%s.%N)" >> ${name}.runs; sleep 0.5', finally: 'echo "end $(date +%s.%N)" >> ${name}.runs' }
    destinations:
      near: { type: local, path: ./near }
      far: { type: local, path: ./far-${name} }
${extra}`;
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `daemon: { max_parallel: 2 }
notifications:
  ops:
    type: email
    host: 127.0.0.1
    port: ${smtp.port}
    user: cairn
    password_file: smtp-password
    ca_file: cert.pem
    from: backup@example.net
    to: [ops@example.net]
  audit:
    type: webhook
    url: ${webhook.url}/cairn
jobs:
${job("db", "*/2 * * * * *")}
${job("www", "*/3 * * * * *")}`,
  );
  const daemon = spawn(process.execPath, [CLI, "daemon"], {
    cwd: ws.dir,
    env: { ...process.env, ...ws.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  daemon.stdout.on("data", (d: Buffer) => {
    log += d.toString();
  });
  daemon.stderr.on("data", (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise((resolve) => daemon.once("exit", resolve));
  const runs = (name: string) =>
    existsSync(join(ws.dir, `${name}.runs`))
      ? readFileSync(join(ws.dir, `${name}.runs`), "utf8")
          .trim()
          .split("\n")
      : [];
  const until = async (check: () => boolean, what: string) => {
    for (let i = 0; !check(); i++) {
      if (i > 300) assert.fail(`${what} within 30 s; daemon log:\n${log}`);
      await sleep(100);
    }
  };
  const snapshots = (folder: string, name: string) =>
    existsSync(join(ws.dir, folder, name)) ? readdirSync(join(ws.dir, folder, name)).sort() : [];
  try {
    // Four finished runs of each job: more than the two the policy keeps.
    await until(() => runs("db").filter((l) => l.startsWith("end")).length >= 4, "four runs of db");
    await until(() => runs("www").filter((l) => l.startsWith("end")).length >= 4, "four runs of www");
    assert.equal(smtp.messages.length, 0, "no mail while all is well");

    // www's second destination breaks: its next run fails, and says so by mail and webhook.
    rmSync(join(ws.dir, "far-www"), { recursive: true });
    writeFileSync(join(ws.dir, "far-www"), "not a folder any more\n");
    await until(
      () => smtp.messages.length > 0 && webhook.on("/cairn").length > 0,
      "the mail and the webhook",
    );
    const mail = smtp.messages[0]!.raw;
    assert.match(mail, /Subject: .*www/);
    assert.match(mail, /far/);
    const event = JSON.parse(webhook.on("/cairn")[0]!.body);
    assert.equal(event.job, "www");
    assert.equal(event.kind, "failure");
  } finally {
    daemon.kill("SIGTERM");
    await Promise.race([exited, sleep(20_000)]);
  }
  assert.equal(daemon.exitCode, 0, log);

  // The policy holds on every destination that kept working: exactly the two newest.
  for (const [folder, name] of [
    ["near", "db"],
    ["far-db", "db"],
    ["near", "www"],
  ] as const) {
    const kept = snapshots(folder, name);
    assert.equal(kept.length, 2, `${folder}/${name}: ${kept.join(", ")}\n${log}`);
  }
  // And no job ever overlapped itself: each start follows the previous end.
  for (const name of ["db", "www"]) {
    const marks = runs(name).map((line) => line.split(" ")[0]);
    for (let i = 0; i + 1 < marks.length; i++)
      assert.notEqual(marks[i], marks[i + 1], `${name} overlapped itself:\n${runs(name).join("\n")}`);
  }
});
