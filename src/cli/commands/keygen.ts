import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { plainErrno } from "../../kit/errno.ts";
import { UsageError } from "../../kit/errors.ts";
import { examples, printJson } from "../_shared.ts";

export function register(program: Command): void {
  program
    .command("keygen")
    .description("create an age identity file (like age-keygen) and print its recipient for the config")
    .requiredOption(
      "-o, --output <file>",
      "where to write the identity (created with mode 0600, never overwritten); - for stdout",
    )
    .option("--signing", "create an Ed25519 signing key for signed manifests instead (docs/security.md)")
    .option("--json", "print the file and its public key as JSON on stdout")
    .addHelpText(
      "after",
      examples([
        "cairn keygen -o key.txt               # keep key.txt away from the backup host",
        "cairn keygen --signing -o signing.key # on the backup host; put the printed key in signing.public_key",
        "cairn keygen -o - | pass insert -m backups/age   # straight into a password store",
      ]),
    )
    .action(async (flags: { output: string; signing?: boolean; json?: boolean }) => {
      const created = flags.signing ? await signingKey() : await ageKey();
      const label = flags.signing ? "public key (signing.public_key)" : "recipient";
      if (flags.output === "-") {
        process.stdout.write(created.text);
        process.stderr.write(`its ${label}: ${created.publicKey}\n`);
        return;
      }
      writeKeyFile(flags.output, created.text);
      if (flags.json) {
        printJson({
          file: flags.output,
          kind: flags.signing ? "signing" : "age",
          public_key: created.publicKey,
        });
        return;
      }
      process.stderr.write(
        flags.signing
          ? `signing key written to ${flags.output}; its ${label}:\n`
          : `identity written to ${flags.output}; its ${label}:\n`,
      );
      process.stdout.write(`${created.publicKey}\n`);
    });
}

/** A new key file: mode 0600, never over an existing file. */
export function writeKeyFile(path: string, text: string): void {
  try {
    writeFileSync(path, text, { mode: 0o600, flag: "wx" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === "EEXIST" ? `${path} already exists` : `cannot write ${path}: ${plainErrno(code)}`,
      code === "EEXIST" ? { hint: "a key is never overwritten: choose another file name" } : {},
    );
  }
}

export async function ageKey(): Promise<{ text: string; publicKey: string }> {
  const { generateIdentity } = await import("../../age/index.ts");
  const { identity, recipient } = generateIdentity();
  return {
    text: `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`,
    publicKey: recipient,
  };
}

async function signingKey() {
  const { generateSigningKey } = await import("../../engine/signing.ts");
  const { privatePem, publicKey } = generateSigningKey();
  return { text: privatePem, publicKey };
}
