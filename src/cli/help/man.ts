/**
 * Man pages (`man cairn`, `man cairn-backup`, …) in roff, generated from the command tree: one
 * page per command, with its options, subcommands, examples and the exit codes.
 */
import { VERSION } from "../../kit/version.ts";
import { allCommands, type CommandInfo } from "./tree.ts";

/** Text as roff shows it literally: backslashes and hyphens escaped, no line read as a request. */
function roff(text: string): string {
  return text
    .replaceAll("\\", "\\e")
    .replaceAll("-", "\\-")
    .split("\n")
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join("\n");
}

const pageName = (command: CommandInfo) => ["cairn", ...command.path].join("-");

const EXIT_CODES: [number, string][] = [
  [0, "success"],
  [1, "failed (a backup, a check, a restore)"],
  [2, "bad usage or configuration, or a refused action: nothing was done"],
  [3, "partial: stored on some destinations only, or without a failed source"],
  [10, "not found (job, snapshot, destination)"],
  [11, "locked: another run holds the job or the destination"],
  [12, "wrong key, passphrase or credentials"],
  [130, "interrupted"],
];

function page(command: CommandInfo, root: CommandInfo): string {
  const words = ["cairn", ...command.path].join(" ");
  const lines = [
    `.TH ${pageName(command).toUpperCase()} 1 "" "cairn ${VERSION}" "cairn manual"`,
    ".SH NAME",
    `${roff(pageName(command))} \\- ${roff(command.summary)}`,
    ".SH SYNOPSIS",
    `.B ${roff(words)}`,
    roff(command.usage.slice(command.usage.startsWith(words) ? words.length : 0).trim()),
    ".SH DESCRIPTION",
    roff(command.description),
  ];
  if (command.aliases.length > 0) lines.push(".PP", roff(`Also: ${command.aliases.join(", ")}.`));
  if (command.commands.length > 0) {
    lines.push(".SH COMMANDS");
    for (const sub of command.commands)
      lines.push(
        ".TP",
        `.B ${roff(`${words} ${sub.name}`)}`,
        roff(sub.summary),
        roff(`See ${pageName(sub)}(1).`),
      );
  }
  const options = (title: string, list: CommandInfo["options"]) => {
    if (list.length === 0) return;
    lines.push(`.SH ${title}`);
    for (const option of list) lines.push(".TP", `.B ${roff(option.flags)}`, roff(option.description));
  };
  options("OPTIONS", command.options);
  if (command !== root) options("GLOBAL OPTIONS", root.options);
  if (command.examples.length > 0) lines.push(".SH EXAMPLES", ".nf", ...command.examples.map(roff), ".fi");
  lines.push(".SH EXIT STATUS");
  for (const [code, meaning] of EXIT_CODES) lines.push(".TP", `.B ${code}`, roff(meaning));
  const related = [command.path.length > 0 ? "cairn" : "", ...command.commands.map(pageName)].filter(Boolean);
  if (related.length > 0) lines.push(".SH SEE ALSO", roff(related.map((name) => `${name}(1)`).join(", ")));
  return `${lines.join("\n")}\n`;
}

/** Every man page, by file name (cairn.1, cairn-backup.1, cairn-schedule-install.1, …). */
export function manPages(root: CommandInfo): Map<string, string> {
  return new Map(allCommands(root).map((command) => [`${pageName(command)}.1`, page(command, root)]));
}
