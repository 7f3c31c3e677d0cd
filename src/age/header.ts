/**
 * The age v1 header (https://age-encryption.org/v1): stanzas that wrap the file key, and the header MAC.
 * Parsing is strict, as the spec and the C2SP test vectors require: canonical base64, exact line
 * lengths, LF only.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  scryptSync,
  timingSafeEqual,
} from "node:crypto";
import { type AgeIdentity, rawPublicKey, x25519 } from "./keys.ts";

export const VERSION_LINE = "age-encryption.org/v1";
const X25519_LABEL = "age-encryption.org/v1/X25519";
const SCRYPT_LABEL = "age-encryption.org/v1/scrypt";
const FILE_KEY_SIZE = 16;
const WRAPPED_KEY_SIZE = FILE_KEY_SIZE + 16;
/** Same bound as the reference implementation: 2^22 needs 4 GiB·r/8… of work, more is an attack. */
const MAX_SCRYPT_LOG_N = 22;
export const DEFAULT_SCRYPT_LOG_N = 18;

/** The file is not a well-formed age file. */
export class AgeHeaderError extends Error {
  override name = "AgeHeaderError";
}
/** Well-formed, but no identity or passphrase we were given opens it. */
export class AgeNoMatchError extends Error {
  override name = "AgeNoMatchError";
}
/** A key unwrapped but the header was tampered with. */
export class AgeMacError extends Error {
  override name = "AgeMacError";
}

export interface Stanza {
  type: string;
  args: string[];
  body: Buffer;
}

export interface ParsedHeader {
  stanzas: Stanza[];
  mac: Buffer;
  /** The bytes the MAC covers: from the version line up to and including `---`. */
  macInput: Buffer;
}

const ARG_RE = /^[\x21-\x7e]+$/;
const B64_RE = /^[A-Za-z0-9+/]*$/;

export function decodeCanonicalBase64(text: string, what: string): Buffer {
  if (!B64_RE.test(text) || text.length % 4 === 1) throw new AgeHeaderError(`${what}: invalid base64`);
  const bytes = Buffer.from(text, "base64");
  if (encodeBase64(bytes) !== text) throw new AgeHeaderError(`${what}: non-canonical base64`);
  return bytes;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64").replace(/=+$/, "");
}

/**
 * Parses a complete header (ending with the MAC line's LF). Returns undefined when `data` does not
 * yet hold the whole header, so a stream can wait for more bytes.
 */
export function parseHeader(data: Buffer): { header: ParsedHeader; length: number } | undefined {
  let offset = 0;
  const nextLine = (): string | undefined => {
    const end = data.indexOf(0x0a, offset);
    if (end === -1) return undefined;
    const line = data.subarray(offset, end).toString("latin1");
    offset = end + 1;
    return line;
  };
  const version = nextLine();
  if (version === undefined) {
    if (!VERSION_LINE.startsWith(data.toString("latin1", 0, Math.min(data.length, VERSION_LINE.length))))
      throw new AgeHeaderError("not an age file (no age-encryption.org/v1 header)");
    return undefined;
  }
  if (version !== VERSION_LINE) throw new AgeHeaderError("not an age v1 file (unsupported version line)");
  const stanzas: Stanza[] = [];
  for (;;) {
    const lineStart = offset;
    const line = nextLine();
    if (line === undefined) return undefined;
    if (line.startsWith("---")) {
      if (!line.startsWith("--- ")) throw new AgeHeaderError("malformed MAC line");
      const mac = decodeCanonicalBase64(line.slice(4), "header MAC");
      if (mac.length !== 32) throw new AgeHeaderError("header MAC has the wrong length");
      return { header: { stanzas, mac, macInput: data.subarray(0, lineStart + 3) }, length: offset };
    }
    if (!line.startsWith("-> ")) throw new AgeHeaderError("malformed stanza line");
    const args = line.slice(3).split(" ");
    for (const arg of args) if (!ARG_RE.test(arg)) throw new AgeHeaderError("malformed stanza argument");
    const [type, ...rest] = args;
    if (type === undefined) throw new AgeHeaderError("stanza without a type");
    const chunks: Buffer[] = [];
    for (;;) {
      const bodyLine = nextLine();
      if (bodyLine === undefined) return undefined;
      if (bodyLine.length > 64) throw new AgeHeaderError("stanza body line longer than 64 columns");
      chunks.push(decodeCanonicalBase64(bodyLine, "stanza body"));
      if (bodyLine.length < 64) break;
    }
    stanzas.push({ type, args: rest, body: Buffer.concat(chunks) });
  }
}

export function encodeHeader(stanzas: Stanza[], fileKey: Buffer): Buffer {
  let text = `${VERSION_LINE}\n`;
  for (const stanza of stanzas) {
    text += `-> ${[stanza.type, ...stanza.args].join(" ")}\n`;
    const body = encodeBase64(stanza.body);
    for (let i = 0; i <= body.length; i += 64) text += `${body.slice(i, i + 64)}\n`;
  }
  text += "---";
  const mac = headerMac(fileKey, Buffer.from(text, "latin1"));
  return Buffer.from(`${text} ${encodeBase64(mac)}\n`, "latin1");
}

