import type {
  NotifierDefinition,
  PluginDefinition,
  SourceDefinition,
  StorageDefinition,
  TransformDefinition,
} from "./kit/contracts.ts";
import { discordNotifier } from "./notifiers/discord.ts";
import { emailNotifier } from "./notifiers/email.ts";
import { gotifyNotifier } from "./notifiers/gotify.ts";
import { healthchecksNotifier } from "./notifiers/healthchecks.ts";
import { ntfyNotifier } from "./notifiers/ntfy.ts";
import { sentryNotifier } from "./notifiers/sentry.ts";
import { slackNotifier } from "./notifiers/slack.ts";
import { teamsNotifier } from "./notifiers/teams.ts";
import { telegramNotifier } from "./notifiers/telegram.ts";
import { webhookNotifier } from "./notifiers/webhook.ts";
import { commandSource } from "./sources/command.ts";
import { filesSource } from "./sources/files.ts";
import { ldapSource } from "./sources/ldap.ts";
import { mailSource } from "./sources/mail.ts";
import { mongodbSource } from "./sources/mongodb.ts";
import { mysqlSource } from "./sources/mysql.ts";
import { postgresSource } from "./sources/postgres.ts";
import { redisSource } from "./sources/redis.ts";
import { sqliteSource } from "./sources/sqlite.ts";
import { azureStorage } from "./storages/azure.ts";
import { ftpStorage } from "./storages/ftp.ts";
import { gitStorage } from "./storages/git.ts";
import { httpStorage } from "./storages/http.ts";
import { localStorage } from "./storages/local.ts";
import { rcloneStorage } from "./storages/rclone.ts";
import { rsyncStorage } from "./storages/rsync.ts";
import { s3Storage } from "./storages/s3.ts";
import { sftpStorage } from "./storages/sftp.ts";
import { swiftStorage } from "./storages/swift.ts";
import { webdavStorage } from "./storages/webdav.ts";
import { ageTransform } from "./transforms/age.ts";
import { gzipTransform } from "./transforms/gzip.ts";
import { noCompression } from "./transforms/none.ts";
import { zstdTransform } from "./transforms/zstd.ts";

/** Every plugin cairn ships, each with its literal type (config/typed.ts reads them). */
export const builtins = [
  commandSource,
  filesSource,
  ldapSource,
  mailSource,
  mongodbSource,
  mysqlSource,
  postgresSource,
  redisSource,
  sqliteSource,
  localStorage,
  s3Storage,
  sftpStorage,
  ftpStorage,
  webdavStorage,
  rcloneStorage,
  azureStorage,
  swiftStorage,
  httpStorage,
  rsyncStorage,
  gitStorage,
  zstdTransform,
  gzipTransform,
  noCompression,
  ageTransform,
  emailNotifier,
  webhookNotifier,
  slackNotifier,
  discordNotifier,
  teamsNotifier,
  telegramNotifier,
  ntfyNotifier,
  gotifyNotifier,
  healthchecksNotifier,
  sentryNotifier,
] as const;

/** Every plugin cairn ships. Plugins from packages register through the same `register` call. */
export const builtinPlugins: readonly PluginDefinition[] = builtins;

export class Registry {
  readonly sources = new Map<string, SourceDefinition>();
  readonly storages = new Map<string, StorageDefinition>();
  readonly transforms = new Map<string, TransformDefinition>();
  readonly notifiers = new Map<string, NotifierDefinition>();
  /** Where each plugin came from (`built-in`, `package@version`, a file), by `kind:type`. */
  private readonly origins = new Map<string, string>();

  originOf(definition: Pick<PluginDefinition, "kind" | "type">): string {
    return this.origins.get(`${definition.kind}:${definition.type}`) ?? "built-in";
  }

  private tableOf(kind: PluginDefinition["kind"]): Map<string, PluginDefinition> {
    return {
      source: this.sources,
      storage: this.storages,
      notifier: this.notifiers,
      transform: this.transforms,
    }[kind];
  }

  /** Whether a plugin of this kind and type is registered already. */
  has(definition: Pick<PluginDefinition, "kind" | "type">): boolean {
    return this.tableOf(definition.kind).has(definition.type);
  }

  register(definition: PluginDefinition, origin = "built-in"): this {
    const table = this.tableOf(definition.kind);
    if (table.has(definition.type))
      throw new Error(
        `a ${definition.kind} plugin "${definition.type}" is already registered (${this.originOf(definition)})`,
      );
    table.set(definition.type, definition);
    this.origins.set(`${definition.kind}:${definition.type}`, origin);
    return this;
  }

  transformsWithRole(role: TransformDefinition["role"]): TransformDefinition[] {
    return [...this.transforms.values()].filter((t) => t.role === role);
  }
}

export function createRegistry(plugins: readonly PluginDefinition[] = builtinPlugins): Registry {
  const registry = new Registry();
  for (const plugin of plugins) registry.register(plugin);
  return registry;
}
