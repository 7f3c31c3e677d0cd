/** `cairn daemon` started as an operator would, its output collected, and waited for. */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { CLI } from "./env.ts";

export interface Daemon {
  process: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

export function startDaemon(dir: string, env: NodeJS.ProcessEnv): Daemon {
  const child = spawn(process.execPath, [CLI, "daemon"], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    log += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { process: child, log: () => log, exited };
}

/** Waits until `check` holds, up to `ms`; fails with `what` and the daemon's log otherwise. */
export async function until(check: () => boolean, ms: number, what: string, daemon: Daemon): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`${what} within ${ms} ms; daemon log:\n${daemon.log()}`);
    await sleep(100);
  }
}

export async function stop(daemon: Daemon): Promise<number | null> {
  daemon.process.kill("SIGTERM");
  const code = await Promise.race([daemon.exited, sleep(20_000).then(() => "hung" as const)]);
  if (code === "hung") {
    daemon.process.kill("SIGKILL");
    assert.fail(`the daemon did not stop within 20 s of SIGTERM; log:\n${daemon.log()}`);
  }
  return code;
}
