/**
 * cairn as a library: everything the CLI does, typed. The CLI is a thin layer over these calls.
 *
 *   import { loadConfig, backup, list, restore, verify } from "@cairn-backup/cairn";
 *   const config = loadConfig({ file: "cairn.yaml" });
 *   const report = await backup({ config, jobs: ["app"] });
 */

/** cairn's zod: plugins make their schemas with it, so that they combine with cairn's own. */
export { z } from "zod";
export { generateIdentity, recipientOf } from "./age/index.ts";
export { Catalog, type RunRow, type SnapshotRow } from "./catalog/catalog.ts";
export {
  type Config,
  configFromObject,
  type LoadConfigOptions,
  loadConfig,
  loadConfigAsync,
  redactedConfig,
  registryWith,
} from "./config/load.ts";
export type { JobConfig, PluginOptions } from "./config/schema.ts";
export {
  type ConfigInput,
  type DestinationInput,
  defineConfig,
  type JobInput,
  type NotifierInput,
  type SourceInput,
} from "./config/typed.ts";
export {
  type ArtifactSummary,
  type BackupOptions,
  type BackupReport,
  backup,
  type JobResult,
  type Progress,
} from "./engine/backup.ts";
export {
  backupToStream,
  type StreamBackupOptions,
  type StreamBackupResult,
} from "./engine/backup-to-stream.ts";
export type { RunOptions } from "./engine/context.ts";
export { disabledJobs, type JobInfo, listJobs, setJobEnabled } from "./engine/jobs.ts";
export {
  type ListOptions,
  type ListResult,
  list,
  parseSnapshotSpec,
  rebuildCatalog,
  type SnapshotSummary,
} from "./engine/list.ts";
export {
  type RestoreOptions,
  type RestoreResult,
  restore,
  type ShowOptions,
  type ShowResult,
  show,
  type VerifyOptions,
  type VerifyResult,
  verify,
} from "./engine/restore.ts";
export { type Chosen, choose, type Selected, type Selection, select } from "./engine/select.ts";
export { type UploadOptions, upload } from "./engine/upload.ts";
export {
  CairnEvents,
  type EventHandler,
  type EventMap,
  type EventName,
  events,
  type SessionFacts,
} from "./events/events.ts";
export * from "./kit/contracts.ts";
export { type CommandEcho, setCommandEcho } from "./kit/echo.ts";
export * from "./kit/errors.ts";
export { createLogger, type LoggerOptions, silentLogger } from "./kit/logger.ts";
export { parseSize } from "./kit/size.ts";
export { VERSION } from "./kit/version.ts";
export { updateMetricsFile } from "./metrics/textfile.ts";
export { describePlugins, type OptionInfo, type PluginInfo } from "./plugins/describe.ts";
export { activatePlugins, type LoadedPlugin, loadPlugins } from "./plugins/load.ts";
export {
  definePlugin,
  PLUGIN_API_VERSION,
  type PluginActivation,
  type PluginExport,
  type PluginModule,
} from "./plugins/module.ts";
export { builtinPlugins, createRegistry, Registry } from "./registry.ts";
export {
  type Decision,
  planRetention,
  type RetentionPlan,
  type RetentionPolicy,
  type SnapshotFacts,
} from "./retention/policy.ts";
export { type DestinationPrune, type PruneOptions, type PruneResult, prune } from "./retention/prune.ts";
export { type RetentionSettings, retentionSchema } from "./retention/schema.ts";
export { nextRun, onCalendar, previousRun, type Schedule } from "./schedule/cron.ts";
export { type DaemonOptions, runDaemon } from "./schedule/daemon.ts";
export { type DestinationStatus, status } from "./schedule/status.ts";
export {
  type BackupSession,
  type QuickBackupOptions,
  quickBackup,
  withBackupSession,
} from "./session/quick.ts";
export {
  type WrapperOptions,
  withBandwidthLimit,
  withConcurrencyLimit,
  withDryRun,
  withRetries,
  withTimeout,
  wrapStorage,
} from "./wrappers/index.ts";
