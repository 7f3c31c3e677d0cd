/**
 * A config object's type, derived from the same schemas that validate configs: the built-ins'
 * definitions (and a plugin's, when named) give each `type` its options, so a typo in a key or a
 * type is a compile error, not a run-time one. Types only: `defineConfig` returns its argument.
 *
 *   const config = configFromObject(defineConfig({ jobs: { app: { … } } }));
 */
import type { z } from "zod";
import type { PluginDefinition } from "../kit/contracts.ts";
import type { builtins } from "../registry.ts";
import type { buildRootSchema, destinationCommon, notifierCommon } from "./schema.ts";

/** `{ type: "postgres", …its options }` for each definition of the kind. */
type OptionsOf<D, Kind extends string> = D extends {
  kind: Kind;
  type: infer T extends string;
  schema: infer S extends z.ZodType;
}
  ? { type: T } & z.input<S>
  : never;

type All<P extends readonly PluginDefinition[]> = (typeof builtins)[number] | P[number];

export type SourceInput<P extends readonly PluginDefinition[] = []> = OptionsOf<All<P>, "source">;
export type DestinationInput<P extends readonly PluginDefinition[] = []> = OptionsOf<All<P>, "storage"> &
  z.input<z.ZodObject<typeof destinationCommon>>;
export type NotifierInput<P extends readonly PluginDefinition[] = []> = OptionsOf<All<P>, "notifier"> &
  z.input<z.ZodObject<typeof notifierCommon>>;

type Transforms<P extends readonly PluginDefinition[], Role extends string> = Extract<
  All<P>,
  { kind: "transform"; role: Role }
>;
type CompressionInput<P extends readonly PluginDefinition[]> =
  | Transforms<P, "compression">["type"]
  | OptionsOf<Transforms<P, "compression">, "transform">;
/** `{ age: { recipients: [...] } }`: exactly one encryption, by its type; or `none`. */
type EncryptionInput<P extends readonly PluginDefinition[]> =
  | "none"
  | {
      [T in Transforms<P, "encryption">["type"]]: {
        [K in T]: z.input<Extract<Transforms<P, "encryption">, { type: T }>["schema"]>;
      };
    }[Transforms<P, "encryption">["type"]];

type RootInput = z.input<ReturnType<typeof buildRootSchema>>;
type JobBase = RootInput["jobs"][string];

export type JobInput<P extends readonly PluginDefinition[] = []> = Omit<
  JobBase,
  "sources" | "destinations" | "compression" | "encryption"
> & {
  sources: Record<string, SourceInput<P>>;
  destinations: Record<string, DestinationInput<P>>;
  compression?: CompressionInput<P>;
  encryption?: EncryptionInput<P>;
};

/** A whole config as an object; `P`: the definitions of plugins it uses (`typeof mine.plugins`). */
export type ConfigInput<P extends readonly PluginDefinition[] = []> = Omit<
  RootInput,
  "jobs" | "notifications"
> & {
  jobs: Record<string, JobInput<P>>;
  notifications?: Record<string, NotifierInput<P>>;
};

/** Returns `config` as it is; its type checks every key and `type` against the plugins' schemas. */
export function defineConfig<P extends readonly PluginDefinition[] = []>(
  config: ConfigInput<P>,
): ConfigInput<P> {
  return config;
}
