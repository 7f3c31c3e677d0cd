/** Retention decisions on hand-made histories: calendar edges, time zones, the safety rules. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { planRetention, type RetentionPolicy, type SnapshotFacts } from "../../src/retention/policy.ts";

const DAY = 86_400_000;

/** Snapshots named by their UTC time; all good unless listed in `bad`. */
const history = (times: string[], bad: string[] = []): SnapshotFacts[] =>
  times.map((t) => ({ id: t, time: new Date(t), good: !bad.includes(t) }));

const kept = (snapshots: SnapshotFacts[], policy: RetentionPolicy, now = new Date("2030-01-01T00:00:00Z")) =>
  planRetention(snapshots, policy, now)
    .keep.map((d) => d.id)
    .sort();

test("daily: the newest of each of the last n days that have a snapshot; days without one do not count", () => {
  const snaps = history([
    "2026-03-01T08:00:00Z",
    "2026-03-01T20:00:00Z",
    "2026-03-02T09:00:00Z",
    // 3rd to 9th: nothing
    "2026-03-10T01:00:00Z",
    "2026-03-10T23:00:00Z",
  ]);
  assert.deepEqual(kept(snaps, { keep_daily: 3, time_zone: "UTC" }), [
    "2026-03-01T20:00:00Z",
    "2026-03-02T09:00:00Z",
    "2026-03-10T23:00:00Z",
  ]);
});

test("monthly across a month end depends on the time zone the days are counted in", () => {
  // 22:30 and 23:30 UTC on 31 January are 23:30 on the 31st and 00:30 on 1 February in Paris.
  const snaps = history(["2026-01-31T22:30:00Z", "2026-01-31T23:30:00Z"]);
  assert.deepEqual(kept(snaps, { keep_monthly: 5, time_zone: "UTC" }), ["2026-01-31T23:30:00Z"]);
  assert.deepEqual(kept(snaps, { keep_monthly: 5, time_zone: "Europe/Paris" }), [
    "2026-01-31T22:30:00Z",
    "2026-01-31T23:30:00Z",
  ]);
});

test("DST: hours are wall-clock hours — the repeated 02:xx of the autumn change is one hour", () => {
  // Paris, 25 October 2026: 02:30 CEST (00:30 UTC) and 02:30 CET (01:30 UTC).
  const autumn = history(["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"]);
  assert.deepEqual(kept(autumn, { keep_hourly: 10, time_zone: "Europe/Paris" }), ["2026-10-25T01:30:00Z"]);
  assert.deepEqual(kept(autumn, { keep_hourly: 10, time_zone: "UTC" }), [
    "2026-10-25T00:30:00Z",
    "2026-10-25T01:30:00Z",
  ]);
  // Spring, 29 March 2026: 01:30 CET (00:30 UTC) and 03:30 CEST (01:30 UTC) are different hours of one day.
  const spring = history(["2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"]);
  assert.deepEqual(kept(spring, { keep_hourly: 10, time_zone: "Europe/Paris" }).length, 2);
  assert.deepEqual(kept(spring, { keep_daily: 10, time_zone: "Europe/Paris" }), ["2026-03-29T01:30:00Z"]);
});

test("leap years: 29 February is its own day, and in the same year as 31 December", () => {
  const snaps = history([
    "2024-02-28T12:00:00Z",
    "2024-02-29T12:00:00Z",
    "2024-03-01T12:00:00Z",
    "2024-12-31T12:00:00Z",
  ]);
  assert.equal(kept(snaps, { keep_daily: 10, time_zone: "UTC" }).length, 4);
  assert.deepEqual(kept(snaps, { keep_yearly: 3, time_zone: "UTC" }), ["2024-12-31T12:00:00Z"]);
});

