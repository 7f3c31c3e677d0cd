import type { Command } from "commander";
import { type CliContext, collect, examples, type KeyFlags, printJson } from "../_shared.ts";

export function register(program: Command, cli: CliContext): void {
  program
    .command("verify")
    .description("read a snapshot back: checksums, decryption, decompression, and the source's own check")
    .argument("<snapshot>", "JOB, JOB@latest, JOB@ID or JOB@ID-PREFIX")
    .option("-i, --identity <file>", "age identity file (repeatable); default $CAIRN_IDENTITY_FILE", collect)
    .option("--passphrase-file <file>", "file holding the passphrase; default $CAIRN_PASSPHRASE")
    .option("--destination <name>", "verify the copy on this destination")
    .option(
      "--allow-unprotected",
      "read a snapshot that is less protected than the job requires (not encrypted, not signed), with a warning",
    )
    .option("--json", "print the result as JSON on stdout")
    .addHelpText(
      "after",
      examples([
        "cairn verify app --identity key.txt      # full: decrypts and runs pg_restore --list / reads the tar",
        "cairn verify app                         # without a key: stored bytes against the manifest's SHA-256",
      ]),
    )
    .action(
      async (
        spec: string,
        flags: KeyFlags & { destination?: string; json?: boolean; allowUnprotected?: boolean },
        command: Command,
      ) => {
        const [{ keysFrom, snapshotRequest, withProgress }, { verify }] = await Promise.all([
          import("../_runtime.ts"),
          import("../../engine/restore.ts"),
        ]);
        const request = await snapshotRequest(command, cli, spec, flags);
        const result = await withProgress(request.runtime, (onProgress) =>
          verify({
            ...request,
            ...keysFrom(flags),
            ...(onProgress ? { onProgress } : {}),
            ...(flags.allowUnprotected ? { allowUnprotected: true } : {}),
          }),
        );
        if (flags.json) {
          printJson(result);
          return;
        }
        for (const a of result.artifacts) process.stdout.write(`${a.artifact}: ok, ${a.summary}\n`);
        process.stdout.write(
          `${request.job}@${result.snapshot} on ${result.destination}: ${result.level === "full" ? "verified" : "stored bytes verified (content not decrypted: no key given)"}\n`,
        );
      },
    );
}
