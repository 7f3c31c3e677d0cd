/**
 * Events around every action (bakthat's names): before_backup/on_backup, before_restore/on_restore,
 * before_prune/on_prune and before_delete/on_delete for each snapshot a prune removes. Each action
 * has one session id (a UUID), also in every log line of the action and in hooks as
 * $CAIRN_SESSION_ID. Handlers run in order and are awaited; one that throws is logged and changes
 * nothing.
 */
import { randomUUID } from "node:crypto";
import type { JobResult } from "../engine/backup.ts";
import type { RestoreResult } from "../engine/restore.ts";
import type { Logger } from "../kit/contracts.ts";
import type { DestinationPrune } from "../retention/prune.ts";

export interface SessionFacts {
  session: string;
  job: string;
}

export interface EventMap {
  before_backup: SessionFacts;
  on_backup: SessionFacts & { result: JobResult };
  before_restore: SessionFacts & { snapshot: string };
  on_restore: SessionFacts & { snapshot: string; result?: RestoreResult; error?: unknown };
  before_prune: SessionFacts;
  on_prune: SessionFacts & { result?: DestinationPrune[]; error?: unknown };
  before_delete: SessionFacts & { destination: string; snapshot: string };
  on_delete: SessionFacts & { destination: string; snapshot: string; error?: unknown };
}

export type EventName = keyof EventMap;
export type EventHandler<E extends EventName> = (payload: EventMap[E]) => void | Promise<void>;

export class CairnEvents {
  private readonly handlers = new Map<EventName, EventHandler<never>[]>();

  /** Calls `handler` on every `name` event; returns the function that stops it. */
  on<E extends EventName>(name: E, handler: EventHandler<E>): () => void {
    const list = this.handlers.get(name) ?? [];
    list.push(handler as EventHandler<never>);
    this.handlers.set(name, list);
    return () => this.off(name, handler);
  }

  off<E extends EventName>(name: E, handler: EventHandler<E>): void {
    const list = this.handlers.get(name) ?? [];
    this.handlers.set(
      name,
      list.filter((h) => h !== handler),
    );
  }

  /**
   * Runs `fn` between an action's two events: `before` with `facts`, then its closing `on_` event
   * with `facts` and what `done` makes of the result, or with the error, which is rethrown.
   */
  async around<B extends Opening, R>(
    before: B,
    facts: EventMap[B],
    logger: Logger | undefined,
    fn: () => Promise<R>,
    done: (result: R) => Partial<Closing<B>> = () => ({}),
  ): Promise<R> {
    await this.emit(before, facts, logger);
    const closing = CLOSING[before];
    let result: R;
    try {
      result = await fn();
    } catch (error) {
      await this.emit(closing, { ...facts, error } as Closing<B>, logger);
      throw error;
    }
    await this.emit(closing, { ...facts, ...done(result) } as Closing<B>, logger);
    return result;
  }

  async emit<E extends EventName>(name: E, payload: EventMap[E], logger?: Logger): Promise<void> {
    for (const handler of this.handlers.get(name) ?? []) {
      try {
        await (handler as EventHandler<E>)(payload);
      } catch (error) {
        logger?.warn(`an ${name} event handler failed (the ${name.replace(/^(before|on)_/, "")} goes on)`, {
          error: (error as Error)?.message ?? String(error),
        });
      }
    }
  }
}

/** The event that closes each `before_` event of an action that can fail. */
const CLOSING = {
  before_restore: "on_restore",
  before_prune: "on_prune",
  before_delete: "on_delete",
} as const;
type Opening = keyof typeof CLOSING;
type Closing<B extends Opening> = EventMap[(typeof CLOSING)[B]];

/** The events of this process: what library users, plugins and the CLI listen to. */
export const events = new CairnEvents();

export const newSession = (): string => randomUUID();