test("weekly: ISO weeks (Monday) by default; week_start moves the boundary", () => {
  // Sunday 2026-11-22 and Monday 2026-11-23.
  const snaps = history(["2026-11-22T12:00:00Z", "2026-11-23T12:00:00Z"]);
  assert.equal(kept(snaps, { keep_weekly: 5, time_zone: "UTC" }).length, 2);
  assert.deepEqual(kept(snaps, { keep_weekly: 5, week_start: 7, time_zone: "UTC" }), [
    "2026-11-23T12:00:00Z",
  ]);
  // Across a year boundary: Wed 2025-12-31 and Thu 2026-01-01 are in ISO week 2026-W01.
  const newYear = history(["2025-12-31T12:00:00Z", "2026-01-01T12:00:00Z"]);
  assert.deepEqual(kept(newYear, { keep_weekly: 5, time_zone: "UTC" }), ["2026-01-01T12:00:00Z"]);
});

test("rules combine: a snapshot is kept if any rule keeps it, with every reason", () => {
  const snaps = history(["2026-05-01T10:00:00Z", "2026-05-02T10:00:00Z", "2026-05-03T10:00:00Z"]);
  const plan = planRetention(
    snaps,
    { keep_last: 1, keep_monthly: 1, keep_daily: 2, time_zone: "UTC" },
    new Date(),
  );
  const newest = plan.keep.find((d) => d.id === "2026-05-03T10:00:00Z");
  assert.deepEqual(newest?.reasons.slice(0, 3), ["last snapshot", "daily snapshot", "monthly snapshot"]);
  assert.deepEqual(
    plan.remove.map((d) => [d.id, d.reasons]),
    [["2026-05-01T10:00:00Z", ["no rule keeps it"]]],
  );
});

test("keep_within keeps everything close to the newest snapshot, not to now", () => {
  const snaps = history(["2020-01-01T00:00:00Z", "2020-01-05T00:00:00Z", "2020-01-10T00:00:00Z"]);
  assert.deepEqual(kept(snaps, { keep_within: 6 * DAY }), ["2020-01-05T00:00:00Z", "2020-01-10T00:00:00Z"]);
});

test("the newest good snapshot is never removed: not by the rules, not by max_age", () => {
  const snaps = history(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"], ["2026-01-02T00:00:00Z"]);
  // keep_last 1 keeps only the (partial) newest; the newest good one stays anyway.
  const plan = planRetention(snaps, { keep_last: 1 }, new Date("2026-01-03T00:00:00Z"));
  assert.deepEqual(plan.keep.map((d) => d.id).sort(), ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]);
  assert.match(plan.keep.find((d) => d.id === "2026-01-01T00:00:00Z")?.reasons.join() ?? "", /newest good/);
  // Everything is older than max_age: all go but the newest good one.
  const old = planRetention(snaps, { max_age: DAY }, new Date("2027-01-01T00:00:00Z"));
  assert.deepEqual(
    old.keep.map((d) => d.id),
    ["2026-01-01T00:00:00Z"],
  );
  assert.deepEqual(
    old.remove.map((d) => d.reasons[0]),
    ["older than max_age 1d"],
  );
});

test("max_age removes what is older than the limit even where a rule would keep it", () => {
  const snaps = history(["2025-01-15T00:00:00Z", "2026-06-15T00:00:00Z", "2026-12-15T00:00:00Z"]);
  const plan = planRetention(
    snaps,
    { keep_yearly: 10, max_age: 365 * DAY },
    new Date("2027-01-01T00:00:00Z"),
  );
  assert.deepEqual(plan.keep.map((d) => d.id).sort(), ["2026-12-15T00:00:00Z"]);
});

test("without any rule nothing is removed (as restic)", () => {
  const snaps = history(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]);
  assert.equal(planRetention(snaps, {}, new Date()).remove.length, 0);
  assert.equal(planRetention(snaps, { keep_daily: 0 }, new Date()).remove.length, 0);
});

