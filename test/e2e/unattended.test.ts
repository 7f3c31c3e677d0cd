/**
 * The operator's story of issue 6, end to end with `cairn daemon`: two jobs, two destinations
 * each, a retention policy pruning after every backup, an email and a webhook notifier. Backups
 * run on schedule, never overlap, keep exactly what the policy says, and a failure reaches both
 * receivers within the run.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { startDaemon, stop, until } from "../helpers/daemon.ts";
import { cairn } from "../helpers/env.ts";
import { startHttpCapture } from "../helpers/http-capture.ts";
import { configured } from "../helpers/jobs.ts";
import { startSmtp } from "../helpers/smtp.ts";

test("unattended: the daemon runs two jobs on schedule, prunes to the policy, and a failure arrives by email and webhook", async () => {
  const webhook = await startHttpCapture();
  const { ws } = configured("");
  const smtp = await startSmtp(ws.dir);
  const job = (name: string, schedule: string, extra = "") => `  ${name}:
    schedule: "${schedule}"
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    retention: { keep_last: 2, min_age: 0, prune: after_backup }
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
${smtp.yaml("    ")}
    from: backup@example.net
    to: [ops@example.net]
  audit:
    type: webhook
    url: ${webhook.url}/cairn
jobs:
${job("db", "*/2 * * * * *")}
${job("www", "*/3 * * * * *")}`,
  );
  const daemon = startDaemon(ws.dir, ws.env);
  const runs = (name: string) =>
    existsSync(join(ws.dir, `${name}.runs`))
      ? readFileSync(join(ws.dir, `${name}.runs`), "utf8")
          .trim()
          .split("\n")
      : [];
  /** Snapshots with a manifest: a run stopped mid-way may leave a folder without one. */
  const good = (folder: string, name: string) =>
    existsSync(join(ws.dir, folder, name))
      ? readdirSync(join(ws.dir, folder, name)).filter((id) =>
          existsSync(join(ws.dir, folder, name, id, "manifest.json")),
        )
      : [];
  try {
    // Four finished runs of each job: more than the two the policy keeps.
    const ends = (name: string) => runs(name).filter((l) => l.startsWith("end")).length;
    await until(() => ends("db") >= 4, 30_000, "four runs of db", daemon);
    await until(() => ends("www") >= 4, 30_000, "four runs of www", daemon);
    assert.equal(smtp.messages.length, 0, "no mail while all is well");

    // www's second destination breaks: its next run fails, and says so by mail and webhook.
    // Moved away in one step: a run of www may be writing there right now.
    renameSync(join(ws.dir, "far-www"), join(ws.dir, "far-www.old"));
    writeFileSync(join(ws.dir, "far-www"), "not a folder any more\n");
    const told = () => smtp.messages.length > 0 && webhook.on("/cairn").length > 0;
    await until(told, 30_000, "the mail and the webhook", daemon);
    // Quoted-printable soft line breaks (=CRLF) may fall anywhere in a long line: join them first.
    const mail = smtp.messages[0]!.raw.replace(/=\r\n/g, "");
    assert.match(mail, /Subject: .*www/);
    assert.match(mail, /far/);
    const event = JSON.parse(webhook.on("/cairn")[0]!.body);
    assert.equal(event.job, "www");
    assert.equal(event.kind, "failure");
  } finally {
    assert.equal(await stop(daemon), 0, daemon.log());
  }

  // The policy holds on every destination that kept working. Each job ran at least four times and
  // pruned after each backup: two are kept, three if the stop came between a run's manifest and
  // its pruning; a prune now leaves exactly the two newest.
  const destinations = [
    ["near", "db"],
    ["far-db", "db"],
    ["near", "www"],
  ] as const;
  for (const [folder, name] of destinations) {
    const kept = good(folder, name);
    assert.ok(
      kept.length === 2 || kept.length === 3,
      `${folder}/${name}: ${kept.join(", ")}\n${daemon.log()}`,
    );
  }
  const pruned = await cairn(["prune", "--skip", "www/far"], { cwd: ws.dir, env: ws.env }); // far-www is broken
  assert.equal(pruned.code, 0, pruned.stdout + pruned.stderr);
  for (const [folder, name] of destinations) assert.equal(good(folder, name).length, 2, `${folder}/${name}`);
  // And no job ever overlapped itself: each start follows the previous end.
  for (const name of ["db", "www"]) {
    const marks = runs(name).map((line) => line.split(" ")[0]);
    for (let i = 0; i + 1 < marks.length; i++)
      assert.notEqual(marks[i], marks[i + 1], `${name} overlapped itself:\n${runs(name).join("\n")}`);
  }
});
