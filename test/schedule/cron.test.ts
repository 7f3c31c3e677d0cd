/**
 * `schedule:` expressions: croner's reading of them, and their translation to systemd OnCalendar=
 * checked against systemd itself (`systemd-analyze calendar` computes when a timer would fire).
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { test } from "node:test";
import { buildRootSchema } from "../../src/config/schema.ts";
import { createRegistry } from "../../src/registry.ts";
import {
  crontabFields,
  nextRun,
  onCalendar,
  previousRun,
  type Schedule,
  scheduleSchema,
  UnsupportedSchedule,
} from "../../src/schedule/cron.ts";

const systemd = spawnSync("systemd-analyze", ["--version"]).status === 0;

/** The next `n` times systemd fires a timer with these OnCalendar= lines, after `base`. */
function systemdRuns(lines: string[], base: Date, n: number): string[] {
  const times: number[] = [];
  for (const line of lines) {
    const output = execFileSync(
      "systemd-analyze",
      ["calendar", `--base-time=@${Math.floor(base.getTime() / 1000)}`, `--iterations=${n}`, line],
      { encoding: "utf8", env: { ...process.env, TZ: "UTC", SYSTEMD_COLORS: "0" } },
    );
    for (const match of output.matchAll(
      /(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC/g,
    ))
      times.push(Date.parse(`${match[1]?.replace(" ", "T")}Z`));
  }
  return [...new Set(times)]
    .sort((a, b) => a - b)
    .slice(0, n)
    .map((t) => new Date(t).toISOString());
}

function cronerRuns(schedule: Schedule, base: Date, n: number): string[] {
  const runs: string[] = [];
  let at = base;
  for (let i = 0; i < n; i++) {
    const next = nextRun(schedule, at);
    if (!next) break;
    runs.push(next.toISOString());
    at = next;
  }
  return runs;
}

const cases: Schedule[] = [
  { cron: "30 2 * * *" },
  { cron: "*/15 * * * *" },
  { cron: "0 3 * * 1-5" },
  { cron: "0 4 1,15 * *" },
  { cron: "0 4 1 * mon" }, // both day fields: on the 1st OR on Mondays
  { cron: "15 1 * jan,jul sun" },
  { cron: "0 0-6/2 * * *" },
  { cron: "*/20 * * * * *" },
  { cron: "@weekly" },
  { cron: "30 2 * * *", time_zone: "Europe/Paris" }, // across the end of summer time
  { cron: "30 2 * * *", time_zone: "America/New_York" },
];

test("OnCalendar= lines fire exactly when the cron expression does (systemd-analyze as the oracle)", {
  skip: systemd ? false : "systemd-analyze is not installed (package systemd)",
}, () => {
  const base = new Date("2026-10-20T00:00:00Z");
  for (const schedule of cases) {
    const lines = onCalendar(schedule);
    const n = schedule.cron.startsWith("*/20 * * * * *") ? 200 : 40;
    assert.deepEqual(
      systemdRuns(lines, base, n),
      cronerRuns(schedule, base, n),
      `${JSON.stringify(schedule)} → ${lines.join(" | ")}`,
    );
  }
});

test("OnCalendar= cannot say L, W or #: a clear refusal, not a wrong timer", () => {
  assert.throws(() => onCalendar({ cron: "0 3 L * *" }), UnsupportedSchedule);
  assert.throws(() => onCalendar({ cron: "0 3 * * 5#2" }), UnsupportedSchedule);
  assert.throws(() => crontabFields({ cron: "*/5 * * * * *" }), /seconds, which cron cannot express/);
  assert.equal(crontabFields({ cron: "@daily" }), "0 0 * * *");
});

test("previous and next runs around a fire time", () => {
  const schedule = { cron: "0 3 * * *", time_zone: "UTC" };
  const at = new Date("2026-03-10T03:00:00Z");
  assert.equal(previousRun(schedule, at)?.toISOString(), "2026-03-10T03:00:00.000Z");
  assert.equal(previousRun(schedule, new Date(at.getTime() - 1))?.toISOString(), "2026-03-09T03:00:00.000Z");
  assert.equal(nextRun(schedule, at)?.toISOString(), "2026-03-11T03:00:00.000Z");
});

test("bad schedules are refused in the config with what to write instead", () => {
  const parse = (value: unknown) => scheduleSchema.safeParse(value);
  assert.match(
    String(parse("every night").error?.issues[0]?.message),
    /not a cron expression.*e\.g\. "30 2 \* \* \*"/,
  );
  assert.match(String(parse("61 * * * *").error?.issues[0]?.message), /not a cron expression/);
  assert.match(
    String(parse({ cron: "0 3 * * *", time_zone: "Mars/Olympus" }).error?.issues[0]?.message),
    /unknown time zone "Mars\/Olympus"/,
  );
  assert.deepEqual(parse({ cron: " 0 3 * * * ", time_zone: "Europe/Paris" }).data, {
    cron: "0 3 * * *",
    time_zone: "Europe/Paris",
  });
  const root = buildRootSchema(createRegistry()).safeParse({
    jobs: {
      www: {
        schedule: "0 3 * * *",
        sources: { site: { type: "files", paths: ["/srv"] } },
        destinations: { here: { type: "local", path: "/backups" } },
      },
    },
  });
  assert.ok(root.success, JSON.stringify(root.error?.issues));
  assert.deepEqual((root.data.jobs.www as { schedule?: Schedule }).schedule, { cron: "0 3 * * *" });
});
