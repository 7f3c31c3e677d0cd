/**
 * Retention as a pure function: from the snapshots of one job on one destination (read from their
 * manifests) and a policy, which to keep and which to remove — each with its reasons. The rules
 * combine the way restic's `forget` combines them (a snapshot is kept if any rule keeps it), and
 * restic itself is the oracle in the tests. Deliberate differences: `week_start` (restic's weeks
 * are ISO weeks, starting on Monday, which is the default here), `max_age`, and the newest good
 * snapshot, which is never removed whatever the policy says.
 */
import { dayNumber, type WallClock, wallClock } from "../core/clock.ts";

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
  /** First day of a week for keep_weekly: 1 = Monday (ISO, restic) … 7 = Sunday. */
  week_start?: number;
  /** IANA time zone in which hours, days, weeks, months and years are counted; default the system's. */
  time_zone?: string;
}

export interface SnapshotFacts {
  id: string;
  time: Date;
  /** Complete and readable: only such a snapshot counts as "the newest good one". */
  good: boolean;
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

/**
 * The plan for one job's snapshots on one destination. `now` only matters for `max_age`.
 * Snapshots with the same time keep their given order (newest first after sorting).
 */
export function planRetention(snapshots: SnapshotFacts[], policy: RetentionPolicy, now: Date): RetentionPlan {
  const sorted = [...snapshots].sort((a, b) => b.time.getTime() - a.time.getTime());
  if (!hasRules(policy))
    return {
      keep: sorted.map((s) => ({ id: s.id, time: s.time, reasons: ["no retention policy"] })),
      remove: [],
    };
  const clock = wallClock(policy.time_zone);
  const active = rules(policy);
  const last = new Map<Rule, string>();
  const newest = sorted[0]?.time.getTime();
  const newestGood = sorted.find((s) => s.good)?.id;
  const plan: RetentionPlan = { keep: [], remove: [] };
  sorted.forEach((snapshot, index) => {
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
    const tooOld = policy.max_age !== undefined && now.getTime() - snapshot.time.getTime() > policy.max_age;
    const decision = { id: snapshot.id, time: snapshot.time, reasons };
    if (snapshot.id === newestGood) {
      plan.keep.push({
        ...decision,
        reasons: [...(tooOld ? [] : reasons), "the newest good snapshot is always kept"],
      });
    } else if (tooOld) {
      plan.remove.push({
        ...decision,
        reasons: [`older than max_age ${describe(policy.max_age as number)}`],
      });
    } else if (reasons.length > 0) plan.keep.push(decision);
    else plan.remove.push({ ...decision, reasons: ["no rule keeps it"] });
  });
  return plan;
}
