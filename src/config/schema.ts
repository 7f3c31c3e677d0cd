/**
 * The root schema is composed from the registry: each plugin owns its options schema, so adding a
 * plugin adds its options to validation, `config check`, the JSON Schema and the docs at once.
 */
import { z } from "zod";
import { type SyslogSettings, syslogSchema } from "../engine/log-sinks.ts";
import { didYouMean } from "../engine/suggest.ts";
import { type Hooks, hooksSchema } from "../hooks/hooks.ts";
import type { TransformDefinition } from "../kit/contracts.ts";
import { parseDuration } from "../kit/duration.ts";
import { sizeField } from "../kit/schema.ts";
import type { Registry } from "../registry.ts";
import { type RetentionSettings, retentionSchema } from "../retention/schema.ts";
import { type Schedule, scheduleSchema } from "../schedule/cron.ts";
import { frequencySchema } from "../schedule/frequency.ts";

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const name = (what: string) =>
  z
    .string()
    .regex(
      NAME_PATTERN,
      `${what} names use letters, digits, "_", "." and "-" (at most 64, first a letter or digit)`,
    );

export interface PluginOptions {
  type: string;
  [key: string]: unknown;
}

/** Signed manifests (docs/security.md). */
export interface SigningSettings {
  /** Private key (PEM) on the backup host: every manifest is signed with it. */
  key_file?: string | undefined;
  /** Public key that restore and verify require every manifest to be signed by. */
  public_key?: string | undefined;
}

export interface JobConfig {
  sources: Record<string, PluginOptions>;
  compression: PluginOptions;
  encryption?: PluginOptions;
  /** Part size in bytes, when artifacts are split. */
  split?: number;
  signing?: SigningSettings;
  destinations: Record<string, PluginOptions>;
  tags: string[];
  retention?: RetentionSettings;
  /** Milliseconds after which another host may take over this job's lock on a destination. */
  lock_expires: number;
  frequency?: string;
  schedule?: Schedule;
  hooks?: Hooks;
}

export interface DaemonSettings {
  /** Run a job once at start when its schedule fired while the daemon was not running. */
  catch_up: boolean;
  /** Jobs run at once; others wait their turn. */
  max_parallel: number;
}

export interface RootConfig {
  state_dir?: string;
  plugins?: (string | { name: string; options?: Record<string, unknown> })[];
  log?: { file?: string; syslog?: SyslogSettings };
  metrics_file?: string;
  daemon: DaemonSettings;
  hooks?: Hooks;
  notifications?: Record<string, PluginOptions>;
  jobs: Record<string, JobConfig>;
}

/** Options every destination has, whatever its type. */
export const destinationCommon = {
  template: z
    .string()
    .default("{job}")
    .describe(
      "folder of the job's snapshots under the destination: {job}, {hostname} and strftime fields (%Y, %m …)",
    ),
  retries: z
    .number()
    .int()
    .min(1)
    .max(20)
    .default(4)
    .describe(
      "attempts for reads, listings and deletes that fail transiently (backoff with jitter); 1 = no retries",
    ),
  timeout: z
    .union([z.string(), z.number()])
    .default("10m")
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({
          code: "custom",
          message: `not a duration: ${JSON.stringify(value)} (e.g. 90s, 10m, 1h)`,
        });
        return z.NEVER;
      }
      return ms;
    })
    .describe(
      "an operation that makes no progress this long fails (time waiting for the source or the reader does not count); 0 = never",
    ),
  concurrency: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe("transfers (uploads and downloads) at once on this destination; 0 = no limit"),
  bandwidth_limit: sizeField({
    invalid: (value) => `not a size per second: ${JSON.stringify(value)} (e.g. 20MiB)`,
  })
    .optional()
    .transform((bytes) => bytes ?? 0)
    .describe(
      "bytes per second for this destination's uploads and downloads together, e.g. 20MiB; none by default",
    ),
  retention: retentionSchema
    .optional()
    .describe("which snapshots to keep on this destination; replaces the job's retention"),
  frequency: frequencySchema
    .optional()
    .describe(
      "store on this destination only when due: hourly, daily, weekly, monthly:DAY or a duration; replaces the job's",
    ),
  tags: z
    .array(z.string())
    .default([])
    .describe("names for --only/--skip, e.g. [offsite]; a destination is also selected by its name"),
  upload_check: z
    .enum(["size", "read"])
    .default("size")
    .describe(
      "before the manifest is written, each stored object is confirmed: size (it exists with the size sent) or read (read back and its SHA-256 compared; costs a download)",
    ),
};