test("-1 keeps every bucket", () => {
  const snaps = history([
    "2026-01-01T00:00:00Z",
    "2026-01-01T05:00:00Z",
    "2026-01-02T00:00:00Z",
    "2026-01-03T00:00:00Z",
  ]);
  assert.equal(kept(snaps, { keep_daily: -1, time_zone: "UTC" }).length, 3);
});

test("max_age alone keeps what is younger and removes only what is older (#13.1)", () => {
  const now = new Date("2026-12-02T12:00:00Z");
  const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();
  const snaps = history([ago(10 * DAY), ago(DAY), ago(60_000), ago(1000)]);
  const plan = planRetention(snaps, { max_age: 3 * DAY }, now);
  assert.deepEqual(
    plan.remove.map((d) => [d.id, d.reasons]),
    [[ago(10 * DAY), ["older than max_age 3d"]]],
  );
  assert.deepEqual(plan.keep.map((d) => d.id).sort(), [ago(1000), ago(60_000), ago(DAY)].sort());
  assert.match(plan.keep.find((d) => d.id === ago(DAY))!.reasons.join(), /younger than max_age 3d/);
});

test("partial snapshots never count toward a rule; one newer than every complete one is kept (#13.2)", () => {
  // Three complete and two partial snapshots, newest first: P C P C C.
  const times = [
    "2026-05-05T10:00:00Z",
    "2026-05-04T10:00:00Z",
    "2026-05-03T10:00:00Z",
    "2026-05-02T10:00:00Z",
    "2026-05-01T10:00:00Z",
  ];
  const snaps = history(times, [times[0]!, times[2]!]);
  const plan = planRetention(snaps, { keep_last: 2 }, new Date("2026-06-01T00:00:00Z"));
  assert.deepEqual(
    plan.keep.map((d) => d.id).sort(),
    [times[0], times[1], times[3]].sort(),
    "two complete ones kept, and the newest partial",
  );
  assert.match(
    plan.keep.find((d) => d.id === times[0])!.reasons.join(),
    /partial snapshot, newer than every complete one/,
  );
  assert.deepEqual(
    plan.remove.map((d) => [d.id, d.reasons[0]]),
    [
      [times[2], "partial snapshot, and a newer complete one exists"],
      [times[4], "no rule keeps it"],
    ],
  );
  // Daily buckets too: a partial snapshot does not use up a day.
  const daily = planRetention(snaps, { keep_daily: 2, time_zone: "UTC" }, new Date("2026-06-01T00:00:00Z"));
  assert.deepEqual(daily.keep.map((d) => d.id).sort(), [times[0], times[1], times[3]].sort());
});

test("min_age: nothing younger is removed, by the snapshot's own time or by the destination's clock (#13.10)", () => {
  const now = new Date("2026-12-02T12:00:00Z");
  const snaps: SnapshotFacts[] = [
    { id: "new", time: new Date(now.getTime() - 1000), good: true },
    { id: "minutes", time: new Date(now.getTime() - 10 * 60_000), good: true },
    // Its host's clock was a day behind: by its own time it is old, the destination stored it a minute ago.
    { id: "behind", time: new Date(now.getTime() - DAY), good: true, storedAge: 60_000 },
    { id: "old", time: new Date(now.getTime() - 2 * DAY), good: true, storedAge: 2 * DAY },
  ];
  const plan = planRetention(snaps, { keep_last: 1, min_age: 3_600_000 }, now);
  assert.deepEqual(
    plan.remove.map((d) => d.id),
    ["old"],
  );
  assert.match(plan.keep.find((d) => d.id === "minutes")!.reasons.join(), /younger than min_age 1h/);
  assert.match(plan.keep.find((d) => d.id === "behind")!.reasons.join(), /by the destination's clock/);
  // The guard also holds max_age back.
  assert.deepEqual(
    planRetention(snaps, { max_age: 1000, min_age: 3_600_000 }, now).remove.map((d) => d.id),
    ["old"],
  );
});
