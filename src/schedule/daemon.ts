/**
 * `cairn daemon`: runs every job that has a `schedule` on time, as `cairn backup JOB` in a child
 * process of its own (a job that crashes, leaks or is killed takes nothing else down). A job is
 * never started while its previous run goes on (that fire is skipped, and logged); at most
 * `daemon.max_parallel` jobs run at once, the others wait their turn. A fire missed while the
 * daemon was down is run once at start (`daemon.catch_up`), as a systemd timer with
 * Persistent=true does. SIGHUP reloads the config (a bad one is refused, the old one kept);
 * SIGTERM stops scheduling, passes SIGTERM to running jobs (they abort cleanly) and waits for them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/load.ts";
import { replaceFile } from "../engine/replace-file.ts";
import type { Logger } from "../kit/contracts.ts";
import { formatDuration } from "../kit/duration.ts";
import { nextRun, previousRun, type Schedule } from "./cron.ts";
import { cairnCommand } from "./install.ts";

export interface DaemonOptions {
  /** Loads the config: at start and on each SIGHUP. */
  load: () => Config | Promise<Config>;
  logger: Logger;
  /** Aborting it stops the daemon the SIGTERM way. */
  signal: AbortSignal;
  /** Options put before `backup JOB` (e.g. the daemon's own log options). */
  globalArgs?: string[];
  /** The command that runs one job; default: this cairn, `--config FILE … backup JOB`. */
  command?: (job: string, config: Config) => [string, string[]];
  now?: () => Date;
}

interface Planned {
  schedule: Schedule;
  next: Date | undefined;
}

interface DaemonState {
  /** Per job: the newest fire time the daemon has handled (run or skipped). */
  jobs: Record<string, { last_due: string }>;
}

function readState(path: string): DaemonState {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as DaemonState;
    return { jobs: parsed.jobs ?? {} };
  } catch {
    return { jobs: {} };
  }
}

const iso = (date: Date) => date.toISOString().replace(/\.\d+Z$/, "Z");

