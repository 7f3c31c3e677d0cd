/**
 * How often a job (or one of its destinations) wants a snapshot, PolyArchiv style: cairn can run
 * from cron every hour, and a run skips what is not due. Calendar frequencies count in wall-clock
 * time: `daily` is once per calendar day, `weekly` once per ISO week, `monthly:10` once per month
 * from its 10th day on, `hourly` once per clock hour; a duration (`6h`, `2d`) is "at least this long
 * after the last good snapshot".
 */
import { z } from "zod";
import { dayNumber, type WallClock, wallClock } from "../engine/clock.ts";
import { formatDuration, parseDuration } from "../kit/duration.ts";

export type Frequency =
  | { kind: "hourly" | "daily" | "weekly" }
  | { kind: "monthly"; day: number }
  | { kind: "every"; ms: number };

export function parseFrequency(text: string): Frequency | undefined {
  const value = text.trim().toLowerCase();
  if (value === "hourly" || value === "daily" || value === "weekly") return { kind: value };
  const monthly = /^monthly(?::(\d{1,2}))?$/.exec(value);
  if (monthly) {
    const day = Number(monthly[1] ?? 1);
    return day >= 1 && day <= 28 ? { kind: "monthly", day } : undefined;
  }
  const ms = parseDuration(value);
  return ms !== undefined && ms > 0 ? { kind: "every", ms } : undefined;
}

export const frequencySchema = z.string().transform((value, ctx) => {
  const parsed = parseFrequency(value);
  if (!parsed) {
    ctx.addIssue({
      code: "custom",
      message: `not a frequency: ${JSON.stringify(value)} (hourly, daily, weekly, monthly, monthly:10 with a day from 1 to 28, or a duration such as 6h)`,
    });
    return z.NEVER;
  }
  return value.trim().toLowerCase();
});

export interface Due {
  due: boolean;
  /** Why: for the run's report. */
  reason: string;
}

/** Whether a snapshot is due, given the time of the last good one (undefined: none yet). */
export function isDue(frequency: string, lastGood: Date | undefined, now: Date, timeZone?: string): Due {
  const parsed = parseFrequency(frequency);
  if (!parsed) throw new Error(`not a frequency: ${frequency}`);
  if (!lastGood) return { due: true, reason: "no good snapshot yet" };
  const since = `the last good snapshot is from ${lastGood.toISOString().replace(/\.\d+Z$/, "Z")}`;
  if (parsed.kind === "every") {
    const age = now.getTime() - lastGood.getTime();
    return age >= parsed.ms
      ? { due: true, reason: `${since}, ${formatDuration(age)} ago (every ${frequency})` }
      : {
          due: false,
          reason: `${since}; next one due after ${formatDuration(parsed.ms - age)} more (every ${frequency})`,
        };
  }
  const clock = wallClock(timeZone);
  const a = clock(lastGood);
  const b = clock(now);
  let same: boolean;
  switch (parsed.kind) {
    case "hourly":
      same = dayNumber(a) === dayNumber(b) && a.hour === b.hour;
      break;
    case "daily":
      same = dayNumber(a) === dayNumber(b);
      break;
    case "weekly":
      same = dayNumber(a) - (a.weekday - 1) === dayNumber(b) - (b.weekday - 1);
      break;
    case "monthly": {
      // The period runs from day D of a month to day D of the next.
      const period = (w: WallClock) => w.year * 12 + w.month - 1 - (w.day < parsed.day ? 1 : 0);
      same = period(a) === period(b);
      break;
    }
  }
  const what = parsed.kind === "monthly" ? `monthly from day ${parsed.day}` : parsed.kind;
  return same
    ? {
        due: false,
        reason: `${since}: already done for this ${parsed.kind === "daily" ? "day" : parsed.kind === "hourly" ? "hour" : parsed.kind === "weekly" ? "week" : "month"} (${what})`,
      }
    : { due: true, reason: `${since} (${what})` };
}
