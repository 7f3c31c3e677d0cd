/**
 * `cairn prune` end to end on a local destination holding five simulated months of daily snapshots
 * (copies of one real snapshot, renamed to past ids — the on-storage format is only folders and
 * manifests), with a second destination that has no policy.
 */
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { planRetention } from "../../src/retention/policy.ts";
import { cairn, tempDir } from "../helpers/env.ts";
import { configured, workspace } from "../helpers/jobs.ts";

const DAY = 86_400_000;
const idAt = (time: Date, n: number) =>
  `${time
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/:/g, "-")}-${n.toString(16).padStart(4, "0")}`;

async function setUp() {
  const ws = workspace(tempDir());
  mkdirSync(join(ws.dir, "site"));
  writeFileSync(join(ws.dir, "site/index.html"), "<h1>hello</h1>\n");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources: { site: { type: files, paths: [./site] } }
    encryption: { age: { recipients: [${ws.recipient}] } }
    retention: { keep_daily: 7, keep_weekly: 4, keep_monthly: 3, time_zone: UTC }
    destinations:
      here: { type: local, path: ./backups }
      archive:
        type: local
        path: ./archive
        retention: { keep_last: -1 }
`,
  );
  const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
  const backup = await cli(["backup"]);
  assert.equal(backup.code, 0, backup.stderr);
  const jobDir = join(ws.dir, "backups/app");
  const [real] = readdirSync(jobDir);
  // 150 days of daily snapshots at 03:17 UTC, the newest yesterday.
  const times = Array.from({ length: 150 }, (_, i) => new Date(Date.UTC(2026, 5, 1, 3, 17) + i * DAY));
  const ids = times.map((t, i) => idAt(t, i));
  for (const [i, id] of ids.entries()) {
    cpSync(join(jobDir, real!), join(jobDir, id), { recursive: true });
    const manifestFile = join(jobDir, id, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
    writeFileSync(
      manifestFile,
      JSON.stringify({
        ...manifest,
        id,
        startedAt: times[i]!.toISOString(),
        finishedAt: times[i]!.toISOString(),
      }),
    );
    // The destination's own times agree with the ids, as for snapshots really made then.
    for (const file of readdirSync(join(jobDir, id)))
      utimesSync(join(jobDir, id, file), times[i]!, times[i]!);
  }
  cpSync(join(jobDir, real!), join(ws.dir, "archive/app", real!), { recursive: true });
  return { ws, cli, jobDir, real: real!, ids, times };
}

test("prune: GFS over five simulated months keeps exactly the plan, removes the rest (objects and all), and cleans only old leftovers", async () => {
  const { cli, jobDir, real, ids, times } = await setUp();
  // A run that died two days ago (objects, no manifest), and one that may still be running.
  const dead = idAt(new Date(Date.now() - 2 * DAY), 0xdead);
  const running = idAt(new Date(Date.now() - 60_000), 0xbeef);
  for (const id of [dead, running]) {
    mkdirSync(join(jobDir, id));
    writeFileSync(join(jobDir, id, "site.tar.zst.age"), "partial");
  }
  const deadTime = new Date(Date.now() - 2 * DAY);
  utimesSync(join(jobDir, dead, "site.tar.zst.age"), deadTime, deadTime);
  const all = [real, ...ids];
  const expected = planRetention(
    all.map((id, i) => ({
      id,
      time:
        i === 0
          ? new Date(JSON.parse(readFileSync(join(jobDir, real, "manifest.json"), "utf8")).startedAt)
          : times[i - 1]!,
      good: true,
    })),
    { keep_daily: 7, keep_weekly: 4, keep_monthly: 3, week_start: 1, time_zone: "UTC" },
    new Date(),
  );
  assert.ok(
    expected.remove.length > 100 && expected.keep.length >= 8,
    `the policy has work to do: keep ${expected.keep.length}, remove ${expected.remove.length}`,
  );

  const preview = await cli(["prune", "--dry-run", "--json"]);
  assert.equal(preview.code, 0, preview.stderr);
  const planned = JSON.parse(preview.stdout);
  const here = planned.destinations.find((d: { destination: string }) => d.destination === "here");
  assert.deepEqual(here.keep.map((d: { id: string }) => d.id).sort(), expected.keep.map((d) => d.id).sort());
  assert.deepEqual(here.leftovers, [`app/${dead}`]);
  assert.equal(readdirSync(jobDir).length, all.length + 2, "a dry run removes nothing");

  const pruned = await cli(["prune"]);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /app on here: keep \d+, removed \d+/);
  assert.deepEqual(readdirSync(jobDir).sort(), [...expected.keep.map((d) => d.id), running].sort());
  for (const d of expected.remove)
    assert.ok(!existsSync(join(jobDir, d.id)), `${d.id} is gone, objects and all`);
  const listed = JSON.parse((await cli(["list", "--json"])).stdout);
  assert.equal(listed.snapshots.length, expected.keep.length, "list agrees with the plan");
  // The destination with its own policy (keep everything) was not touched.
  assert.deepEqual(readdirSync(join(jobDir, "../../archive/app")), [real]);
});

test("prune: an unreadable manifest stops pruning on that destination — nothing is removed, the exit code says so", async () => {
  const { cli, jobDir, ids } = await setUp();
  writeFileSync(join(jobDir, ids[10]!, "manifest.json"), "{ not json");
  const before = readdirSync(jobDir).length;
  const pruned = await cli(["prune", "app", "--destination", "here"]);
  assert.equal(pruned.code, 1);
  assert.match(pruned.stdout, /could not be read .*nothing was removed/);
  assert.equal(readdirSync(jobDir).length, before);
});

test("prune: after_backup prunes right after every successful backup, and says so", async () => {
  const { ws, cli } = configured(`jobs:
  app:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations:
      here:
        type: local
        path: ./backups
        retention: { keep_last: 2, min_age: 0, prune: after_backup }
      elsewhere: { type: local, path: ./elsewhere }
`);
  for (let run = 1; run <= 4; run++) {
    const backup = await cli(["backup"]);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(
      backup.stdout,
      new RegExp(`pruned here: kept ${Math.min(run, 2)}, removed ${run > 2 ? 1 : 0}`),
    );
  }
  assert.equal(readdirSync(join(ws.dir, "backups/app")).length, 2);
  assert.equal(
    readdirSync(join(ws.dir, "elsewhere/app")).length,
    4,
    "a destination without a policy keeps all",
  );
});
