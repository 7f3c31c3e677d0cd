/**
 * Snapshots someone who can write to the storage cannot pass off as the job's own:
 * - a job that encrypts refuses to read a snapshot whose artifacts are not encrypted that way (a
 *   manifest replaced by one saying "no encryption", with plaintext data of the attacker's choice);
 * - with `signing`, the backup host signs each manifest with an Ed25519 key (its signature object
 *   `manifest.json.sig` is stored before the manifest), and restore and verify refuse a manifest
 *   whose signature is missing or does not match the configured public key: an edited host, time,
 *   artifact list or checksum is noticed. The manifest names its id and lies in that folder, so an
 *   old signed manifest cannot be replayed as a newer snapshot.
 * `--allow-unprotected` reads such a snapshot anyway, saying so.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { readFileSync } from "node:fs";
import type { SigningSettings } from "../config/schema.ts";
import { MANIFEST_NAME, type PluginContext, type Storage } from "../kit/contracts.ts";
import { IntegrityError, UsageError } from "../kit/errors.ts";
import { refuseOpenKeyFile } from "./key-files.ts";
import { readText, type SnapshotRef } from "./snapshot.ts";

export const SIGNATURE_NAME = `${MANIFEST_NAME}.sig`;
const PREFIX = "cairn-ed25519:";

/** A new key pair: the private key as PEM, the public key as `cairn-ed25519:BASE64`. */
export function generateSigningKey(): { privatePem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "jwk" }).x as string;
  return {
    privatePem: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    publicKey: PREFIX + Buffer.from(raw, "base64url").toString("base64"),
  };
}

/** The key object of a `cairn-ed25519:BASE64` public key (its form checked by the config schema). */
function publicKeyOf(text: string): KeyObject {
  const x = Buffer.from(text.slice(PREFIX.length), "base64").toString("base64url");
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
}

/** The signing key in `keyFile`, read once per run; refused when other users can read it. */
export function loadSigningKey(keyFile: string): KeyObject {
  refuseOpenKeyFile(keyFile, "signing key");
  try {
    return createPrivateKey(readFileSync(keyFile, "utf8"));
  } catch (error) {
    throw new UsageError(`cannot read the signing key ${keyFile}: ${(error as Error).message}`, {
      hint: "create one with: cairn keygen --signing -o signing.key",
    });
  }
}

/** The signature object's body for a manifest's exact text. */
export function signManifest(text: string, key: KeyObject): string {
  const signature = sign(null, Buffer.from(text), key).toString("base64");
  return `${JSON.stringify({ algorithm: "ed25519", signature })}\n`;
}

/** Why `ref` cannot be trusted under the job's settings, or undefined when it can. */
export async function protectionProblem(
  ref: SnapshotRef,
  storage: Storage,
  settings: { encryption?: { type: string } | undefined; signing?: SigningSettings | undefined },
  ctx: PluginContext,
): Promise<string | undefined> {
  const wanted = settings.encryption?.type;
  if (wanted) {
    const bare = ref.manifest.artifacts.find((a) => !a.transforms.some((t) => t.type === wanted));
    if (bare) return `its artifact ${bare.name} is not encrypted, though the job encrypts with ${wanted}`;
  }
  const publicKey = settings.signing?.public_key;
  if (!publicKey) return undefined;
  let signature: string | undefined;
  try {
    signature = (
      JSON.parse(await readText(storage, `${ref.folder}/${SIGNATURE_NAME}`, ctx)) as { signature?: string }
    ).signature;
  } catch {
    return "its manifest is not signed, though the job requires signed manifests";
  }
  if (
    !signature ||
    !verify(null, Buffer.from(ref.text), publicKeyOf(publicKey), Buffer.from(signature, "base64"))
  )
    return "its manifest's signature does not match the job's public key: the manifest was changed";
  return undefined;
}

/** Throws unless `ref` is protected as the job requires, or the user chose to read it anyway. */
export async function requireProtected(
  ref: SnapshotRef,
  storage: Storage,
  settings: Parameters<typeof protectionProblem>[2],
  allowUnprotected: boolean,
  ctx: PluginContext,
): Promise<void> {
  const problem = await protectionProblem(ref, storage, settings, ctx);
  if (!problem) return;
  const what = `snapshot ${ref.job}@${ref.id} on ${ref.destination}: ${problem}`;
  if (allowUnprotected) {
    ctx.logger.warn(`${what}; reading it anyway (--allow-unprotected)`);
    return;
  }
  throw new IntegrityError(`refused: ${what}`, {
    hint: "someone who can write to the storage may have replaced it; if you know why it is so, pass --allow-unprotected",
  });
}
