/** `cairn upload`: stores an existing file or a stream as one object on a destination, as is. */
import type { Readable } from "node:stream";
import { parseOptions } from "../config/load.ts";
import { destinationCommon, type PluginOptions, splitDestinationOptions } from "../config/schema.ts";
import type { ObjectInfo } from "../kit/contracts.ts";
import { UsageError } from "../kit/errors.ts";
import { Sha256Counter, through } from "../kit/streams.ts";
import type { Registry } from "../registry.ts";
import { wrapStorage } from "../wrappers/index.ts";
import { confirmObject } from "./confirm.ts";
import { type RunOptions, withContext, wrapperOptions } from "./context.ts";
import { NotEmpty, TrailerReader } from "./trailer.ts";

export interface UploadOptions extends Omit<RunOptions, "config"> {
  registry: Registry;
  /** The destination's options, e.g. from a URL or a folder (`destinationFromSpec`). */
  destination: PluginOptions;
  /** Base folder for relative paths in the destination's options. */
  baseDir: string;
  key: string;
  body: Readable;
  /** Read the body to the end, store nothing. */
  dryRun?: boolean;
  /** Store an empty body (refused by default: an empty input usually means its producer failed). */
  allowEmpty?: boolean;
  /** The body ends with the trailer of `backup --stdout --trailer`: check it, store what precedes it. */
  trailer?: boolean;
}

export async function upload(options: UploadOptions): Promise<{ location: string } & ObjectInfo> {
  const definition = options.registry.storages.get(options.destination.type);
  if (!definition) throw new UsageError(`unknown destination type ${options.destination.type}`);
  const { type: _type, ...rest } = options.destination;
  const parsed = parseOptions(definition.schema.safeExtend(destinationCommon).strict(), rest, "destination");
  const { common, own } = splitDestinationOptions({
    ...parsed,
    type: options.destination.type,
  } as PluginOptions);
  const storage = wrapStorage(
    await definition.create(own, { name: "upload", baseDir: options.baseDir }),
    wrapperOptions(common, options.dryRun ?? false),
  );
  try {
    return await withContext(options, async (ctx) => {
      const checks = [
        ...(options.trailer ? [new TrailerReader()] : []),
        ...(options.allowEmpty ? [] : [new NotEmpty()]),
      ];
      // Checks fail the body itself, so the put fails and (puts being atomic) leaves nothing behind.
      const checked = checks.reduce<Readable>((stream, check) => through(stream, check), options.body);
      const digest = through(checked, new Sha256Counter());
      const info = await storage.put(options.key, digest, ctx).catch((error: unknown) => {
        // The storage words it as its own write failure; the check's own error says why.
        throw checks.find((check) => check.errored)?.errored ?? error;
      });
      if (!options.dryRun)
        await confirmObject(storage, common.upload_check, options.key, digest.result(), ctx).catch(
          async (error: unknown) => {
            await storage.delete(options.key, ctx).catch(() => {});
            throw error;
          },
        );
      return { location: `${storage.location}/${options.key}`, ...info };
    });
  } finally {
    await storage.close?.();
  }
}
