/**
 * Before a snapshot's manifest is written, every object it lists is confirmed on each destination:
 * it is there (another host's prune or a storage that acknowledged and dropped it would otherwise
 * leave a snapshot listed good and broken) and has the size cairn sent; with `upload_check: read`
 * it is read back and its SHA-256 compared, which finds a proxy or disk that altered a byte.
 * Storages that can check content on the way in (S3's ETag) do that inside their own put.
 */
import { createHash } from "node:crypto";
import type { ArtifactRecord, PluginContext, Storage } from "../kit/contracts.ts";
import { IntegrityError } from "../kit/errors.ts";
import type { Destination } from "./context.ts";

export type UploadCheck = "size" | "read";

interface Sent {
  size: number;
  sha256: string;
}

/** Throws an IntegrityError unless the object at `key` is the one sent (size, and content with `read`). */
export async function confirmObject(
  storage: Storage,
  check: UploadCheck,
  key: string,
  sent: Sent,
  ctx: PluginContext,
): Promise<void> {
  const problem = await problemWith(storage, check, key, sent, ctx);
  if (problem)
    throw new IntegrityError(`the stored object is not what was sent: ${problem}`, {
      hint: "the storage (or something between) lost or changed data; it was not recorded as stored — check the destination and try again",
    });
}

async function problemWith(
  storage: Storage,
  check: UploadCheck,
  key: string,
  sent: Sent,
  ctx: PluginContext,
): Promise<string | undefined> {
  const info = await storage.stat(key, ctx);
  if (!info) return `${key} is missing right after it was stored`;
  if (info.size !== sent.size) return `${key} holds ${info.size} bytes, ${sent.size} were sent`;
  if (check !== "read") return undefined;
  const hash = createHash("sha256");
  for await (const chunk of await storage.get(key, ctx)) hash.update(chunk as Buffer);
  const read = hash.digest("hex");
  return read === sent.sha256 ? undefined : `${key} reads back with SHA-256 ${read}, ${sent.sha256} was sent`;
}

/** Confirms every object of `artifacts` on `destination`; throws naming the first that is wrong. */
export async function confirmStored(
  destination: Destination,
  folder: string,
  artifacts: ArtifactRecord[],
  ctx: PluginContext,
): Promise<void> {
  for (const artifact of artifacts)
    for (const object of artifact.objects)
      await confirmObject(
        destination.storage,
        destination.uploadCheck ?? "size",
        `${folder}/${object.key}`,
        object,
        ctx,
      );
}
