/**
 * The one-call forms of the library: `quickBackup({ paths, to })` for folders, and bakthat's
 * BakHelper as `withBackupSession(options, async (session) => …)`: whatever the callback writes
 * into `session.dir` is backed up as one artifact, old snapshots are pruned by the retention, and
 * the folder is removed afterwards, whatever happened.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { configFromObject } from "../config/load.ts";
import type { PluginOptions } from "../config/schema.ts";
import { type BackupReport, backup, type JobResult } from "../engine/backup.ts";
import { newSession } from "../events/events.ts";
import type { Logger } from "../kit/contracts.ts";
import type { RetentionSettings } from "../retention/schema.ts";

export interface QuickBackupOptions {
  /** Files and folders to back up. */
  paths: string[];
  /** A folder, or a destination's options (`{ type: "s3", bucket: … }`). */
  to: string | PluginOptions;
  /** The job's name, the folder of its snapshots on the destination (default `backup`). */
  job?: string;
  /** age recipients; without them the backup is stored unencrypted. */
  recipients?: string[];
  /** Applied after the backup (what prune keeps), e.g. `{ keep_last: 7 }`. */
  retention?: Partial<RetentionSettings>;
  /** Where the catalog lives (default: cairn's state folder). */
  stateDir?: string;
  /** The session id (default: a new one), in the run's logs, hooks and events. */
  session?: string;
  logger?: Logger;
  signal?: AbortSignal;
}

function quickConfig(options: QuickBackupOptions) {
  const job = options.job ?? "backup";
  return configFromObject({
    ...(options.stateDir ? { state_dir: options.stateDir } : {}),
    jobs: {
      [job]: {
        sources: { files: { type: "files", paths: options.paths } },
        encryption: options.recipients?.length ? { age: { recipients: options.recipients } } : "none",
        ...(options.retention ? { retention: { ...options.retention, prune: "after_backup" } } : {}),
        destinations: {
          to: typeof options.to === "string" ? { type: "local", path: options.to } : options.to,
        },
      },
    },
  });
}

/** Backs up `paths` to `to` in one call, without a config file. */
export function quickBackup(options: QuickBackupOptions): Promise<BackupReport> {
  return backup({
    config: quickConfig(options),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.session ? { session: options.session } : {}),
  });
}

export interface BackupSession {
  /** A private (0700) folder: what is in it when the callback returns is backed up. */
  dir: string;
  /** The backup's session id, as in its log lines and events. */
  id: string;
}

/**
 * Runs `fn` with a private work folder and backs up what it wrote there as one artifact
 * (`<job>/` inside the tar); the folder is removed afterwards. A callback that throws backs up
 * nothing and its error is rethrown. The job's result says whether the backup worked.
 */
export async function withBackupSession(
  options: Omit<QuickBackupOptions, "paths">,
  fn: (session: BackupSession) => Promise<void> | void,
): Promise<JobResult> {
  const root = await mkdtemp(join(tmpdir(), "cairn-session-"));
  const dir = join(root, options.job ?? "backup");
  try {
    await mkdir(dir, { mode: 0o700 });
    const id = options.session ?? newSession();
    await fn({ dir, id });
    const report = await quickBackup({ ...options, paths: [dir], session: id });
    return report.jobs[0]!;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
