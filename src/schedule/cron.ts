/**
 * `schedule:` — when a job runs under `cairn daemon`, a systemd timer or cron. A cron expression
 * (five fields, or six with seconds first; @hourly, @daily … too), read by croner with cron's own
 * rule that a restricted day-of-month and day-of-week match when either does. The same expression
 * becomes systemd OnCalendar= lines for `cairn schedule install`.
 */
import { Cron } from "croner";
import { z } from "zod";

export interface Schedule {
  cron: string;
  /** IANA zone the expression is read in; default the machine's local time, as cron does. */
  time_zone?: string;
}

function cronOf(schedule: Schedule): Cron {
  return new Cron(schedule.cron, {
    paused: true,
    mode: "5-or-6-parts",
    ...(schedule.time_zone ? { timezone: schedule.time_zone } : {}),
  });
}

/** Why an expression is refused, or undefined when croner takes it. */
function problemOf(schedule: Schedule): string | undefined {
  if (schedule.time_zone) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: schedule.time_zone });
    } catch {
      return `unknown time zone ${JSON.stringify(schedule.time_zone)} (an IANA name such as Europe/Paris)`;
    }
  }
  try {
    if (!cronOf(schedule).nextRun()) return `${JSON.stringify(schedule.cron)} never runs`;
  } catch (error) {
    return `not a cron expression: ${JSON.stringify(schedule.cron)} (${(error as Error).message}); e.g. "30 2 * * *" for 02:30 every day`;
  }
  return undefined;
}

export const scheduleSchema = z
  .union([z.string(), z.object({ cron: z.string(), time_zone: z.string().optional() }).strict()])
  .transform((value, ctx): Schedule => {
    const schedule =
      typeof value === "string" ? { cron: value.trim() } : { ...value, cron: value.cron.trim() };
    const problem = problemOf(schedule);
    if (problem) {
      ctx.addIssue({ code: "custom", message: problem });
      return z.NEVER;
    }
    return schedule;
  });

/** The first time the schedule fires strictly after `after`. */
export function nextRun(schedule: Schedule, after: Date): Date | undefined {
  return cronOf(schedule).nextRun(after) ?? undefined;
}

/** The last time the schedule fired at or before `now`. */
export function previousRun(schedule: Schedule, now: Date): Date | undefined {
  // croner's previousRuns looks strictly before its reference.
  return cronOf(schedule).previousRuns(1, new Date(now.getTime() + 1))[0];
}

// ── systemd OnCalendar= ────────────────────────────────────────────────────────────────────

const NICKNAMES: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

export class UnsupportedSchedule extends Error {}

/** The values a cron field allows, or "*" when it allows all of them. */
function expand(field: string, min: number, max: number, names: string[] = [], nameBase = 0): number[] | "*" {
  if (field === "*" || field === "?") return "*";
  const value = (text: string): number => {
    const named = names.indexOf(text.toLowerCase());
    const n = named >= 0 ? named + nameBase : /^\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isInteger(n)) throw new UnsupportedSchedule(`"${text}" in "${field}"`);
    return n;
  };
  const values = new Set<number>();
  for (const item of field.split(",")) {
    const [range, stepText] = item.split("/");
    const step = stepText === undefined ? 1 : value(stepText);
    let [from, to] = [min, max];
    if (range !== "*") {
      const [a, b] = (range ?? "").split("-");
      from = value(a ?? "");
      to = b === undefined ? (stepText === undefined ? from : max) : value(b);
    }
    if (step < 1 || from < min || to > max || from > to)
      throw new UnsupportedSchedule(`"${item}" is outside ${min}-${max}`);
    for (let n = from; n <= to; n += step) values.add(n);
  }
  return [...values].sort((a, b) => a - b);
}

const list = (values: number[] | "*", pad = 0) =>
  values === "*" ? "*" : values.map((n) => String(n).padStart(pad, "0")).join(",");

/**
 * The schedule as systemd OnCalendar= values (a timer fires when any of them matches): two when
 * both day fields are restricted, since cron then runs on either and OnCalendar needs both.
 * Throws UnsupportedSchedule for what OnCalendar cannot say exactly (L, W, #).
 */
export function onCalendar(schedule: Schedule): string[] {
  const text = NICKNAMES[schedule.cron.toLowerCase()] ?? schedule.cron;
  const fields = text.split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) throw new UnsupportedSchedule(text);
  const [second, minute, hour, dom, month, dow] = fields.length === 6 ? fields : ["0", ...fields];
  if (/[LW#]/i.test(`${dom} ${dow}`))
    throw new UnsupportedSchedule(`L, W and # (in "${text}") have no OnCalendar equivalent`);
  const seconds = list(expand(second ?? "0", 0, 59), 2);
  const minutes = list(expand(minute ?? "*", 0, 59), 2);
  const hours = list(expand(hour ?? "*", 0, 23), 2);
  const days = list(expand(dom ?? "*", 1, 31), 2);
  const months = list(expand(month ?? "*", 1, 12, MONTHS, 1), 2);
  const weekdayValues = expand(dow ?? "*", 0, 7, DAYS);
  const weekdays =
    weekdayValues === "*"
      ? "*"
      : [...new Set(weekdayValues.map((n) => n % 7))].sort((a, b) => a - b).map((n) => SYSTEMD_DAYS[n]);
  const time = `${hours}:${minutes}:${seconds}`;
  const zone = schedule.time_zone ? ` ${schedule.time_zone}` : "";
  const weekdayPart = weekdays === "*" || weekdays.length === 7 ? "" : `${weekdays.join(",")} `;
  // cron: when either day field starts with "*", both must match; otherwise either may.
  const eitherDay =
    !dom?.startsWith("*") && !dom?.startsWith("?") && !dow?.startsWith("*") && !dow?.startsWith("?");
  if (eitherDay && weekdayPart)
    return [`*-${months}-${days} ${time}${zone}`, `${weekdayPart}*-${months}-* ${time}${zone}`];
  return [`${weekdayPart}*-${months}-${days} ${time}${zone}`];
}

/** The schedule as the five fields of a crontab line (six-field expressions have no cron form). */
export function crontabFields(schedule: Schedule): string {
  const text = NICKNAMES[schedule.cron.toLowerCase()] ?? schedule.cron;
  if (text.split(/\s+/).length !== 5)
    throw new UnsupportedSchedule(`"${schedule.cron}" has seconds, which cron cannot express`);
  return text;
}
