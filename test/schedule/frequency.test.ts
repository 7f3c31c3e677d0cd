/** Frequencies: the due rule in calendar edges, and `cairn backup` skipping what is not due. */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { isDue, parseFrequency } from "../../src/schedule/frequency.ts";
import { configured } from "../helpers/jobs.ts";

const at = (iso: string) => new Date(iso);

test("frequency: calendar periods in wall-clock time", () => {
  const due = (f: string, last: string, now: string, zone = "UTC") => isDue(f, at(last), at(now), zone).due;
  assert.equal(due("daily", "2026-11-25T00:10:00Z", "2026-11-25T23:50:00Z"), false);
  assert.equal(
    due("daily", "2026-11-24T23:50:00Z", "2026-11-25T00:10:00Z"),
    true,
    "a new day, even 20 minutes later",
  );
  // In Paris 23:30 UTC on the 24th is already the 25th.
  assert.equal(due("daily", "2026-11-24T23:30:00Z", "2026-11-25T10:00:00Z", "Europe/Paris"), false);
  assert.equal(due("hourly", "2026-11-25T10:59:00Z", "2026-11-25T11:00:00Z"), true);
  assert.equal(due("hourly", "2026-11-25T10:01:00Z", "2026-11-25T10:59:00Z"), false);
  // Weekly: ISO weeks, Monday 00:00 starts a new one.
  assert.equal(due("weekly", "2026-11-22T23:00:00Z", "2026-11-23T01:00:00Z"), true);
  assert.equal(due("weekly", "2026-11-23T01:00:00Z", "2026-11-29T23:00:00Z"), false);
  // monthly:10 — once a month, from the 10th on.
  assert.equal(
    due("monthly:10", "2026-10-12T00:00:00Z", "2026-11-05T00:00:00Z"),
    false,
    "not before the 10th",
  );
  assert.equal(due("monthly:10", "2026-10-12T00:00:00Z", "2026-11-10T00:00:00Z"), true);
  assert.equal(due("monthly:10", "2026-11-10T03:00:00Z", "2026-11-30T00:00:00Z"), false);
  assert.equal(due("monthly", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z"), true, "monthly = monthly:1");
  // Durations count from the last good snapshot.
  assert.equal(due("6h", "2026-11-25T00:00:00Z", "2026-11-25T05:59:00Z"), false);
  assert.equal(due("6h", "2026-11-25T00:00:00Z", "2026-11-25T06:00:00Z"), true);
  assert.equal(isDue("daily", undefined, at("2026-11-25T00:00:00Z")).due, true);
  assert.match(
    isDue("daily", at("2026-11-25T01:00:00Z"), at("2026-11-25T02:00:00Z"), "UTC").reason,
    /already done for this day/,
  );
  for (const bad of ["sometimes", "monthly:31", "monthly:0", "0s"])
    assert.equal(parseFrequency(bad), undefined, bad);
});

test("frequency: cairn backup skips a job that is not due and says why; --force runs it; a destination not due is left out", async () => {
  const { ws, cli } = configured(`jobs:
  app:
    frequency: daily
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations:
      daily: { type: local, path: ./daily }
      often: { type: local, path: ./often, frequency: 6s }
`);
  const count = (d: string) => readdirSync(join(ws.dir, d, "app")).length;
  assert.equal((await cli(["backup"])).code, 0);
  const again = await cli(["backup"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(
    again.stdout,
    /app: skipped, not due \(--force runs it\): daily: the last good snapshot is from .*already done for this day/,
  );
  assert.equal(count("daily"), 1);
  await new Promise((resolve) => setTimeout(resolve, 6500));
  const later = await cli(["backup", "--json"]);
  const report = JSON.parse(later.stdout);
  assert.deepEqual(Object.keys(report.jobs[0].destinations), ["often"], "only the destination that is due");
  assert.match(report.jobs[0].notDue.daily, /already done for this day/);
  assert.equal(count("daily"), 1);
  assert.equal(count("often"), 2);
  const forced = await cli(["backup", "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(count("daily"), 2);
  assert.equal(count("often"), 3);
});
