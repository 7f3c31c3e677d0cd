import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import { UsageError } from "../../kit/errors.ts";
import type { Registry } from "../../registry.ts";
import { collect, examples, globalsOf } from "../_shared.ts";
import { terminalQuestions } from "../questions.ts";
import { ageKey, writeKeyFile } from "./keygen.ts";

interface InitFlags {
  source?: string;
  destination?: string;
  key?: string;
  recipient?: string[];
  encryption: boolean;
  job: string;
  output?: string;
}

export function register(program: Command, parent: Command = program, name = "init"): void {
  parent
    .command(name)
    .description("write a commented cairn.yaml for one job, from the options the source and destination take")
    .option(
      "--source <type>",
      "what to back up: files, postgres, mysql, sqlite, redis, … (asked on a terminal)",
    )
    .option("--destination <type>", "where to store it: local, s3, sftp, … (asked on a terminal)")
    .option("--key <file>", "encrypt to this age identity file's recipient; the file is created if missing")
    .option("-r, --recipient <age1…>", "encrypt to this recipient (repeatable)", collect)
    .option("--no-encryption", "store unencrypted (the config says encryption: none)")
    .option("--job <name>", "the job's name", "main")
    .option("-o, --output <file>", "the file to write (default: -c, else ./cairn.yaml); never overwritten")
    .addHelpText(
      "after",
      examples([
        "cairn init                                               # asks on a terminal",
        "cairn init --source postgres --destination s3 --key key.txt",
        "cairn init --source files --destination local -r age1… -o /etc/cairn/cairn.yaml",
      ]),
    )
    .action(async (flags: InitFlags, command: Command) => {
      const [{ createRegistry }, { sampleConfig }] = await Promise.all([
        import("../../registry.ts"),
        import("../../config/sample.ts"),
      ]);
      const registry = createRegistry();
      const output = flags.output ?? globalsOf(command).config ?? "cairn.yaml";
      if (existsSync(output))
        throw new UsageError(`${output} already exists`, {
          hint: "init never overwrites a config: choose another file with -o, or edit this one",
        });
      const answers = await choices(flags, registry);
      const recipients = [
        ...(flags.recipient ?? []),
        ...(answers.key ? [await recipientFromKey(answers.key)] : []),
      ];
      if (flags.encryption && recipients.length === 0)
        throw new UsageError("no key to encrypt to", {
          hint: "give --key FILE (created if missing) or -r age1…, or --no-encryption to store the backups readable",
        });
      const text = sampleConfig(registry, {
        job: flags.job,
        source: answers.source,
        destination: answers.destination,
        recipients: flags.encryption ? recipients : [],
        ...(answers.key ? { identityFile: answers.key } : {}),
      });
      writeFileSync(output, text, { flag: "wx", mode: 0o600 });
      process.stderr.write(
        `wrote ${output}: job ${flags.job}, ${answers.source} → ${answers.destination}${recipients.length > 0 ? ", encrypted" : ", NOT encrypted"}\n` +
          `next: fill in the options marked CHANGE-ME or commented, then cairn${output === "cairn.yaml" ? "" : ` -c ${output}`} config check\n`,
      );
    });
}

/** The source, destination and key: from the flags, else asked on a terminal. */
async function choices(
  flags: InitFlags,
  registry: Registry,
): Promise<{ source: string; destination: string; key?: string }> {
  const sources = [...registry.sources.keys()];
  const destinations = [...registry.storages.keys()];
  const asking = process.stdin.isTTY && (!flags.source || !flags.destination);
  const questions = asking ? terminalQuestions() : undefined;
  try {
    const pick = async (flag: string | undefined, what: string, known: string[], fallback: string) => {
      let answer = flag;
      while (answer === undefined && questions) {
        const typed = (await questions.line(`${what} (${known.join(", ")}) [${fallback}]: `))?.trim();
        if (typed === undefined) break;
        if (typed === "" || known.includes(typed)) answer = typed || fallback;
        else process.stderr.write(`  not one of them: ${typed}\n`);
      }
      answer ??= fallback;
      if (!known.includes(answer))
        throw new UsageError(`unknown ${what.split(" ")[0]} type "${answer}"`, {
          hint: `one of ${known.join(", ")}`,
        });
      return answer;
    };
    const source = await pick(flags.source, "source to back up", sources, "files");
    const destination = await pick(flags.destination, "destination to store it", destinations, "local");
    let key = flags.key;
    if (key === undefined && questions && flags.encryption && !flags.recipient) {
      const typed = (
        await questions.line("age identity file to encrypt to, created if missing [key.txt]: ")
      )?.trim();
      key = typed || "key.txt";
    }
    return { source, destination, ...(key ? { key } : {}) };
  } finally {
    questions?.close();
  }
}

/** The recipient of an identity file; a new identity is written there when the file is missing. */
async function recipientFromKey(file: string): Promise<string> {
  const { parseIdentityFile, recipientOf } = await import("../../age/index.ts");
  if (!existsSync(file)) {
    const created = await ageKey();
    writeKeyFile(file, created.text);
    process.stderr.write(`identity written to ${file} (keep it off the backup host; restores need it)\n`);
    return created.publicKey;
  }
  const identity = parseIdentityFile(readFileSync(file, "utf8"))[0];
  if (!identity) throw new UsageError(`${file} holds no age identity (AGE-SECRET-KEY-1…)`);
  return recipientOf(identity);
}
