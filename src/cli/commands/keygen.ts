import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { generateIdentity } from "../../age/index.ts";
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
    .addHelpText("after", examples(["cairn keygen -o key.txt    # keep key.txt away from the backup host"]))
    .action((flags: { output: string }) => {
      const { identity, recipient } = generateIdentity();
      const text = `# created: ${new Date().toISOString()}\n# public key: ${recipient}\n${identity}\n`;
      try {
        writeFileSync(flags.output, text, { mode: 0o600, flag: "wx" });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new UsageError(
          code === "EEXIST" ? `${flags.output} already exists` : `cannot write ${flags.output}: ${code}`,
        );
      }
      process.stderr.write(`identity written to ${flags.output}; its recipient:\n`);
      process.stdout.write(`${recipient}\n`);
    });
}