/** Options every notifier has, whatever its type. */
export const notifierCommon = {
  on: z
    .union([
      z.enum(["failure", "success", "always"]),
      z.array(z.enum(["start", "success", "failure"])).min(1),
    ])
    .default("failure")
    .describe(
      "when to send: failure (default), success, always (both), or a list of start, success and failure, e.g. [start, failure]",
    ),
  enabled: z.boolean().default(true).describe("false: only when a run names it with --notify NAME"),
  jobs: z.array(z.string()).optional().describe("only for these jobs (default: every job)"),
};

/** The common options once parsed, split off from the destination's own. */
export interface DestinationCommon {
  template: string;
  retention?: RetentionSettings;
  frequency?: string;
  retries: number;
  timeout: number;
  concurrency: number;
  bandwidth_limit: number;
  tags: string[];
  upload_check: "size" | "read";
}

const COMMON_KEYS = Object.keys(destinationCommon);

export function splitDestinationOptions(options: PluginOptions): {
  common: DestinationCommon;
  own: PluginOptions;
} {
  const common: Record<string, unknown> = {};
  const own: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) (COMMON_KEYS.includes(key) ? common : own)[key] = value;
  return { common: common as unknown as DestinationCommon, own: own as PluginOptions };
}

function pluginUnion(
  kind: string,
  definitions: { type: string; schema: z.ZodObject }[],
  common: z.ZodRawShape = {},
) {
  const known = definitions.map((d) => d.type).join(", ");
  const options = definitions.map((d) =>
    d.schema.safeExtend({ ...common, type: z.literal(d.type) }).strict(),
  );
  return z.discriminatedUnion("type", options as unknown as [z.ZodObject, ...z.ZodObject[]], {
    error: (issue) => {
      if (issue.code !== "invalid_union") return undefined;
      const input = issue.input as { type?: unknown } | undefined;
      if (input === undefined || typeof input !== "object" || input === null)
        return `expected a ${kind} object`;
      if (input.type === undefined) return `"type" is missing: one of ${known}`;
      const mistyped =
        typeof input.type === "string"
          ? didYouMean(
              input.type,
              definitions.map((d) => d.type),
            )
          : "";
      return `unknown ${kind} type ${JSON.stringify(input.type)}${mistyped}: one of ${known}`;
    },
  });
}

function compressionSchema(definitions: TransformDefinition[]) {
  const union = pluginUnion("compression", definitions);
  const types = definitions.map((d) => d.type) as [string, ...string[]];
  // `compression: zstd` is short for `compression: { type: zstd }` (a union, not a preprocess, so
  // the JSON Schema editors read accepts it too).
  return z
    .union([z.enum(types).transform((type) => union.parse({ type })), union])
    .prefault({ type: "zstd" });
}

function encryptionSchema(definitions: TransformDefinition[]) {
  const shape = Object.fromEntries(definitions.map((d) => [d.type, d.schema.strict().optional()]));
  const known = definitions.map((d) => d.type).join(", ");
  const chosen = z
    .object(shape)
    .strict()
    .refine((value) => Object.values(value).filter((v) => v !== undefined).length === 1, {
      message: `choose exactly one encryption: ${known}, or none`,
    })
    .transform((value) => {
      const [type, options] = Object.entries(value).find(([, v]) => v !== undefined)!;
      return { ...(options as object), type } as PluginOptions;
    });
  // `encryption: none` says the backups are meant to be readable as they are (no warning).
  return z.union([z.literal("none").transform(() => undefined), chosen]);
}

const sizeSchema = sizeField({
  invalid: (value) => `"${value}" is not a size: write e.g. 100MB, 1GiB or 512k`,
});

