/** The `retention:` block of a job or of one of its destinations. */
import { z } from "zod";
import { parseDuration } from "../kit/duration.ts";
import type { RetentionPolicy } from "./policy.ts";

const WEEK_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"] as const;

const keepCount = () =>
  z
    .number()
    .int()
    .min(-1)
    .refine((n) => n !== 0, {
      message: "0 keeps nothing by this rule: leave the rule out, or write -1 to keep all",
    });

const count = (what: string) =>
  keepCount().optional().describe(`keep the newest snapshot of each of the last n ${what}; -1: all`);

const duration = (example: string) =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: "custom", message: `not a duration: ${JSON.stringify(value)} (e.g. ${example})` });
      return z.NEVER;
    }
    return ms;
  });

export const retentionSchema = z
  .object({
    keep_last: keepCount().optional().describe("keep the n newest snapshots; -1: all"),
    keep_hourly: count("hours"),
    keep_daily: count("days"),
    keep_weekly: count("weeks"),
    keep_monthly: count("months"),
    keep_yearly: count("years"),
    keep_within: duration("30d")
      .optional()
      .describe("keep every snapshot taken within this long before the newest one, e.g. 14d"),
    max_age: duration("400d")
      .optional()
      .describe("remove snapshots older than this (before now), whatever the keep_ rules say"),
    min_age: duration("1h")
      .prefault("1h")
      .describe(
        "never remove a snapshot younger than this, by its own time or by the destination's clock (0 turns the guard off)",
      ),
    week_start: z
      .enum(WEEK_DAYS)
      .default("monday")
      .describe("first day of a week for keep_weekly (monday: ISO weeks, as restic)"),
    time_zone: z
      .string()
      .optional()
      .refine(
        (zone) => {
          if (zone === undefined) return true;
          try {
            new Intl.DateTimeFormat("en-US", { timeZone: zone });
            return true;
          } catch {
            return false;
          }
        },
        { message: "not a time zone: write an IANA name such as Europe/Paris or UTC" },
      )
      .describe("time zone hours, days, weeks, months and years are counted in; default the system's"),
    prune: z
      .enum(["manual", "after_backup"])
      .default("manual")
      .describe("after_backup: prune this destination after every successful backup of the job"),
    early_deletion: z
      .enum(["keep", "delete"])
      .default("keep")
      .describe(
        "keep: a snapshot the policy drops stays until the destination's minimum billed storage time is over (deleting sooner is billed as if kept); delete: remove it anyway",
      ),
    leftovers_grace: duration("24h")
      .prefault("24h")
      .describe("snapshot folders without a manifest (runs that died) are removed once this old"),
  })
  .strict();

export type RetentionSettings = z.output<typeof retentionSchema>;

export function policyOf(settings: RetentionSettings): RetentionPolicy {
  const { week_start, prune: _prune, leftovers_grace: _grace, ...rest } = settings;
  return {
    ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)),
    week_start: WEEK_DAYS.indexOf(week_start) + 1,
  } as RetentionPolicy;
}