function headerMac(fileKey: Buffer, macInput: Buffer): Buffer {
  const key = Buffer.from(hkdfSync("sha256", fileKey, Buffer.alloc(0), "header", 32));
  return createHmac("sha256", key).update(macInput).digest();
}

export function verifyHeaderMac(header: ParsedHeader, fileKey: Buffer): void {
  if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac))
    throw new AgeMacError("age header MAC does not match: the file was modified");
}

function aead(key: Uint8Array, plaintext: Buffer): Buffer {
  const cipher = createCipheriv("chacha20-poly1305", key, Buffer.alloc(12), { authTagLength: 16 });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

function aeadOpen(key: Uint8Array, sealed: Buffer): Buffer | undefined {
  const decipher = createDecipheriv("chacha20-poly1305", key, Buffer.alloc(12), { authTagLength: 16 });
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const plaintext = decipher.update(sealed.subarray(0, sealed.length - 16));
  try {
    decipher.final();
    return plaintext;
  } catch {
    return undefined;
  }
}

export function newFileKey(): Buffer {
  return randomBytes(FILE_KEY_SIZE);
}

export function wrapX25519(fileKey: Buffer, recipientRaw: Buffer): Stanza {
  const ephemeral = generateKeyPairSync("x25519");
  const share = rawPublicKey(ephemeral.publicKey);
  const shared = x25519(ephemeral.privateKey, recipientRaw);
  const salt = Buffer.concat([share, recipientRaw]);
  const key = new Uint8Array(hkdfSync("sha256", shared, salt, X25519_LABEL, 32));
  return { type: "X25519", args: [encodeBase64(share)], body: aead(key, fileKey) };
}

function scryptKey(passphrase: string, salt: Buffer, logN: number): Buffer {
  const N = 2 ** logN;
  return scryptSync(Buffer.from(passphrase, "utf8"), Buffer.concat([Buffer.from(SCRYPT_LABEL), salt]), 32, {
    N,
    r: 8,
    p: 1,
    maxmem: 256 * N * 8 + 1024 * 1024,
  });
}

export function wrapScrypt(fileKey: Buffer, passphrase: string, logN = DEFAULT_SCRYPT_LOG_N): Stanza {
  const salt = randomBytes(16);
  return {
    type: "scrypt",
    args: [encodeBase64(salt), String(logN)],
    body: aead(scryptKey(passphrase, salt, logN), fileKey),
  };
}

export interface UnwrapKeys {
  identities: AgeIdentity[];
  passphrases: string[];
}

/** Finds the file key in the header's stanzas, checking each stanza's syntax as the spec says. */
export function unwrapFileKey(header: ParsedHeader, keys: UnwrapKeys): Buffer {
  const scryptStanzas = header.stanzas.filter((s) => s.type === "scrypt");
  if (scryptStanzas.length > 0 && header.stanzas.length > 1)
    throw new AgeHeaderError("an scrypt stanza must be the only stanza in the header");
  for (const stanza of header.stanzas) {
    if (stanza.type === "X25519") {
      if (stanza.args.length !== 1) throw new AgeHeaderError("X25519 stanza needs exactly one argument");
      const share = decodeCanonicalBase64(stanza.args[0]!, "X25519 share");
      if (share.length !== 32) throw new AgeHeaderError("X25519 share must be 32 bytes");
      if (stanza.body.length !== WRAPPED_KEY_SIZE)
        throw new AgeHeaderError("X25519 stanza body has the wrong size");
      for (const identity of keys.identities) {
        let shared: Buffer;
        try {
          shared = x25519(identity.privateKey, share);
        } catch (cause) {
          throw new AgeHeaderError("X25519 share is invalid", { cause });
        }
        const salt = Buffer.concat([share, identity.publicRaw]);
        const key = new Uint8Array(hkdfSync("sha256", shared, salt, X25519_LABEL, 32));
        const fileKey = aeadOpen(key, stanza.body);
        if (fileKey) return fileKey;
      }
    } else if (stanza.type === "scrypt") {
      if (stanza.args.length !== 2) throw new AgeHeaderError("scrypt stanza needs exactly two arguments");
      const salt = decodeCanonicalBase64(stanza.args[0]!, "scrypt salt");
      if (salt.length !== 16) throw new AgeHeaderError("scrypt salt must be 16 bytes");
      const logNText = stanza.args[1]!;
      if (!/^[1-9][0-9]*$/.test(logNText))
        throw new AgeHeaderError("scrypt work factor is not a decimal number");
      const logN = Number(logNText);
      if (stanza.body.length !== WRAPPED_KEY_SIZE)
        throw new AgeHeaderError("scrypt stanza body has the wrong size");
      if (keys.passphrases.length === 0) continue;
      if (logN > MAX_SCRYPT_LOG_N)
        throw new AgeHeaderError(`scrypt work factor 2^${logN} is above the limit of 2^${MAX_SCRYPT_LOG_N}`);
      for (const passphrase of keys.passphrases) {
        const fileKey = aeadOpen(scryptKey(passphrase, salt, logN), stanza.body);
        if (fileKey) return fileKey;
      }
    }
  }
  throw new AgeNoMatchError(
    keys.passphrases.length > 0 && scryptStanzas.length > 0
      ? "wrong passphrase: it does not open this age file"
      : "no identity given opens this age file (wrong key, or the file was encrypted to other recipients)",
  );
}