export function buildRootSchema(registry: Registry) {
  const job = z
    .object({
      sources: z
        .record(name("source"), pluginUnion("source", [...registry.sources.values()]))
        .refine((s) => Object.keys(s).length > 0, { message: "a job needs at least one source" }),
      compression: compressionSchema(registry.transformsWithRole("compression")),
      encryption: encryptionSchema(registry.transformsWithRole("encryption")).optional(),
      split: sizeSchema.optional(),
      signing: z
        .object({
          key_file: z
            .string()
            .optional()
            .describe("Ed25519 private key (cairn keygen --signing): sign every manifest"),
          public_key: z
            .string()
            .regex(
              /^cairn-ed25519:[A-Za-z0-9+/]{43}=$/,
              "not a cairn-ed25519:… public key (cairn keygen --signing prints it)",
            )
            .optional()
            .describe("restore and verify refuse a manifest not signed by this key"),
        })
        .strict()
        .optional()
        .describe("signed manifests: an edited or replaced manifest is refused (docs/security.md)"),
      destinations: z
        .record(
          name("destination"),
          pluginUnion("destination", [...registry.storages.values()], destinationCommon),
        )
        .refine((d) => Object.keys(d).length > 0, { message: "a job needs at least one destination" }),
      tags: z.array(z.string()).default([]),
      retention: retentionSchema
        .optional()
        .describe("which snapshots to keep, on every destination that has no retention of its own"),
      hooks: hooksSchema.optional().describe("shell hooks around this job (see docs/hooks.md)"),
      frequency: frequencySchema
        .optional()
        .describe(
          "run only when due: hourly, daily, weekly, monthly:DAY (from that day of the month) or a duration such as 6h; cairn backup --force ignores it",
        ),
      schedule: scheduleSchema
        .optional()
        .describe(
          'when `cairn daemon` (or the timer `cairn schedule install` writes) runs this job: a cron expression such as "30 2 * * *", or { cron, time_zone }',
        ),
      lock_expires: z
        .union([z.string(), z.number()])
        .prefault("30m")
        .transform((value, ctx) => {
          const ms = parseDuration(value);
          if (ms === undefined || ms === 0) {
            ctx.addIssue({ code: "custom", message: `not a duration: ${JSON.stringify(value)} (e.g. 30m)` });
            return z.NEVER;
          }
          return ms;
        })
        .describe(
          "a running job refreshes its lock on each destination every third of this; a lock not refreshed for this long (its host died) may be taken over",
        ),
    })
    .strict();
  return z
    .object({
      state_dir: z.string().optional().describe("Where the catalog lives; default $XDG_STATE_HOME/cairn"),
      plugins: z
        .array(
          z.union([
            z.string().min(1),
            z
              .object({
                name: z.string().min(1).describe("the package or file"),
                options: z
                  .record(z.string(), z.unknown())
                  .optional()
                  .describe("handed to the plugin's activate()"),
              })
              .strict(),
          ]),
        )
        .optional()
        .describe(
          "plugin packages (resolved from the config's folder, then global installs) and files (./x.js, ./x.ts) that add sources, destinations, transforms and notifiers (docs/plugins.md)",
        ),
      log: z
        .object({
          file: z
            .string()
            .optional()
            .describe("append every log line (info and up; debug with -v) to this file"),
          syslog: syslogSchema.optional().describe("true (local syslog) or { facility, tag, server }"),
        })
        .strict()
        .optional()
        .describe("where log lines go besides stderr (docs/monitoring.md)"),
      metrics_file: z
        .string()
        .optional()
        .describe(
          "a Prometheus textfile updated after every backup run (e.g. /var/lib/prometheus/node-exporter/cairn.prom); --metrics-file overrides it",
        ),
      daemon: z
        .object({
          catch_up: z
            .boolean()
            .default(true)
            .describe("at start, run once each job whose schedule fired while the daemon was down"),
          max_parallel: z.number().int().min(1).default(1).describe("jobs run at once; the others wait"),
        })
        .strict()
        .prefault({})
        .describe("settings of `cairn daemon`"),
      hooks: hooksSchema.optional().describe("shell hooks around every job, outside the job's own"),
      notifications: z
        .record(name("notifier"), pluginUnion("notifier", [...registry.notifiers.values()], notifierCommon))
        .optional()
        .describe("who to tell when a job fails (or succeeds): see docs/notifications.md"),
      jobs: z.record(name("job"), job),
    })
    .strict();
}
