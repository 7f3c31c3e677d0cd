import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { bech32 } from "@scure/base";

const RECIPIENT_HRP = "age";
const IDENTITY_HRP = "age-secret-key-";
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

export class AgeKeyError extends Error {
  override name = "AgeKeyError";
}

export function x25519PrivateKey(raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: "der", type: "pkcs8" });
}

export function x25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_PREFIX, raw]), format: "der", type: "spki" });
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: "der", type: "spki" });
  return der.subarray(der.length - 32);
}

/** X25519(scalar, point); throws for low-order points (an all-zero shared secret). */
export function x25519(privateKey: KeyObject, publicRaw: Uint8Array): Buffer {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: x25519PublicKey(publicRaw) });
  } catch (cause) {
    throw new AgeKeyError("invalid X25519 share", { cause });
  }
  if (shared.every((b) => b === 0)) throw new AgeKeyError("X25519 share is a low-order point");
  return shared;
}

function decodeBech32(text: string, hrp: string, what: string): Uint8Array {
  try {
    const decoded = bech32.decodeToBytes(text as `${string}1${string}`);
    if (decoded.prefix !== hrp || decoded.bytes.length !== 32) throw new Error("wrong prefix or length");
    return decoded.bytes;
  } catch {
    throw new AgeKeyError(`not a valid age ${what}`);
  }
}

export interface AgeIdentity {
  privateKey: KeyObject;
  /** The recipient's raw 32-byte public key. */
  publicRaw: Buffer;
}

export function parseRecipient(text: string): Buffer {
  const trimmed = text.trim();
  if (trimmed !== trimmed.toLowerCase())
    throw new AgeKeyError("not a valid age recipient (must be lowercase)");
  return Buffer.from(decodeBech32(trimmed, RECIPIENT_HRP, "recipient (age1…)"));
}

export function parseIdentity(text: string): AgeIdentity {
  const trimmed = text.trim();
  if (trimmed !== trimmed.toUpperCase())
    throw new AgeKeyError("not a valid age identity (must be uppercase)");
  const raw = decodeBech32(trimmed.toLowerCase(), IDENTITY_HRP, "identity (AGE-SECRET-KEY-1…)");
  const privateKey = x25519PrivateKey(raw);
  return { privateKey, publicRaw: rawPublicKey(createPublicKey(privateKey)) };
}

/** Parses an identity file as `age-keygen` writes it: comments and blank lines ignored. */
export function parseIdentityFile(text: string): string[] {
  const keys = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  for (const key of keys) {
    if (!key.toUpperCase().startsWith("AGE-SECRET-KEY-1"))
      throw new AgeKeyError("identity file holds a line that is not an age identity (AGE-SECRET-KEY-1…)");
  }
  return keys;
}

export function encodeRecipient(publicRaw: Uint8Array): string {
  return bech32.encode(RECIPIENT_HRP, bech32.toWords(publicRaw), false);
}

export function recipientOf(identity: string): string {
  return encodeRecipient(parseIdentity(identity).publicRaw);
}

/** A new identity and its recipient, like `age-keygen`. */
export function generateIdentity(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const der = privateKey.export({ format: "der", type: "pkcs8" });
  const raw = der.subarray(der.length - 32);
  const identity = bech32.encode(IDENTITY_HRP, bech32.toWords(raw), false).toUpperCase();
  return { identity, recipient: encodeRecipient(rawPublicKey(publicKey)) };
}
