/**
 * restic as the oracle: a random history (seeded; the seed is printed) is created in a throwaway
 * restic repository with `restic backup --time …` in Europe/Paris, and for each policy cairn must
 * keep exactly what `restic forget --dry-run --json` keeps.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { planRetention, type RetentionPolicy } from "../../src/retention/policy.ts";
import { hasProgram, tempDir } from "../helpers/env.ts";
import { random } from "../helpers/random.ts";

const run = promisify(execFile);
const skip = hasProgram("restic") ? false : "needs restic (.ci/system-deps installs it)";
const ZONE = "Europe/Paris";
const DAY = 86_400_000;

/** Wall-clock times in Paris: bursts on one day, daily runs, gaps of weeks, the DST weekends. */
function wallTimes(next: () => number, count: number): string[] {
  const pad = (n: number) => String(n).padStart(2, "0");
  const times = new Set<string>([
    "2025-03-30 01:30:00",
    "2025-03-30 04:15:00",
    "2025-10-26 01:45:00",
    "2025-10-26 03:30:00",
  ]);
  let day = Date.UTC(2024, 11, 20);
  while (times.size < count) {
    const step = next();
    day +=
      step < 0.15
        ? 0
        : step < 0.75
          ? DAY
          : step < 0.93
            ? DAY * Math.ceil(next() * 6)
            : DAY * (14 + Math.floor(next() * 30));
    const date = new Date(day);
    const hour = Math.floor(next() * 24);
    if (hour === 2) continue; // 02:xx does not exist, or exists twice, on DST days
    times.add(
      `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(hour)}:${pad(Math.floor(next() * 60))}:${pad(Math.floor(next() * 60))}`,
    );
  }
  return [...times];
}

const POLICIES: [RetentionPolicy, string[]][] = [
  [{ keep_last: 4 }, ["--keep-last", "4"]],
  [{ keep_daily: 7 }, ["--keep-daily", "7"]],
  [{ keep_hourly: 12, keep_weekly: 3 }, ["--keep-hourly", "12", "--keep-weekly", "3"]],
  [
    { keep_daily: 7, keep_weekly: 5, keep_monthly: 6, keep_yearly: 3 },
    ["--keep-daily", "7", "--keep-weekly", "5", "--keep-monthly", "6", "--keep-yearly", "3"],
  ],
  [{ keep_within: 30 * DAY, keep_monthly: 2 }, ["--keep-within", "30d", "--keep-monthly", "2"]],
  [{ keep_last: 2, keep_weekly: 52 }, ["--keep-last", "2", "--keep-weekly", "52"]],
];

test("retention keeps exactly what restic forget keeps, on a random history in Europe/Paris", {
  skip,
  timeout: 600_000,
}, async (t) => {
  const seed = Number(process.env.CAIRN_RETENTION_SEED ?? Date.now() % 1_000_000);
  t.diagnostic(`seed ${seed} (CAIRN_RETENTION_SEED=${seed} replays it)`);
  const dir = tempDir("cairn-restic-");
  const env = {
    ...process.env,
    RESTIC_REPOSITORY: join(dir, "repo"),
    RESTIC_PASSWORD: "oracle",
    TZ: ZONE,
    RESTIC_CACHE_DIR: join(dir, "cache"),
  };
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data/file"), "x");
  await run("restic", ["init", "-q"], { env });
  const times = wallTimes(random(seed), 45);
  // Backups only take a shared lock: a few at a time.
  for (let i = 0; i < times.length; i += 4)
    await Promise.all(
      times
        .slice(i, i + 4)
        .map((time) =>
          run("restic", ["backup", "-q", "--host", "h", "--time", time, join(dir, "data")], { env }),
        ),
    );
  const listed = JSON.parse((await run("restic", ["snapshots", "--json"], { env })).stdout) as {
    id: string;
    time: string;
  }[];
  assert.equal(listed.length, times.length);
  const snapshots = listed.map((s) => ({ id: s.id, time: new Date(s.time), good: true }));
  for (const [policy, flags] of POLICIES) {
    const forget = JSON.parse(
      (await run("restic", ["forget", "--dry-run", "--json", ...flags], { env })).stdout,
    ) as {
      keep: { id: string }[] | null;
    }[];
    const resticKeeps = (forget[0]?.keep ?? []).map((s) => s.id).sort();
    const cairnKeeps = planRetention(snapshots, { ...policy, time_zone: ZONE }, new Date())
      .keep.map((d) => d.id)
      .sort();
    const label = (ids: string[]) => ids.map((id) => listed.find((s) => s.id === id)?.time).sort();
    assert.deepEqual(label(cairnKeeps), label(resticKeeps), `policy ${flags.join(" ")} (seed ${seed})`);
  }
});
