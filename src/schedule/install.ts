/**
 * `cairn schedule show|install`: the scheduled jobs as systemd timers (a oneshot service and a
 * timer per job; Persistent=true runs a missed fire at boot) or as a cron.d file. Both run
 * `cairn backup JOB` with this config; cairn's own lock keeps two runs of a job apart.
 */
import { realpathSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { isSea } from "node:sea";
import type { Config } from "../config/load.ts";
import { UsageError } from "../kit/errors.ts";
import { shellWord } from "../kit/shell.ts";
import { crontabFields, onCalendar, UnsupportedSchedule } from "./cron.ts";

export interface ScheduleFile {
  path: string;
  content: string;
}

export interface ScheduleTarget {
  cron: boolean;
  user: boolean;
  /** Where to write; default /etc/systemd/system, ~/.config/systemd/user or /etc/cron.d. */
  dir?: string;
}

/**
 * How this cairn is started, as absolute paths: the single executable alone, or node and the
 * entry script. Never a script in npx's cache, which npm may empty at any time.
 */
export function cairnCommand(): string[] {
  if (isSea()) return [process.execPath];
  const entry = process.argv[1];
  if (!entry) throw new Error("cannot tell how this cairn was started (process.argv[1] is empty)");
  const script = realpathSync(entry);
  if (script.includes("/_npx/"))
    throw new UsageError(`this cairn runs from npx's cache (${script}), which npm may remove at any time`, {
      hint: "install cairn (the .deb, the single executable, or npm install -g @cairn-backup/cairn), then run this again",
    });
  return [process.execPath, ...process.execArgv, script];
}

export function defaultDir(target: ScheduleTarget): string {
  if (target.cron) return "/etc/cron.d";
  return target.user ? join(homedir(), ".config/systemd/user") : "/etc/systemd/system";
}

/** One argument of an ExecStart= line: systemd's own quoting, `%` and `$` escaped. */
function execArg(arg: string): string {
  const escaped = arg.replaceAll("%", "%%").replaceAll("$", "$$$$");
  return /^[\w@+=:,./-]+$/.test(escaped)
    ? escaped
    : `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** One word of a shell line (cron runs its command with /bin/sh); `%` is special to cron. */
const shellArg = (arg: string) => shellWord(arg).replaceAll("%", "\\%");

function scheduledJobs(config: Config) {
  const jobs = Object.entries(config.jobs).flatMap(([name, job]) =>
    job.schedule ? [{ name, schedule: job.schedule }] : [],
  );
  if (jobs.length === 0)
    throw new UsageError("no job has a schedule", {
      hint: 'give the jobs to run a `schedule:` such as "30 2 * * *" (docs/schedule.md)',
    });
  return jobs;
}

function requireFile(config: Config): string {
  if (!config.file) throw new UsageError("the config must come from a file to be scheduled");
  return config.file;
}

export function scheduleFiles(config: Config, target: ScheduleTarget): ScheduleFile[] {
  const file = requireFile(config);
  const dir = target.dir ?? defaultDir(target);
  const jobs = scheduledJobs(config);
  const cairn = cairnCommand();
  const backup = (job: string) => [...cairn, "--config", file, "backup", job];

  if (target.cron) {
    const lines = [
      "# Written by `cairn schedule install --cron`; `cairn schedule show --cron` prints what it would write.",
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ];
    for (const { name, schedule } of jobs) {
      if (schedule.time_zone)
        throw new UsageError(
          `${name}: cron reads schedules in the machine's time zone, not ${schedule.time_zone}`,
          {
            hint: "use systemd timers (without --cron) or `cairn daemon`, or drop time_zone",
          },
        );
      let fields: string;
      try {
        fields = crontabFields(schedule);
      } catch (error) {
        throw new UsageError(`${name}: ${(error as Error).message}`, {
          hint: "use systemd timers (without --cron) or `cairn daemon`",
        });
      }
      const user = target.user ? "" : "root ";
      lines.push(`${fields} ${user}${backup(name).map(shellArg).join(" ")}`);
    }
    return [{ path: join(dir, target.user ? "cairn.crontab" : "cairn"), content: `${lines.join("\n")}\n` }];
  }

  const files: ScheduleFile[] = [];
  for (const { name, schedule } of jobs) {
    let calendar: string[];
    try {
      calendar = onCalendar(schedule);
    } catch (error) {
      if (!(error instanceof UnsupportedSchedule)) throw error;
      throw new UsageError(`${name}: systemd timers cannot express ${error.message}`, {
        hint: "use `cairn daemon`, which reads every cron expression",
      });
    }
    const unit = `cairn-${name}`;
    files.push({
      path: join(dir, `${unit}.service`),
      content: `# Written by \`cairn schedule install\`.
[Unit]
Description=cairn backup of job ${name}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
# Variables the config reads (credentials, \${VAR} values), one NAME=value per line; optional.
EnvironmentFile=-${join(dirname(file), "cairn.env")}
ExecStart=${backup(name).map(execArg).join(" ")}
# On stop, cairn aborts the run and removes what it started; give it the time to.
TimeoutStopSec=5min
Nice=10
IOSchedulingClass=idle
`,
    });
    files.push({
      path: join(dir, `${unit}.timer`),
      content: `# Written by \`cairn schedule install\`: schedule "${schedule.cron}"${schedule.time_zone ? ` in ${schedule.time_zone}` : ""}.
[Unit]
Description=schedule of cairn backup job ${name}

[Timer]
${calendar.map((line) => `OnCalendar=${line}`).join("\n")}
${config.daemon.catch_up ? "# A fire missed while the machine was off runs at the next boot.\nPersistent=true\n" : ""}Unit=${unit}.service

[Install]
WantedBy=timers.target
`,
    });
  }
  return files;
}

/** The systemctl calls that enable what `scheduleFiles` wrote (none for cron). */
export function enableCommands(config: Config, target: ScheduleTarget): string[][] {
  if (target.cron) return [];
  const user = target.user ? ["--user"] : [];
  const timers = scheduledJobs(config).map(({ name }) => `cairn-${name}.timer`);
  return [
    ["systemctl", ...user, "daemon-reload"],
    ["systemctl", ...user, "enable", "--now", ...timers],
  ];
}
