import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import type { Command } from "commander";
import { CairnError } from "../../kit/errors.ts";
import type { ScheduleTarget } from "../../schedule/install.ts";
import { type CliContext, examples, printJson } from "../_shared.ts";

interface Flags {
  cron?: boolean;
  user?: boolean;
  dir?: string;
  enable?: boolean;
}

const targetOf = (flags: Flags): ScheduleTarget => ({
  cron: flags.cron ?? false,
  user: flags.user ?? false,
  ...(flags.dir ? { dir: flags.dir } : {}),
});

export function register(program: Command, cli: CliContext): void {
  const schedule = program
    .command("schedule")
    .description("run the jobs that have a `schedule` from systemd timers or cron, without `cairn daemon`")
    .addHelpText(
      "after",
      examples([
        "cairn schedule show",
        "sudo cairn -c /etc/cairn/cairn.yaml schedule install",
        "cairn schedule install --cron",
      ]),
    );

  schedule
    .command("show")
    .description("print the systemd units (or with --cron the cron file) that `install` would write")
    .option("--cron", "a cron.d file instead of systemd timers")
    .option("--user", "for the current user (systemd --user units; crontab lines without a user field)")
    .option("--dir <folder>", "as install --dir would write them")
    .option("--json", "print the files and the enable commands as JSON")
    .addHelpText(
      "after",
      examples([
        "cairn schedule show",
        "cairn schedule show --cron",
        "cairn schedule show --json | jq -r '.files[].path'",
      ]),
    )
    .action(async (flags: Flags & { json?: boolean }, command: Command) => {
      const [{ runtimeOf }, { enableCommands, scheduleFiles }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../schedule/install.ts"),
      ]);
      const runtime = await runtimeOf(command, cli);
      if (flags.json) {
        printJson({
          files: scheduleFiles(runtime.config, targetOf(flags)),
          enable_commands: enableCommands(runtime.config, targetOf(flags)),
        });
        return;
      }
      for (const file of scheduleFiles(runtime.config, targetOf(flags)))
        process.stdout.write(`# ── ${file.path}\n${file.content}\n`);
      for (const call of enableCommands(runtime.config, targetOf(flags)))
        process.stdout.write(`# then: ${call.join(" ")}\n`);
    });

  schedule
    .command("install")
    .description(
      "write a systemd service + timer per scheduled job (or a cron.d file with --cron) and enable the timers",
    )
    .option("--cron", "write /etc/cron.d/cairn instead of systemd timers")
    .option("--user", "systemd --user units in ~/.config/systemd/user")
    .option("--dir <folder>", "write the files here instead (e.g. to review them first)")
    .option("--no-enable", "write the files only; do not run systemctl")
    .addHelpText(
      "after",
      examples([
        "cairn schedule install --user",
        "sudo cairn -c /etc/cairn/cairn.yaml schedule install",
        "sudo cairn schedule install --cron",
        "cairn schedule install --dir ./units --no-enable",
      ]),
    )
    .action(async (flags: Flags, command: Command) => {
      const [{ runtimeOf }, { defaultDir, enableCommands, scheduleFiles }] = await Promise.all([
        import("../_runtime.ts"),
        import("../../schedule/install.ts"),
      ]);
      const runtime = await runtimeOf(command, cli);
      const target = targetOf(flags);
      if (flags.user && flags.cron)
        throw new CairnError("USAGE", "--cron --user cannot edit your crontab safely", {
          hint: "add the lines of `cairn schedule show --cron --user` with `crontab -e`",
        });
      const files = scheduleFiles(runtime.config, target);
      const dir = target.dir ?? defaultDir(target);
      mkdirSync(dir, { recursive: true });
      for (const file of files) {
        writeFileSync(file.path, file.content, { mode: 0o644 });
        process.stdout.write(`wrote ${file.path}\n`);
      }
      if (!target.cron) {
        const written = new Set(files.map((f) => basename(f.path)));
        const stale = readdirSync(dir).filter((name) => /^cairn-.+\.timer$/.test(name) && !written.has(name));
        for (const name of stale)
          process.stdout.write(
            `${name} is not scheduled any more: systemctl ${flags.user ? "--user " : ""}disable --now ${name}, then remove it and its .service\n`,
          );
      }
      if (flags.enable === false) return;
      for (const call of enableCommands(runtime.config, target)) {
        try {
          execFileSync(call[0] as string, call.slice(1), { stdio: ["ignore", "inherit", "pipe"] });
        } catch (error) {
          const stderr = String((error as { stderr?: Buffer }).stderr ?? "").trim();
          throw new CairnError("USAGE", `${call.join(" ")} failed: ${stderr || (error as Error).message}`, {
            hint: "the files are written; enable them by hand, or use `cairn daemon` where systemd is not running",
          });
        }
        process.stdout.write(`ran ${call.join(" ")}\n`);
      }
    });
}
