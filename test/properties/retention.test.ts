/**
 * Properties of retention (issue #14), on seeded random histories (CAIRN_PROPERTY_SEED replays):
 * for any history of complete and partial snapshots and any policy, the plan keeps the newest good
 * snapshot, never removes one a rule keeps (an independent count, not the code under test), never
 * removes one younger than min_age, does not change its mind about good snapshots when partial
 * ones are added; and a folder of one job never matches another job's folder pattern.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { newSnapshotId, snapshotFolder, snapshotFolderPattern } from "../../src/engine/snapshot.ts";
import { planRetention, type RetentionPolicy, type SnapshotFacts } from "../../src/retention/policy.ts";
import { random, seedFrom } from "../helpers/random.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = new Date("2026-12-02T12:00:00Z");

function history(next: () => number): SnapshotFacts[] {
  const count = 1 + Math.floor(next() * 40);
  return Array.from({ length: count }, (_, i) => {
    const time = new Date(NOW.getTime() - Math.floor(next() * 60 * DAY));
    return { id: `${newSnapshotId(time)}-${i}`, time, good: next() > 0.25 };
  });
}

function policyOf(next: () => number): RetentionPolicy {
  const maybe = (p: number, value: () => number) => (next() < p ? value() : undefined);
  const policy: RetentionPolicy = {
    keep_last: maybe(0.6, () => 1 + Math.floor(next() * 5)),
    keep_daily: maybe(0.6, () => 1 + Math.floor(next() * 10)),
    max_age: maybe(0.3, () => (10 + Math.floor(next() * 50)) * DAY),
    min_age: maybe(0.5, () => Math.floor(next() * 3 * DAY)),
    time_zone: "UTC",
  };
  if (policy.keep_last === undefined && policy.keep_daily === undefined) policy.keep_last = 1;
  return Object.fromEntries(Object.entries(policy).filter(([, v]) => v !== undefined)) as RetentionPolicy;
}

/** What keep_last and keep_daily keep, counted plainly over the good snapshots, newest first. */
function keptByOracle(snapshots: SnapshotFacts[], policy: RetentionPolicy): Set<string> {
  const good = snapshots.filter((s) => s.good).sort((a, b) => b.time.getTime() - a.time.getTime());
  const kept = new Set(good.slice(0, policy.keep_last ?? 0).map((s) => s.id));
  const days = new Set<string>();
  for (const s of good) {
    const day = s.time.toISOString().slice(0, 10);
    if (days.has(day) || days.size >= (policy.keep_daily ?? 0)) continue;
    days.add(day);
    kept.add(s.id);
  }
  return kept;
}

test("property: retention keeps the newest good snapshot and every snapshot a rule keeps, whatever the history", (t) => {
  const seed = seedFrom("CAIRN_PROPERTY_SEED");
  t.diagnostic(`seed ${seed} (CAIRN_PROPERTY_SEED=${seed} replays it)`);
  const next = random(seed);
  for (let round = 0; round < 500; round++) {
    const snapshots = history(next);
    const policy = policyOf(next);
    const what = `round ${round}, seed ${seed}, policy ${JSON.stringify(policy)}`;
    const plan = planRetention(snapshots, policy, NOW);
    const kept = new Set(plan.keep.map((d) => d.id));
    const removed = new Set(plan.remove.map((d) => d.id));
    assert.equal(kept.size + removed.size, snapshots.length, `every snapshot decided once: ${what}`);
    for (const id of kept) assert.ok(!removed.has(id), what);
    const newestGood = snapshots.filter((s) => s.good).sort((a, b) => b.time.getTime() - a.time.getTime())[0];
    if (newestGood) assert.ok(kept.has(newestGood.id), `the newest good snapshot is kept: ${what}`);
    for (const s of snapshots) {
      const age = NOW.getTime() - s.time.getTime();
      if (policy.min_age !== undefined && age < policy.min_age)
        assert.ok(kept.has(s.id), `younger than min_age, removed: ${s.id}: ${what}`);
    }
    for (const id of keptByOracle(snapshots, policy)) {
      const s = snapshots.find((x) => x.id === id)!;
      const tooOld = policy.max_age !== undefined && NOW.getTime() - s.time.getTime() > policy.max_age;
      if (!tooOld) assert.ok(kept.has(id), `a rule keeps ${id}, the plan removed it: ${what}`);
    }
    // Metamorphic: the decisions about good snapshots do not depend on the partial ones.
    const goodOnly = planRetention(
      snapshots.filter((s) => s.good),
      policy,
      NOW,
    );
    for (const d of goodOnly.remove) assert.ok(removed.has(d.id), `partials changed ${d.id}: ${what}`);
    for (const d of goodOnly.keep) assert.ok(kept.has(d.id), `partials changed ${d.id}: ${what}`);
  }
});

test("property: a folder of one job never matches another job's folder pattern", (t) => {
  const seed = seedFrom("CAIRN_PROPERTY_SEED");
  t.diagnostic(`seed ${seed} (CAIRN_PROPERTY_SEED=${seed} replays it)`);
  const next = random(seed);
  const pieces = ["a", "b", "a-b", "b-a", "app", "app-2026", "x.y", "db", "db-1"];
  const templates = [
    "{job}",
    "{job}-%Y",
    "%Y/{job}",
    "backups/{job}/%m",
    "{job}/%Y-%m-%d",
    "{hostname}/{job}",
  ];
  for (let round = 0; round < 2000; round++) {
    const a = pieces[Math.floor(next() * pieces.length)]!;
    const b = pieces[Math.floor(next() * pieces.length)]!;
    if (a === b) continue;
    const template = templates[Math.floor(next() * templates.length)]!;
    const time = new Date(NOW.getTime() - Math.floor(next() * 400 * DAY));
    const folder = snapshotFolder(template, b, newSnapshotId(time), time);
    assert.ok(
      snapshotFolderPattern(template, b).test(folder),
      `own folder ${folder} (${template}, seed ${seed})`,
    );
    assert.ok(
      !snapshotFolderPattern(template, a).test(folder),
      `job ${a} claims ${b}'s folder ${folder} (template ${template}, seed ${seed})`,
    );
  }
});
