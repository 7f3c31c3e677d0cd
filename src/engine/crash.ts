/**
 * Crash points for the tests (borg's test_crash_before_*): with CAIRN_TEST_CRASH_AT=NAME in the
 * environment, cairn kills itself with SIGKILL when it reaches the point NAME — no cleanup, no
 * lock release, as a power cut would. Nothing happens without the variable.
 */
export const CRASH_POINTS = [
  "backup:locked",
  "backup:artifact-stored",
  "backup:before-manifest",
  "backup:manifest-written",
  "prune:locked",
  "prune:manifest-removed",
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

export function crashPoint(name: CrashPoint): void {
  if (process.env.CAIRN_TEST_CRASH_AT === name) process.kill(process.pid, "SIGKILL");
}
