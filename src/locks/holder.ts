/** Who holds a lock, as written in the lock file or object. */
export interface LockHolder {
  host: string;
  pid: number;
  /** What it is doing: `backup`, `prune` … */
  operation: string;
  since: string;
  /** Destination locks only: when the holder last wrote it. */
  refreshed?: string;
  /** Destination locks only: stale after this unless refreshed. */
  expires?: string;
}

export interface Lock {
  release(): Promise<void>;
}

export const describe = (holder: LockHolder): string =>
  `${holder.operation} by pid ${holder.pid} on ${holder.host}, since ${holder.since}`;

/** Whether a process of this host is still there. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
