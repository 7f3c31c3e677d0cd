/** Wall-clock calendar fields of an instant in a time zone (retention buckets, frequencies). */

export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  /** 1 = Monday … 7 = Sunday. */
  weekday: number;
}

const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/** A reader of wall-clock fields in `timeZone` (default the system's); make one, use it many times. */
export function wallClock(timeZone?: string): (time: Date) => WallClock {
  const format = new Intl.DateTimeFormat("en-US", {
    ...(timeZone ? { timeZone } : {}),
    hourCycle: "h23",
    year: "numeric",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    weekday: "short",
  });
  return (time) => {
    const parts = Object.fromEntries(format.formatToParts(time).map((p) => [p.type, p.value]));
    return {
      year: Number(parts.year),
      month: Number(parts.month),
      day: Number(parts.day),
      hour: Number(parts.hour),
      weekday: WEEKDAYS.indexOf(parts.weekday ?? "Mon") + 1,
    };
  };
}

/** Days since 1970-01-01 of a calendar date (no time zone involved). */
export const dayNumber = (c: Pick<WallClock, "year" | "month" | "day">): number =>
  Date.UTC(c.year, c.month - 1, c.day) / 86_400_000;