/** Runs until the signal aborts; resolves once every running job has ended. */
export async function runDaemon(options: DaemonOptions): Promise<void> {
  const backupCommand = (job: string, config: Config): [string, string[]] => {
    const [node, ...args] = cairnCommand();
    // The job gets the config text the daemon validated, even if the file has changed since.
    const file = config.file ? ["--config", config.file, ...(config.text ? ["--config-stdin"] : [])] : [];
    return [node as string, [...args, ...file, ...(options.globalArgs ?? []), "backup", job]];
  };
  const now = options.now ?? (() => new Date());
  const { logger } = options;
  let config = await options.load();
  const statePath = join(config.stateDir, "daemon.json");
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const state = readState(statePath);
  const plans = new Map<string, Planned>();
  const running = new Map<string, ChildProcess>();
  const queue: string[] = [];
  let wake: () => void = () => {};

  let stateProblem = false;
  const handled = (job: string, due: Date) => {
    state.jobs[job] = { last_due: iso(due) };
    try {
      replaceFile(statePath, `${JSON.stringify(state, null, 2)}\n`, 0o600);
      stateProblem = false;
    } catch (error) {
      // Scheduling goes on; only catching up after a restart needs this file.
      if (!stateProblem)
        logger.error(
          `cannot write ${statePath} (missed runs cannot be caught up after a restart): ${(error as Error).message}`,
        );
      stateProblem = true;
    }
  };

  /** (Re)plans every scheduled job of `config`, keeping the next fire of those unchanged. */
  const plan = (catchUp: boolean) => {
    const at = now();
    const old = new Map(plans);
    plans.clear();
    for (const [job, settings] of Object.entries(config.jobs)) {
      if (!settings.schedule) continue;
      const previous = old.get(job);
      const same = previous && JSON.stringify(previous.schedule) === JSON.stringify(settings.schedule);
      plans.set(job, same ? previous : { schedule: settings.schedule, next: nextRun(settings.schedule, at) });
      if (same || !catchUp) continue;
      const last = previousRun(settings.schedule, at);
      const lastHandled = state.jobs[job]?.last_due;
      if (!last) continue;
      if (lastHandled === undefined) {
        handled(job, last); // first time seen: nothing missed yet, as systemd's Persistent=true
      } else if (last.getTime() > Date.parse(lastHandled)) {
        logger.info(
          `${job}: the run due at ${iso(last)} was missed while the daemon was down; running it now`,
          {
            job,
          },
        );
        handled(job, last);
        enqueue(job);
      }
    }
    for (const job of old.keys()) if (!plans.has(job)) logger.info(`${job}: no longer scheduled`, { job });
    const summary = [...plans].map(([job, p]) => `${job} next at ${p.next ? iso(p.next) : "never"}`);
    logger.info(
      plans.size
        ? `scheduled: ${summary.join(", ")}`
        : "no job has a schedule: nothing to do until the config changes",
    );
  };

  const enqueue = (job: string) => {
    if (running.has(job) || queue.includes(job)) {
      logger.warn(`${job}: still ${running.has(job) ? "running" : "waiting"}; this run is skipped`, { job });
      return;
    }
    queue.push(job);
  };

  const start = (job: string) => {
    const [program, args] = (options.command ?? backupCommand)(job, config);
    const started = performance.now();
    // Its own process group: a Ctrl-C meant for the daemon reaches the job once, from the daemon
    // (a second SIGTERM makes cairn stop at once instead of cleanly).
    const child = spawn(program, args, { stdio: ["pipe", "inherit", "inherit"], detached: true });
    child.stdin?.on("error", () => {}); // a job that fails before reading it
    child.stdin?.end(args.includes("--config-stdin") ? config.text : "");
    running.set(job, child);
    logger.info(`${job}: started (pid ${child.pid})`, { job });
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      running.delete(job);
      const took = formatDuration(Math.round(performance.now() - started));
      if (code === 0) logger.info(`${job}: finished in ${took}`, { job });
      else
        logger.error(
          `${job}: ${signal ? `killed by ${signal}` : `failed with exit code ${code}`} after ${took}`,
          {
            job,
          },
        );
      wake();
    };
    child.once("error", (error) => {
      logger.error(`${job}: could not start ${program}: ${error.message}`, { job });
      running.delete(job);
      wake();
    });
    child.once("exit", finish);
  };

  const reload = async () => {
    try {
      config = await options.load();
      logger.info("configuration reloaded");
      plan(false);
    } catch (error) {
      logger.error(
        `configuration not reloaded, the previous one stays in force: ${(error as Error).message}`,
      );
    }
    wake();
  };
  process.on("SIGHUP", reload);

  const onAbort = () => wake();
  options.signal.addEventListener("abort", onAbort, { once: true });

  try {
    plan(config.daemon.catch_up);
    while (!options.signal.aborted) {
      const at = now();
      for (const [job, p] of plans) {
        if (!p.next || p.next > at) continue;
        handled(job, p.next);
        enqueue(job);
        p.next = nextRun(p.schedule, at);
      }
      while (queue.length && running.size < config.daemon.max_parallel) start(queue.shift() as string);
      const soonest = Math.min(
        ...[...plans.values()].map((p) => p.next?.getTime() ?? Number.POSITIVE_INFINITY),
      );
      // Wake at least every 30 s: the wall clock can jump (suspend, NTP) while a timer sleeps.
      const wait = Math.max(0, Math.min(30_000, soonest - now().getTime()));
      if (options.signal.aborted) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    process.off("SIGHUP", reload);
    options.signal.removeEventListener("abort", onAbort);
    queue.length = 0;
    if (running.size) {
      logger.info(`stopping: waiting for ${[...running.keys()].join(", ")} to stop`);
      const ended = [...running.values()].map(
        (child) => new Promise((resolve) => child.once("exit", resolve)),
      );
      for (const child of running.values()) child.kill("SIGTERM");
      await Promise.all(ended);
    }
    logger.info("stopped");
  }
}
