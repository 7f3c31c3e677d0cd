/**
 * Retention as a pure function: from the snapshots of one job on one destination (read from their
 * manifests) and a policy, which to keep and which to remove — each with its reasons. The rules
 * combine the way restic's `forget` combines them (a snapshot is kept if any rule keeps it), and
 * restic itself is the oracle in the tests. Deliberate differences: `week_start` (restic's weeks
 * are ISO weeks, starting on Monday, which is the default here), `max_age`, and the newest good
 * snapshot, which is never removed whatever the policy says.
 */
import { dayNumber, type WallClock, wallClock } from "../engine/clock.ts";

export interface RetentionPolicy {
  /** The n newest snapshots. -1: all. */
  keep_last?: number;
  /** The newest snapshot of each of the last n hours (days, weeks, months, years) that have one. -1: every. */
  keep_hourly?: number;
  keep_daily?: number;
  keep_weekly?: number;
  keep_monthly?: number;
  keep_yearly?: number;
  /** Every snapshot taken within this many ms before the newest one (restic's --keep-within). */
  keep_within?: number;
  /** Remove snapshots older than this many ms (before now), whatever the other rules say. */
  max_age?: number;
  /**
   * Never remove a snapshot younger than this many ms, by the snapshot's own time or by the
   * destination's clock (`SnapshotFacts.storedAge`): a wrong clock can only make it keep more.
   */
  min_age?: number;
  /** First day of a week for keep_weekly: 1 = Monday (ISO, restic) … 7 = Sunday. */
  week_start?: number;
  /** IANA time zone in which hours, days, weeks, months and years are counted; default the system's. */
  time_zone?: string;
}

export interface SnapshotFacts {
  id: string;
  time: Date;
  /** Complete: only such snapshots count toward the rules. A partial one (a source failed) is not. */
  good: boolean;
  /** Age by the destination's own clock (its object times), when the destination has one. */
  storedAge?: number;
}

export interface Decision {
  id: string;
  time: Date;
  reasons: string[];
}

export interface RetentionPlan {
  keep: Decision[];
  remove: Decision[];
}

/** Whether the policy keeps anything by rule: without one, nothing is removed (as restic). */
export function hasRules(policy: RetentionPolicy): boolean {
  const counts = [
    policy.keep_last,
    policy.keep_hourly,
    policy.keep_daily,
    policy.keep_weekly,
    policy.keep_monthly,
    policy.keep_yearly,
  ];
  return (
    counts.some((n) => n !== undefined && n !== 0) ||
    policy.keep_within !== undefined ||
    policy.max_age !== undefined
  );
}

interface Rule {
  name: string;
  count: number;
  bucket: (clock: WallClock, index: number) => string;
}

function rules(policy: RetentionPolicy): Rule[] {
  const weekStart = policy.week_start ?? 1;
  const candidates: [string, number | undefined, Rule["bucket"]][] = [
    ["last", policy.keep_last, (_, index) => String(index)],
    ["hourly", policy.keep_hourly, (c) => `${c.year}-${c.month}-${c.day} ${c.hour}`],
    ["daily", policy.keep_daily, (c) => `${c.year}-${c.month}-${c.day}`],
    [
      "weekly",
      policy.keep_weekly,
      // The week is named by the day it starts on.
      (c) => String(dayNumber(c) - ((c.weekday - weekStart + 7) % 7)),
    ],
    ["monthly", policy.keep_monthly, (c) => `${c.year}-${c.month}`],
    ["yearly", policy.keep_yearly, (c) => String(c.year)],
  ];
  return candidates
    .filter(([, count]) => count !== undefined && count !== 0)
    .map(([name, count, bucket]) => ({ name, count: count as number, bucket }));
}

const HOUR = 3_600_000;
const describe = (ms: number): string =>
  ms % (24 * HOUR) === 0
    ? `${ms / (24 * HOUR)}d`
    : ms % HOUR === 0
      ? `${ms / HOUR}h`
      : `${Math.round(ms / 1000)}s`;

/** Whether any keep_ rule (count or keep_within) is set: without one, max_age alone decides. */
const hasKeepRules = (policy: RetentionPolicy) =>
  rules(policy).length > 0 || policy.keep_within !== undefined;

/**
 * The plan for one job's snapshots on one destination. `now` matters for `max_age` and `min_age`.
 * Only good (complete) snapshots count toward the rules; a partial one is kept while it is newer
 * than the newest good one (it holds the newest data of the sources that worked) and removed once
 * a good one is newer. Snapshots with the same time keep their given order.
 */
