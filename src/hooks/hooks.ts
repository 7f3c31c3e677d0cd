/**
 * Shell hooks around a job: `before` (a failure fails the job before any source runs), `after`
 * (after a successful snapshot; a failure fails the job, the snapshot stays), `on_error` (when the
 * job failed) and `finally` (always). Global hooks run around every job's own: global `before`
 * first, global `after`/`on_error`/`finally` last. Each hook is a shell line run with /bin/sh -c,
 * or a list of them run in order; the job is described in CAIRN_* variables.
 */
import { z } from "zod";
import type { PluginContext } from "../kit/contracts.ts";
import { SourceError } from "../kit/errors.ts";
import { runProgram } from "../kit/exec.ts";

const lines = z
  .union([
    z
      .string()
      .min(1)
      .transform((line) => [line]),
    z.array(z.string().min(1)),
  ])
  .optional();

export const hooksSchema = z
  .object({
    before: lines.describe("shell line(s) run before the job's sources; a failure fails the job"),
    after: lines.describe("run after a successful snapshot; a failure fails the job (the snapshot stays)"),
    on_error: lines.describe("run when the job failed (CAIRN_ERROR says why)"),
    finally: lines.describe("run at the end, whatever happened (CAIRN_STATUS says what)"),
  })
  .strict();

export type Hooks = z.output<typeof hooksSchema>;
export type HookName = keyof Hooks;

export interface HookEnvironment {
  job: string;
  /** The action's session id ($CAIRN_SESSION_ID), as in its log lines and events. */
  session?: string;
  snapshot: string;
  /** success, failed or partial; empty before the job ran. */
  status: string;
  /** destination name → snapshot folder on it. */
  folders: Record<string, string>;
  error?: string;
}

/** The lines of one hook, global ones around the job's own. */
function linesOf(name: HookName, global: Hooks | undefined, own: Hooks | undefined): string[] {
  const g = global?.[name] ?? [];
  const o = own?.[name] ?? [];
  return name === "before" ? [...g, ...o] : [...o, ...g];
}

/** Runs one hook's lines in order; the first that fails stops the rest and throws. */
export async function runHook(
  name: HookName,
  global: Hooks | undefined,
  own: Hooks | undefined,
  facts: HookEnvironment,
  ctx: PluginContext,
  cwd: string,
): Promise<void> {
  const env = {
    CAIRN_HOOK: name,
    CAIRN_JOB: facts.job,
    CAIRN_SESSION_ID: facts.session ?? "",
    CAIRN_SNAPSHOT: facts.snapshot,
    CAIRN_STATUS: facts.status,
    CAIRN_DESTINATIONS: Object.keys(facts.folders).join(","),
    CAIRN_FOLDERS: Object.entries(facts.folders)
      .map(([destination, folder]) => `${destination}=${folder}`)
      .join("\n"),
    CAIRN_ERROR: facts.error ?? "",
  };
  for (const line of linesOf(name, global, own)) {
    ctx.logger.info(`running the ${name} hook`, { hook: line });
    try {
      await runProgram("/bin/sh", ["-c", line], {
        env,
        cwd,
        signal: ctx.signal,
        logger: ctx.logger,
        onStderrLine: (text) => ctx.logger.info(`${name} hook: ${text}`),
        processGroup: true,
      });
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      const tail = error instanceof SourceError ? error.stderrTail : undefined;
      throw new SourceError(`the ${name} hook failed (${line}): ${(error as Error).message.split("\n")[0]}`, {
        cause: error,
        ...(tail ? { stderrTail: tail } : {}),
      });
    }
  }
}
