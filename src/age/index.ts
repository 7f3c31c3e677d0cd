/** age v1 encryption (https://age-encryption.org/v1), readable and writable by the standard `age` tool. */
import { AgeArmorError } from "./armor.ts";
import { AgeHeaderError, AgeMacError, AgeNoMatchError, wrapScrypt, wrapX25519 } from "./header.ts";
import { parseIdentity, parseRecipient } from "./keys.ts";
import { AgeDecryptStream, AgeEncryptStream, AgePayloadError } from "./stream.ts";

export { AgeKeyError, generateIdentity, parseIdentityFile, recipientOf } from "./keys.ts";
export { AgeArmorError, AgeHeaderError, AgeMacError, AgeNoMatchError, AgePayloadError };

export interface AgeEncryptOptions {
  /** `age1…` recipients. */
  recipients?: string[];
  /** Passphrase encryption (scrypt); age allows it only without recipients. */
  passphrase?: string;
  /** scrypt work factor as log2(N); age's default is 18. */
  scryptLogN?: number;
}

export function createEncryptStream(options: AgeEncryptOptions): AgeEncryptStream {
  const recipients = (options.recipients ?? []).map(parseRecipient);
  if (options.passphrase !== undefined && recipients.length > 0)
    throw new AgeHeaderError("age cannot combine a passphrase with recipients: choose one");
  if (options.passphrase === undefined && recipients.length === 0)
    throw new AgeHeaderError("age encryption needs at least one recipient or a passphrase");
  const passphrase = options.passphrase;
  return new AgeEncryptStream((fileKey) =>
    passphrase !== undefined
      ? [wrapScrypt(fileKey, passphrase, options.scryptLogN)]
      : recipients.map((r) => wrapX25519(fileKey, r)),
  );
}

export interface AgeDecryptOptions {
  /** `AGE-SECRET-KEY-1…` identities. */
  identities?: string[];
  passphrases?: string[];
}

/** Decrypts binary or armored age input. */
export function createDecryptStream(options: AgeDecryptOptions): AgeDecryptStream {
  return new AgeDecryptStream({
    identities: (options.identities ?? []).map(parseIdentity),
    passphrases: options.passphrases ?? [],
  });
}
