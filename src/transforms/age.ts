import type { Readable } from "node:stream";
import { z } from "zod";
import { createDecryptStream, createEncryptStream, recipientOf } from "../age/index.ts";
import { parseRecipient } from "../age/keys.ts";
import { defineTransform, type PluginContext, type TransformRecord } from "../kit/contracts.ts";
import { DecryptError } from "../kit/errors.ts";
import { spawnReader } from "../kit/exec.ts";
import { findProgram } from "../kit/which.ts";

const recipient = z.string().refine(
  (value) => {
    try {
      parseRecipient(value);
      return true;
    } catch {
      return false;
    }
  },
  { message: "not an age recipient: expected age1… as printed by age-keygen" },
);

export const ageTransform = defineTransform({
  type: "age",
  role: "encryption",
  description:
    "age encryption (age-encryption.org/v1) to X25519 recipients or a passphrase; the age tool decrypts it",
  secrets: ["passphrase"],
  schema: z
    .object({
      recipients: z
        .array(recipient)
        .default([])
        .describe("age1… public keys; the backup host needs no secret key"),
      passphrase: z.string().min(1).optional().describe("passphrase (scrypt) instead of recipients"),
      scrypt_work_factor: z.number().int().min(10).max(22).default(18).describe("log2 of scrypt's N"),
      engine: z
        .enum(["auto", "tool", "builtin"])
        .default("auto")
        .describe(
          "auto: the age program encrypts to recipients when it is installed and its input comes from a program",
        ),
    })
    .refine((o) => o.recipients.length > 0 !== (o.passphrase !== undefined), {
      message: "give either recipients or a passphrase (age cannot combine them)",
    }),
  create: (options) => {
    // The age program takes recipients on its command line (public keys, not secrets); it cannot
    // take a passphrase without a terminal, so passphrases always use cairn's own implementation.
    const tool =
      options.engine !== "builtin" && options.passphrase === undefined ? findProgram("age") : undefined;
    if (options.engine === "tool" && !tool)
      throw new Error(
        "encryption engine 'tool' needs the age program on PATH and recipients (not a passphrase)",
      );
    return {
      record: {
        type: "age",
        ...(options.passphrase !== undefined ? { passphrase: true } : { recipients: options.recipients }),
      },
      extension: ".age",
      encode: () =>
        options.passphrase !== undefined
          ? createEncryptStream({ passphrase: options.passphrase, scryptLogN: options.scrypt_work_factor })
          : createEncryptStream({ recipients: options.recipients }),
      ...(tool
        ? {
            encodeFrom: (input: Readable, ctx: PluginContext) =>
              spawnReader(tool, ["--encrypt", ...options.recipients.flatMap((r) => ["-r", r])], input, {
                signal: ctx.signal,
                logger: ctx.logger,
              }),
          }
        : {}),
    };
  },
  decode: (record: TransformRecord, keys) => {
    if (record.passphrase === true) {
      if (!keys.passphrase)
        throw new DecryptError("this backup is encrypted with a passphrase", {
          hint: "pass --passphrase-file FILE or set CAIRN_PASSPHRASE",
        });
      return createDecryptStream({ passphrases: [keys.passphrase] });
    }
    if (keys.identities.length === 0) {
      const recipients = (record.recipients as string[] | undefined)?.join(", ") ?? "unknown";
      throw new DecryptError(`this backup is encrypted to age recipients (${recipients})`, {
        hint: "pass --identity FILE (an age identity file) or set CAIRN_IDENTITY_FILE",
      });
    }
    const wanted = new Set((record.recipients as string[] | undefined) ?? []);
    if (wanted.size > 0 && !keys.identities.some((id) => wanted.has(recipientOf(id))))
      throw new DecryptError(
        `none of the given identities matches the backup's recipients (${[...wanted].join(", ")})`,
        {
          hint: "use the identity whose recipient is listed here",
        },
      );
    const stream = createDecryptStream({ identities: keys.identities });
    // The identity belongs to a recipient the manifest lists: if it does not open the header, the
    // header is damaged; a wrong key was refused above.
    if (wanted.size > 0)
      stream.once("error", (error: Error) => {
        if (error.name !== "AgeNoMatchError") return;
        error.name = "AgeHeaderError";
        error.message =
          "the age header does not open with the identity of a recipient it was encrypted to: the header is damaged";
      });
    return stream;
  },
  shellDecode: (record) => (record.passphrase === true ? "age -d" : "age -d -i key.txt"),
});