export function planRetention(snapshots: SnapshotFacts[], policy: RetentionPolicy, now: Date): RetentionPlan {
  const sorted = [...snapshots].sort((a, b) => b.time.getTime() - a.time.getTime());
  if (!hasRules(policy))
    return {
      keep: sorted.map((s) => ({ id: s.id, time: s.time, reasons: ["no retention policy"] })),
      remove: [],
    };
  const byRule = keptByRules(
    sorted.filter((s) => s.good),
    policy,
  );
  const newestGood = sorted.find((s) => s.good);
  const plan: RetentionPlan = { keep: [], remove: [] };
  for (const snapshot of sorted) {
    const decision = { id: snapshot.id, time: snapshot.time };
    const age = now.getTime() - snapshot.time.getTime();
    const tooOld = policy.max_age !== undefined && age > policy.max_age;
    const young = tooYoung(snapshot, policy, age);
    if (snapshot === newestGood) {
      const reasons = tooOld ? [] : (byRule.get(snapshot) ?? []);
      plan.keep.push({ ...decision, reasons: [...reasons, "the newest good snapshot is always kept"] });
      continue;
    }
    const removal = tooOld
      ? `older than max_age ${describe(policy.max_age as number)}`
      : whyRemove(snapshot, newestGood, policy, byRule.get(snapshot));
    if (removal === undefined)
      plan.keep.push({ ...decision, reasons: keepReasons(snapshot, policy, byRule.get(snapshot)) });
    else if (young) plan.keep.push({ ...decision, reasons: [young] });
    else plan.remove.push({ ...decision, reasons: [removal] });
  }
  return plan;
}

/** The reasons each good snapshot is kept by the keep_ rules (restic's forget), newest first. */
function keptByRules(good: SnapshotFacts[], policy: RetentionPolicy): Map<SnapshotFacts, string[]> {
  const active = rules(policy);
  const last = new Map<Rule, string>();
  const clock = wallClock(policy.time_zone);
  const newest = good[0]?.time.getTime();
  const kept = new Map<SnapshotFacts, string[]>();
  good.forEach((snapshot, index) => {
    const reasons: string[] = [];
    const wall = clock(snapshot.time);
    for (const rule of active) {
      if (rule.count === 0) continue;
      const bucket = rule.bucket(wall, index);
      if (last.get(rule) === bucket) continue;
      last.set(rule, bucket);
      if (rule.count > 0) rule.count--;
      reasons.push(`${rule.name} snapshot`);
    }
    if (
      policy.keep_within !== undefined &&
      newest !== undefined &&
      newest - snapshot.time.getTime() < policy.keep_within
    )
      reasons.push(`within ${describe(policy.keep_within)} of the newest`);
    if (reasons.length > 0) kept.set(snapshot, reasons);
  });
  return kept;
}

function whyRemove(
  snapshot: SnapshotFacts,
  newestGood: SnapshotFacts | undefined,
  policy: RetentionPolicy,
  ruleReasons: string[] | undefined,
): string | undefined {
  if (!snapshot.good)
    return newestGood && newestGood.time.getTime() >= snapshot.time.getTime()
      ? "partial snapshot, and a newer complete one exists"
      : undefined;
  if (!hasKeepRules(policy)) return undefined; // max_age alone keeps what is younger
  return ruleReasons ? undefined : "no rule keeps it";
}

function keepReasons(snapshot: SnapshotFacts, policy: RetentionPolicy, ruleReasons?: string[]): string[] {
  if (!snapshot.good) return ["partial snapshot, newer than every complete one"];
  if (ruleReasons) return ruleReasons;
  return [`younger than max_age ${describe(policy.max_age as number)}`];
}

/** Why a snapshot is too young to remove, by its own time or the destination's clock; else undefined. */
function tooYoung(snapshot: SnapshotFacts, policy: RetentionPolicy, age: number): string | undefined {
  const min = policy.min_age ?? 0;
  if (min <= 0) return undefined;
  if (age < min) return `younger than min_age ${describe(min)}`;
  if (snapshot.storedAge !== undefined && snapshot.storedAge < min)
    return `younger than min_age ${describe(min)} by the destination's clock`;
  return undefined;
}

/** Snapshots dated after `now` (beyond a small tolerance): a clock somewhere is wrong. */
export function futureSnapshots(snapshots: SnapshotFacts[], now: Date, toleranceMs = 5 * 60_000) {
  return snapshots.filter((s) => s.time.getTime() > now.getTime() + toleranceMs);
}
