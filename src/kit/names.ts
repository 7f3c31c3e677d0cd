import { createHash } from "node:crypto";

export const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/;

/**
 * A name usable as an artifact file name and in a shell pipeline: kept as it is when it is plain,
 * else awkward characters become `_` and a short hash of the original keeps names distinct.
 */
export function safeFileName(name: string): string {
  if (SAFE_NAME.test(name)) return name;
  const plain = name.replace(/[^A-Za-z0-9_.+-]/g, "_").replace(/^[.+-]/, "_");
  return `${plain}-${createHash("sha256").update(name).digest("hex").slice(0, 8)}`;
}

/** Artifact names become object keys and shell words: they must be plain, and unique in a snapshot. */
