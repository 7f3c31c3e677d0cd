import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { generateIdentity } from "../../age/index.ts";
import { generateSigningKey } from "../../core/signing.ts";
import { UsageError } from "../../errors.ts";
import { examples } from "../_shared.ts";

export function register(program: Command): void {
  program
    .command("keygen")
    .description("create an age identity file (like age-keygen) and print its recipient for the config")
    .requiredOption(
      "-o, --output <file>",
      "where to write the identity (created with mode 0600, never overwritten)",
    )
    .option("--signing", "create an Ed25519 signing key for signed manifests instead (docs/security.md)")
    .addHelpText(
      "after",
      examples([
        "cairn keygen -o key.txt               # keep key.txt away from the backup host",
        "cairn keygen --signing -o signing.key # on the backup host; put the printed key in signing.public_key",
      ]),
    )
    .action((flags: { output: string; signing?: boolean }) => {
      const created = flags.signing ? signingKey() : ageKey();
      try {
        writeFileSync(flags.output, created.text, { mode: 0o600, flag: "wx" });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new UsageError(
          code === "EEXIST" ? `${flags.output} already exists` : `cannot write ${flags.output}: ${code}`,
        );
      }
      process.stderr.write(
        flags.signing
          ? `signing key written to ${flags.output}; its public key (signing.public_key):\n`
          : `identity written to ${flags.output}; its recipient:\n`,
      );
      process.stdout.write(`${created.publicKey}\n`);
    });
}

function ageKey() {
  const { identity, recipient } = generateIdentity();
  return {
    text: `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`,
    publicKey: recipient,
  };
}

function signingKey() {
  const { privatePem, publicKey } = generateSigningKey();
  return { text: privatePem, publicKey };
}
