/** `cairn upload`: stores an existing file or a stream as one object on a destination, as is. */
import type { Readable } from "node:stream";
import type { PluginOptions } from "../config/schema.ts";
import { UsageError } from "../errors.ts";
import type { Registry } from "../registry.ts";
import type { ObjectInfo } from "../types.ts";
import { type RunOptions, withContext } from "./context.ts";

export interface UploadOptions extends Omit<RunOptions, "config"> {
  registry: Registry;
  /** The destination's options, e.g. from a URL or a folder (`destinationFromSpec`). */
  destination: PluginOptions;
  /** Base folder for relative paths in the destination's options. */
  baseDir: string;
  key: string;
  body: Readable;
}

export async function upload(options: UploadOptions): Promise<{ location: string } & ObjectInfo> {
  const definition = options.registry.storages.get(options.destination.type);
  if (!definition) throw new UsageError(`unknown destination type ${options.destination.type}`);
  const { type: _type, ...rest } = options.destination;
  const parsed = definition.schema.safeParse(rest);
  if (!parsed.success)
    throw new UsageError(
      `destination options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
    );
  const storage = await definition.create(parsed.data, { name: "upload", baseDir: options.baseDir });
  try {
    return await withContext(options, async (ctx) => {
      const info = await storage.put(options.key, options.body, ctx);
      return { location: `${storage.location}/${options.key}`, ...info };
    });
  } finally {
    await storage.close?.();
  }
}
