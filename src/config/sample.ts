/**
 * A commented starting config (borgmatic's generated sample), written from the plugins' own
 * schemas: every option of the chosen source and destination with its default and description,
 * the required ones filled with an example to edit, the rest commented out.
 */

import type { PluginDefinition } from "../kit/contracts.ts";
import { type OptionInfo, optionsOf } from "../plugins/describe.ts";
import type { Registry } from "../registry.ts";

export interface SampleChoices {
  job: string;
  source: string;
  destination: string;
  /** age recipients (public keys); none writes `encryption: none`, said out loud. */
  recipients: string[];
  /** Where the identity is, for the comment beside the recipients. */
  identityFile?: string;
}

/**
 * Example values for required options, where the description gives none (`e.g. …`), and for the
 * options a source needs one of (what to back up), which the schema checks but cannot list.
 */
const EXAMPLES: Record<string, unknown> = {
  "postgres.database": "app",
  "mysql.database": "app",
  "mail.paths": ["/var/vmail"],
  "files.paths": ["/srv/app/uploads"],
  "sqlite.path": "/var/lib/app/app.db",
  "command.command": ["sh", "-c", "my-dump-command"],
  "local.path": "/var/backups/cairn",
  "s3.bucket": "my-backups",
  "sftp.host": "backup.example.net",
  "sftp.user": "backup",
  "ftp.host": "ftp.example.net",
  "ftp.user": "backup",
  "rsync.host": "backup.example.net",
  "rsync.user": "backup",
  "azure.account": "mystorageaccount",
  "azure.container": "backups",
  "swift.container": "backups",
};

function exampleValue(plugin: string, option: OptionInfo): unknown {
  const known = EXAMPLES[`${plugin}.${option.name}`];
  if (known !== undefined) return known;
  const suggested = option.description?.match(/e\.g\. "?([^\s",]+)"?/)?.[1];
  if (suggested) return suggested;
  if (option.type.startsWith("list of")) return ["CHANGE-ME"];
  return "CHANGE-ME";
}

/** One YAML scalar or flow list, quoted only where YAML needs it. */
function yamlValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(yamlValue).join(", ")}]`;
  if (typeof value === "string")
    return /^[\w./@:-]+$/.test(value) &&
      !/^(true|false|null|yes|no|~|\d.*)$/i.test(value) &&
      !value.includes(": ")
      ? value
      : JSON.stringify(value);
  return JSON.stringify(value) ?? "null";
}

/** The plugin's options as YAML lines at `indent`: required ones set, the others commented. */
function optionLines(definition: PluginDefinition, indent: string): string[] {
  const lines = [`${indent}type: ${definition.type}`];
  for (const option of optionsOf(definition)) {
    const about = [
      option.description,
      option.type,
      option.secret ? "a secret: write ${ENV_VAR} or ${file:/path}, not the value" : "",
    ].filter(Boolean);
    const comment = about.join("; ").replaceAll("\n", " ");
    if (option.required || EXAMPLES[`${definition.type}.${option.name}`] !== undefined) {
      lines.push(
        `${indent}${option.name}: ${yamlValue(exampleValue(definition.type, option))}  # ${comment}`,
      );
      continue;
    }
    const shown = option.secret
      ? `\${${definition.type.toUpperCase()}_${option.name.toUpperCase()}}`
      : option.default;
    lines.push(
      `${indent}# ${option.name}: ${shown === undefined ? "" : `${yamlValue(shown)} `} # ${comment}`,
    );
  }
  return lines;
}

export function sampleConfig(registry: Registry, choices: SampleChoices): string {
  const source = registry.sources.get(choices.source);
  const destination = registry.storages.get(choices.destination);
  if (!source || !destination) throw new Error("sampleConfig: unknown source or destination type");
  const encryption =
    choices.recipients.length > 0
      ? [
          "    encryption:",
          "      age:",
          `        recipients: [${choices.recipients.join(", ")}]`,
          `        # the identity (secret key)${choices.identityFile ? ` is in ${choices.identityFile}:` : ":"} keep it off this host; restores need it`,
        ]
      : [
          "    # Not encrypted: anyone who can read the destination can read the backups.",
          "    # Make a key with `cairn keygen -o key.txt` and write its recipient here instead.",
          "    encryption: none",
        ];
  return [
    "# cairn configuration, written by `cairn init`. Every option: docs/reference.md",
    "# Check it with `cairn config check`; back up with `cairn backup`.",
    "jobs:",
    `  ${choices.job}:`,
    '    # schedule: "30 2 * * *"  # cron, run by `cairn daemon` or `cairn schedule install`',
    "    sources:",
    `      ${choices.source}:`,
    ...optionLines(source, "        "),
    "    compression: zstd",
    ...encryption,
    "    destinations:",
    `      ${choices.destination}:`,
    ...optionLines(destination, "        "),
    "    # retention:  # what prune keeps (docs/retention.md)",
    "    #   keep_daily: 7",
    "    #   keep_weekly: 4",
    "    #   keep_monthly: 6",
    "    #   prune: after_backup",
    "",
  ].join("\n");
}
