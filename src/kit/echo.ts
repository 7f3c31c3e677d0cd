/**
 * `--show-commands` and `--confirm-commands`: every program cairn runs, and every write to a
 * destination as the equivalent command line (from no secret: credentials never are on a command
 * line, and locations carry none). Set once per process by the CLI (or an embedding program).
 */
import { UsageError } from "./errors.ts";
import { shellWord } from "./shell.ts";

export interface CommandEcho {
  /** Prints one command line. */
  show(line: string): void;
  /** Asks before a write; false refuses it. Unset: writes are only shown. */
  confirm?(line: string): Promise<boolean>;
}

let current: CommandEcho | undefined;
let asking: Promise<unknown> = Promise.resolve();

export function setCommandEcho(echo: CommandEcho | undefined): void {
  current = echo;
}

/** Shows a program about to run (its command line is built only when someone is watching). */
export function showCommand(program: string, args: string[], cwd?: string): void {
  current?.show(`${cwd ? `cd ${shellWord(cwd)} && ` : ""}${[program, ...args].map(shellWord).join(" ")}`);
}

/** Shows a write about to happen, and asks first when asked to (one question at a time). */
export async function announceWrite(line: string): Promise<void> {
  const echo = current;
  if (!echo) return;
  if (!echo.confirm) return echo.show(line);
  const confirm = echo.confirm.bind(echo);
  const answer = asking.then(() => confirm(line));
  asking = answer.catch(() => {});
  if (!(await answer)) throw new UsageError(`not confirmed: ${line}`);
}
