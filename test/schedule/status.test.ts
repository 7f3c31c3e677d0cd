/** `cairn status`: the dead-man check, in a table, as JSON and as one NRPE line with Nagios exit codes. */
import assert from "node:assert/strict";
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { overdue } from "../../src/schedule/status.ts";
import { configured } from "../helpers/jobs.ts";

test("status: overdue means a whole period went by without a good snapshot", () => {
  const now = new Date("2026-11-25T10:00:00Z");
  assert.equal(
    overdue("daily", new Date("2026-11-24T02:00:00Z"), now),
    false,
    "yesterday's is fine until tonight",
  );
  assert.equal(overdue("daily", new Date("2026-11-23T02:00:00Z"), now), true, "yesterday was missed");
  assert.equal(overdue("6h", new Date("2026-11-25T00:00:00Z"), now), false);
  assert.equal(overdue("6h", new Date("2026-11-24T21:00:00Z"), now), true);
  assert.equal(overdue(undefined, new Date("2020-01-01T00:00:00Z"), now), false, "no frequency, no deadline");
  assert.equal(overdue("daily", undefined, now), true, "no good snapshot at all");
  // Without a frequency, the schedule: nothing good since the fire before the last one.
  const nightly = { cron: "30 2 * * *", time_zone: "UTC" };
  assert.equal(overdue(undefined, new Date("2026-11-24T02:30:01Z"), now, nightly), false, "yesterday's run");
  assert.equal(
    overdue(undefined, new Date("2026-11-24T02:30:01Z"), new Date("2026-11-25T02:31:00Z"), nightly),
    false,
    "tonight's run may still be going",
  );
  assert.equal(
    overdue(undefined, new Date("2026-11-23T02:30:01Z"), now, nightly),
    true,
    "last night's missed",
  );
  assert.equal(overdue("weekly", new Date("2026-11-23T02:30:01Z"), now, nightly), false, "frequency first");
});

test("status --nrpe: CRITICAL when overdue or empty, OK after a backup, WARNING past --warning", async () => {
  const { ws, cli } = configured(`jobs:
  app:
    frequency: daily
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations:
      here: { type: local, path: ./backups }
`);
  const empty = await cli(["status", "--nrpe"]);
  assert.equal(empty.code, 2);
  assert.match(empty.stdout, /^CAIRN CRITICAL - app on here: no good snapshot/);

  assert.equal((await cli(["backup"])).code, 0);
  // Make that snapshot three days old, as if the nightly run had stopped since.
  const jobDir = join(ws.dir, "backups/app");
  const [id] = readdirSync(jobDir);
  const old = new Date(Date.now() - 3 * 86_400_000);
  const oldId = `${old
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/:/g, "-")}-0001`;
  cpSync(join(jobDir, id!), join(jobDir, oldId), { recursive: true });
  rmSync(join(jobDir, id!), { recursive: true });
  const manifestFile = join(jobDir, oldId, "manifest.json");
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
  writeFileSync(manifestFile, JSON.stringify({ ...manifest, id: oldId, startedAt: old.toISOString() }));
  const stale = await cli(["status", "--nrpe"]);
  assert.equal(stale.code, 2, stale.stdout);
  assert.match(stale.stdout, /^CAIRN CRITICAL - app on here: newest good 3 days old \| app\/here=\d+s/);
  const table = await cli(["status"]);
  assert.equal(table.code, 1);
  assert.match(table.stdout, /app\s+here\s+daily\s+\S+\s+3 days\s+OVERDUE/);

  assert.equal((await cli(["backup"])).code, 0);
  const fresh = await cli(["status", "--nrpe", "--warning", "26h"]);
  assert.equal(fresh.code, 0, fresh.stdout);
  assert.match(fresh.stdout, /^CAIRN OK - 1 destination\(s\) have a recent good snapshot/);
  await new Promise((resolve) => setTimeout(resolve, 1200));
  const warned = await cli(["status", "--nrpe", "--warning", "1s", "--critical", "1h"]);
  assert.equal(warned.code, 1, warned.stdout);
  assert.match(warned.stdout, /^CAIRN WARNING - app on here: newest good \d/);
  const json = JSON.parse((await cli(["status", "--json"])).stdout);
  assert.equal(json.destinations[0].overdue, false);
  assert.equal(json.destinations[0].frequency, "daily");
});
