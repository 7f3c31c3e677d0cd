import { createReadStream, statSync } from "node:fs";
import { basename } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../kit/errors.ts";
import { formatSize } from "../../kit/size.ts";
import { type CliContext, examples, globalsOf, printJson } from "../_shared.ts";
import { destinationFromSpec } from "../oneoff.ts";

export function register(program: Command, cli: CliContext): void {
  program
    .command("upload")
    .description("store an existing file (or stdin: -) on a destination, as it is, never overwriting")
    .argument("<file>", "the file to store, or - for standard input (then --name is needed)")
    .argument("<destination>", "a folder, or a URL: s3://bucket/prefix, sftp://user@host/path")
    .option("--name <key>", "the object's name at the destination (default: the file's name)")
    .option("--json", "print the result as JSON on stdout")
    .option("--dry-run", "read the file to the end and store nothing")
    .option("--allow-empty", "store an empty input (refused by default: its producer probably failed)")
    .option(
      "--trailer",
      "the input ends with the trailer of `cairn backup … --stdout --trailer`: check and strip it",
    )
    .addHelpText(
      "after",
      examples([
        "cairn upload dump.sql.zst s3://acme-backups/manual/",
        "cairn backup postgres --db app --stdout --trailer --compression zstd | cairn upload - sftp://backup@nas/backups --name app.pgdump.zst --trailer",
      ]),
    )
    .action(
      async (
        file: string,
        spec: string,
        flags: { name?: string; json?: boolean; dryRun?: boolean; allowEmpty?: boolean; trailer?: boolean },
        command: Command,
      ) => {
        if (file === "-" && !flags.name) throw new UsageError("reading standard input needs --name KEY");
        if (file !== "-") {
          try {
            if (!statSync(file).isFile()) throw new UsageError(`${file} is not a file`);
          } catch (error) {
            if (error instanceof UsageError) throw error;
            throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code}`);
          }
        }
        const [{ loggerFor }, { upload }, { createRegistry }] = await Promise.all([
          import("../_runtime.ts"),
          import("../../engine/upload.ts"),
          import("../../registry.ts"),
        ]);
        const registry = createRegistry();
        const destination = destinationFromSpec(spec, registry) as { type: string };
        const key = flags.name ?? basename(file);
        const result = await upload({
          registry,
          destination,
          baseDir: process.cwd(),
          key,
          body: file === "-" ? process.stdin : createReadStream(file, { highWaterMark: 1024 * 1024 }),
          logger: loggerFor(globalsOf(command)),
          signal: cli.signal,
          dryRun: flags.dryRun ?? false,
          allowEmpty: flags.allowEmpty ?? false,
          trailer: flags.trailer ?? false,
        });
        if (flags.json) printJson(result);
        else
          process.stdout.write(
            `${flags.dryRun ? "dry run: would store" : "stored"} ${result.location} (${formatSize(result.size)})\n`,
          );
      },
    );
}
