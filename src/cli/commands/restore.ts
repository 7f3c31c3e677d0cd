import type { Command } from "commander";
import { type CliContext, collect, examples, type KeyFlags, printJson } from "../_shared.ts";

interface Flags extends KeyFlags {
  source?: string;
  artifact?: string;
  toDir?: string;
  toDatabase?: string;
  force?: boolean;
  allowUnprotected?: boolean;
  destination?: string;
  json?: boolean;
}

export function register(program: Command, cli: CliContext): void {
  program
    .command("restore")
    .description("restore one source of a snapshot into a new folder or database (never overwrites)")
    .argument("<snapshot>", "JOB, JOB@latest, JOB@ID or JOB@ID-PREFIX")
    .option("--source <name>", "which source of the snapshot (needed when it holds several)")
    .option(
      "--artifact <name>",
      "which artifact of the source: a database name, `globals`, or the file name (see `cairn show`)",
    )
    .option("--to-dir <dir>", "restore files into this new or empty folder")
    .option("--to-database <name>", "restore a database dump into this database (created if missing)")
    .option(
      "--force",
      "PostgreSQL: restore into an existing database that holds tables (the dump merges into it, in one transaction)",
    )
    .option("-i, --identity <file>", "age identity file (repeatable); default $CAIRN_IDENTITY_FILE", collect)
    .option("--passphrase-file <file>", "file holding the passphrase; default $CAIRN_PASSPHRASE")
    .option("--destination <name>", "read from this destination instead of the first that has the snapshot")
    .option(
      "--allow-unprotected",
      "read a snapshot that is less protected than the job requires (not encrypted, not signed), with a warning",
    )
    .option("--json", "print the result as JSON on stdout")
    .addHelpText(
      "after",
      examples([
        "cairn restore app --source db --to-database app_copy --identity key.txt",
        "cairn restore app@2026-11-23 --source uploads --to-dir /tmp/r --identity key.txt",
        "cairn restore cluster --artifact billing --to-database billing_copy -i key.txt",
        "cairn restore cluster --artifact globals -i key.txt   # roles and tablespaces",
        "CAIRN_PASSPHRASE=… cairn restore notes --to-dir ./notes-restored",
      ]),
    )
    .action(async (spec: string, flags: Flags, command: Command) => {
      const [{ keysFrom, snapshotRequest, withProgress }, { restore }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../engine/restore.ts"),
      ]);
      const request = await snapshotRequest(command, cli, spec, flags);
      const result = await withProgress(request.runtime, (onProgress) =>
        restore({
          ...request,
          ...(onProgress ? { onProgress } : {}),
          ...keysFrom(flags),
          ...(flags.source ? { source: flags.source } : {}),
          ...(flags.artifact ? { artifact: flags.artifact } : {}),
          ...(flags.toDir ? { toDir: flags.toDir } : {}),
          ...(flags.toDatabase ? { toDatabase: flags.toDatabase } : {}),
          ...(flags.force ? { force: true } : {}),
          ...(flags.allowUnprotected ? { allowUnprotected: true } : {}),
        }),
      );
      if (flags.json) printJson(result);
      else
        for (const r of result.restored)
          process.stdout.write(`${request.job}@${result.snapshot} ${r.source}: ${r.summary}\n`);
    });
}
