/** Every plugin of a registry with where it came from and its options, read from its schema. */
import { z } from "zod";
import type { PluginDefinition } from "../kit/contracts.ts";
import type { Registry } from "../registry.ts";

export interface OptionInfo {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  secret: boolean;
  description?: string;
}

export interface PluginInfo {
  kind: "source" | "destination" | "transform" | "notifier";
  type: string;
  origin: string;
  description: string;
  options: OptionInfo[];
}

/** The part of a JSON Schema cairn reads (zod's toJSONSchema of a plugin's options). */
export interface JsonSchema {
  type?: string | string[];
  default?: unknown;
  description?: string;
  enum?: unknown[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

function typeName(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (schema.anyOf) return schema.anyOf.map(typeName).join(" | ");
  if (schema.type === "array") return `list of ${typeName(schema.items ?? {})}`;
  return Array.isArray(schema.type) ? schema.type.join(" | ") : (schema.type ?? "any");
}

export function optionsOf(definition: PluginDefinition): OptionInfo[] {
  const json = z.toJSONSchema(definition.schema, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const required = new Set(json.required ?? []);
  return Object.entries(json.properties ?? {})
    .filter(([name]) => name !== "type")
    .map(([name, schema]) => ({
      name,
      type: typeName(schema),
      required: required.has(name),
      ...(schema.default !== undefined ? { default: schema.default } : {}),
      secret: definition.secrets?.includes(name) ?? false,
      ...(schema.description ? { description: schema.description } : {}),
    }));
}

const KIND = {
  source: "source",
  storage: "destination",
  transform: "transform",
  notifier: "notifier",
} as const;

export function describePlugins(registry: Registry): PluginInfo[] {
  const all: PluginDefinition[] = [
    ...registry.sources.values(),
    ...registry.storages.values(),
    ...registry.transforms.values(),
    ...registry.notifiers.values(),
  ];
  return all.map((definition) => ({
    kind: KIND[definition.kind],
    type: definition.type,
    origin: registry.originOf(definition),
    description: definition.description,
    options: optionsOf(definition),
  }));
}
