import type { Command } from "commander";
import type { BackupReport, JobResult } from "../../engine/backup.ts";
import { EXIT, exitCodeOf, mostSevere, UsageError } from "../../kit/errors.ts";
import { formatSize } from "../../kit/size.ts";
import { type CliContext, examples, globalsOf, printJson, selectionOf, withSelection } from "../_shared.ts";
import { oneOffConfig, parseOneOff, sourceType } from "../oneoff.ts";

/** The words after `backup` exactly as typed: one-off runs parse them themselves. */
function wordsAfterBackup(command: Command): string[] {
  const raw = (command.parent as unknown as { rawArgs?: string[] } | null)?.rawArgs ?? [];
  const at = raw.indexOf("backup", 2);
  return at < 0 ? [] : raw.slice(at + 1);
}

/**
 * A source type as first word means a one-off run, unless the config has a job of that name and
 * the words say nothing of where a one-off run would go (`--to`, `--stdout`).
 */
async function isOneOff(first: string | undefined, command: Command): Promise<boolean> {
  if (!first) return false;
  const [{ createRegistry }, { loadConfig }] = await Promise.all([
    import("../../registry.ts"),
    import("../../config/load.ts"),
  ]);
  if (!sourceType(first, createRegistry())) return false;
  const words = wordsAfterBackup(command);
  if (words.some((w) => w === "--stdout" || w === "--to" || w.startsWith("--to="))) return true;
  try {
    const globals = globalsOf(command);
    return !(first in loadConfig(globals.config ? { file: globals.config } : {}).jobs);
  } catch {
    return true;
  }
}

function printReport(report: BackupReport, json: boolean | undefined, dryRun = false): void {
  if (json) printJson({ ...report, ...(dryRun ? { dryRun } : {}) });
  else
    for (const job of report.jobs) {
      if (job.skipped) {
        process.stdout.write(`${job.job}: skipped, not due (--force runs it): ${job.skipped}\n`);
        continue;
      }
      const line = job.ok
        ? `${job.job}@${job.snapshot}: ${dryRun ? "dry run ok (nothing stored)" : "ok"}, ${formatSize(job.rawBytes)} read, ${formatSize(job.storedBytes)} stored in ${(job.durationMs / 1000).toFixed(1)} s`
        : job.partial
          ? `${job.job}@${job.snapshot}: PARTIAL: ${job.error?.message}`
          : `${job.job}: FAILED: ${job.error?.message}`;
      process.stdout.write(`${line}\n`);
      if (!job.ok && !job.skipped)
        for (const [name, folder] of Object.entries(job.destinations))
          process.stdout.write(`  ${name}: stored (${folder})\n`);
      for (const [name, why] of Object.entries(job.failedDestinations ?? {}))
        process.stdout.write(`  ${name}: FAILED: ${why}\n`);
      for (const pruned of job.pruned ?? [])
        process.stdout.write(
          pruned.skipped || pruned.errors.length
            ? `  pruning ${pruned.destination} FAILED: ${pruned.skipped ?? pruned.errors.map((e) => `${e.id}: ${e.error}`).join("; ")}\n`
            : `  pruned ${pruned.destination}: kept ${pruned.keep.length}, removed ${pruned.remove.length}${pruned.leftovers.length ? ` and ${pruned.leftovers.length} leftover(s)` : ""}\n`,
        );
    }
  if (!json)
    for (const job of report.jobs)
      for (const failure of job.notifyFailures ?? [])
        process.stdout.write(`  notifier ${failure.notifier} failed (the result stands): ${failure.error}\n`);
  const pruneFailed = report.jobs.some((j) =>
    (j.pruned ?? []).some(
      (p) => p.errors.length > 0 || (p.skipped !== undefined && !p.skipped.startsWith("no retention")),
    ),
  );
  process.exitCode = mostSevere([...report.jobs.map(jobExitCode), pruneFailed ? EXIT.failed : EXIT.ok]);
}

/** 0 ok; 3 when part of it was stored (a source or a destination failed); else the error's own code. */
export function jobExitCode(job: JobResult): number {
  if (job.ok) return EXIT.ok;
  if (job.partial) return EXIT.partial;
  return job.error ? exitCodeOf(job.error.code) : EXIT.failed;
}

