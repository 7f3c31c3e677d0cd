/**
 * The dead-man check: for every job and destination, the newest good snapshot, read from the
 * destination, and whether it is older than the job's frequency (or schedule) allows — the failure that never
 * produced an error (cron stopped, the machine is off, the job was disabled by mistake).
 */
import { closeDestinations, openDestinations, type RunOptions, withContext } from "../engine/context.ts";
import { choose, type Selection } from "../engine/select.ts";
import { previousRun, type Schedule } from "./cron.ts";
import { newestGood } from "./due.ts";
import { isDue, parseFrequency } from "./frequency.ts";

export interface DestinationStatus {
  job: string;
  destination: string;
  frequency?: string;
  /** ISO time of the newest complete snapshot, if any. */
  newestGood?: string;
  ageMs?: number;
  /** A whole period of the frequency went by without a good snapshot (or there is none). */
  overdue: boolean;
  /** Set when the destination could not be read. */
  error?: string;
}

const PERIOD_MS = { hourly: 3_600_000, daily: 86_400_000, weekly: 7 * 86_400_000, monthly: 31 * 86_400_000 };

/**
 * Whether a full period went by without a good snapshot: it was already due one period ago. A
 * destination without a frequency goes by the job's schedule: overdue when nothing good has come
 * since the fire before the last one (the last one's run may still be going).
 */
export function overdue(
  frequency: string | undefined,
  last: Date | undefined,
  now: Date,
  schedule?: Schedule,
): boolean {
  if (!last) return true;
  if (!frequency) {
    const lastFire = schedule ? previousRun(schedule, now) : undefined;
    const fireBefore =
      lastFire && schedule ? previousRun(schedule, new Date(lastFire.getTime() - 1)) : undefined;
    return fireBefore !== undefined && last < fireBefore;
  }
  const parsed = parseFrequency(frequency);
  if (!parsed) return false;
  const period = parsed.kind === "every" ? parsed.ms : PERIOD_MS[parsed.kind];
  const periodAgo = new Date(now.getTime() - period);
  return last < periodAgo && isDue(frequency, last, periodAgo).due;
}

export async function status(
  options: RunOptions & Selection & { job?: string; now?: Date },
): Promise<DestinationStatus[]> {
  const chosen = choose(
    options.config,
    options.job ? [options.job] : Object.keys(options.config.jobs),
    options,
  );
  const now = options.now ?? new Date();
  return withContext(options, async (ctx) => {
    const rows: DestinationStatus[] = [];
    for (const job of chosen.jobs) {
      const destinations = await openDestinations(options.config, job, undefined, {
        include: chosen.destinations(job),
      });
      try {
        for (const d of destinations) {
          const row: DestinationStatus = {
            job,
            destination: d.name,
            overdue: false,
            ...(d.frequency ? { frequency: d.frequency } : {}),
          };
          try {
            const last = await newestGood(d, job, ctx);
            if (last) {
              row.newestGood = last.toISOString();
              row.ageMs = now.getTime() - last.getTime();
            }
            row.overdue = overdue(d.frequency, last, now, options.config.jobs[job]?.schedule);
          } catch (error) {
            row.error = (error as Error).message;
          }
          rows.push(row);
        }
      } finally {
        await closeDestinations(destinations);
      }
    }
    return rows;
  });
}