export function register(program: Command, cli: CliContext): void {
  withSelection(program.command("backup"))
    .description(
      "back up the named jobs (all enabled jobs when none is named), or run a one-off backup: SOURCE-TYPE --option … --to DIR",
    )
    .argument("[jobs...]", "jobs to run; or source types with their options for a one-off run")
    .option("--json", "print the report as JSON on stdout")
    .option("--dry-run", "run the sources and transforms to the end, store and record nothing")
    .option("--force", "run even where the frequency says a job or destination is not due")
    .option(
      "-n, --notify <name>",
      "use this notifier in this run even if it has enabled: false (repeatable)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option("--sentry-dsn <dsn>", "report failures to Sentry (default $SENTRY_DSN)")
    .option(
      "--metrics-file <file>",
      "update this Prometheus textfile after the run (default: metrics_file in the config)",
    )
    .option("--to <dir>", "one-off: store the snapshot in this folder (repeatable)")
    .option("--stdout", "one-off: write the one artifact to stdout (uncompressed unless --compression)")
    .option("--trailer", "one-off with --stdout: end with a trailer that `cairn upload - --trailer` checks")
    .option("--compression <type>", "one-off: zstd (default), gzip or none")
    .option("-r, --recipient <age1…>", "one-off: encrypt to this age recipient (repeatable)")
    .option("--passphrase-file <file>", "one-off: encrypt with the passphrase in this file")
    .option("--name <job>", "one-off: the job name snapshots are filed under (default: the source types)")
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      "after",
      examples([
        "cairn backup                 # every enabled job in ./cairn.yaml",
        "cairn backup app -c /etc/cairn.yaml",
        "cairn backup app --json | jq .jobs[0].snapshot",
        "cairn backup app --dry-run -v  # dumps, compresses, encrypts; stores nothing",
        "cairn backup --force           # also the jobs whose frequency says not due yet",
        "cairn backup --metrics-file /var/lib/prometheus/node-exporter/cairn.prom",
        "cairn backup --only 'db-*' --skip offsite   # jobs named db-…, not their destinations tagged offsite",
        "",
        "One-off runs, no config needed (flags are the source's options in kebab-case; --db repeats):",
        "cairn backup postgres --db app --db billing --host 127.0.0.1 --to ./backups",
        "cairn backup mysql --db wordpress files --path /var/www/wordpress --to ./backups -r age1…",
        "cairn backup postgres --db app --password-file /etc/cairn/pg.pw --to /srv/backups",
        "cairn backup mongo --uri mongodb://db.internal/shop --stdout | mongorestore --archive --nsFrom 'shop.*' --nsTo 'copy.*'",
      ]),
    )
    .action(
      async (
        jobs: string[],
        flags: {
          json?: boolean;
          dryRun?: boolean;
          force?: boolean;
          notify?: string[];
          sentryDsn?: string;
          metricsFile?: string;
          only?: string[];
          skip?: string[];
        },
        command: Command,
      ) => {
        if (await isOneOff(jobs[0], command)) return oneOff(command, cli);
        const unknown = jobs.find((j) => j.startsWith("-"));
        if (unknown) throw new UsageError(`unknown option ${unknown}`, { hint: "see cairn backup --help" });
        const oneOffFlag = [
          "to",
          "stdout",
          "trailer",
          "compression",
          "recipient",
          "passphraseFile",
          "name",
        ].find((k) => command.opts()[k] !== undefined);
        if (oneOffFlag)
          throw new UsageError(
            `--${oneOffFlag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is for one-off runs`,
            {
              hint: "write the source type first: cairn backup postgres --db app --to ./backups",
            },
          );
        const [{ runtimeOf, withProgress }, { backup }, { updateMetricsFile }] = await Promise.all([
          import("../_runtime.ts"),
          import("../../engine/backup.ts"),
          import("../../metrics/textfile.ts"),
        ]);
        const runtime = await runtimeOf(command, cli);
        const report = await withProgress(runtime, (onProgress) =>
          backup({
            config: runtime.config,
            jobs,
            logger: runtime.logger,
            signal: runtime.signal,
            dryRun: flags.dryRun ?? false,
            force: flags.force ?? false,
            ...(flags.notify ? { notify: flags.notify } : {}),
            ...(flags.sentryDsn ? { sentryDsn: flags.sentryDsn } : {}),
            ...selectionOf(flags),
            ...(onProgress ? { onProgress } : {}),
          }),
        );
        const metricsFile = flags.metricsFile ?? runtime.config.metricsFile;
        if (metricsFile && !flags.dryRun)
          await updateMetricsFile(metricsFile, report).catch((error: Error) =>
            runtime.logger.error(`could not update the metrics file ${metricsFile}: ${error.message}`),
          );
        printReport(report, flags.json, flags.dryRun);
      },
    );
}

async function oneOff(command: Command, cli: CliContext): Promise<void> {
  const [{ loggerFor }, { createRegistry }, { configFromObject }, { backup }, { backupToStream }] =
    await Promise.all([
      import("../_runtime.ts"),
      import("../../registry.ts"),
      import("../../config/load.ts"),
      import("../../engine/backup.ts"),
      import("../../engine/backup-to-stream.ts"),
    ]);
  const registry = createRegistry();
  const run = parseOneOff(wordsAfterBackup(command), registry);
  const config = configFromObject(oneOffConfig(run, registry), { registry });
  for (const secret of config.secrets) cli.secrets.add(secret);
  const globals = globalsOf(command);
  const logger = loggerFor(globals, config.secrets);
  if (run.stdout) {
    if (process.stdout.isTTY)
      throw new UsageError("--stdout would write binary data to the terminal", {
        hint: "pipe it: … --stdout | …",
      });
    await backupToStream({
      config,
      job: run.job,
      output: process.stdout,
      logger,
      signal: cli.signal,
      trailer: run.trailer,
    });
    return;
  }
  const flags = command.opts() as { dryRun?: boolean; notify?: string[]; sentryDsn?: string };
  const report = await backup({
    config,
    jobs: [run.job],
    logger,
    signal: cli.signal,
    dryRun: flags.dryRun ?? false,
    ...(flags.notify ? { notify: flags.notify } : {}),
    ...(flags.sentryDsn ? { sentryDsn: flags.sentryDsn } : {}),
  });
  printReport(report, run.json, flags.dryRun);
}
