/**
 * The command tree as plain data, read from commander's own definitions: the completions and the
 * man pages are generated from it, so they never fall behind the commands.
 */
import type { Command, Option } from "commander";

export interface OptionInfo {
  flags: string;
  names: string[];
  description: string;
  takesValue: boolean;
  choices?: readonly string[];
}

export interface CommandInfo {
  /** The words after `cairn`: [] for cairn itself, ["schedule", "install"] for a subcommand. */
  path: string[];
  name: string;
  aliases: string[];
  summary: string;
  description: string;
  usage: string;
  options: OptionInfo[];
  /** The values its arguments take, where they are a fixed list (`completion bash|zsh|fish`). */
  argumentChoices: string[];
  commands: CommandInfo[];
  /** The lines of the help's "Examples:" block. */
  examples: string[];
  /** The help text as `--help` prints it. */
  help: string;
}

function optionInfo(option: Option): OptionInfo {
  return {
    flags: option.flags,
    names: [option.short, option.long].filter((n): n is string => Boolean(n)),
    description: option.description,
    takesValue: option.required || option.optional,
    ...(option.argChoices ? { choices: option.argChoices } : {}),
  };
}

/** The full help of a command, with the text added before and after it (the examples). */
function helpText(command: Command): string {
  let text = "";
  const output = (command as unknown as { _outputConfiguration: object })._outputConfiguration;
  command.configureOutput({ ...output, writeOut: (s) => (text += s), getOutHasColors: () => false });
  command.outputHelp();
  command.configureOutput(output);
  return text;
}

function examplesOf(help: string): string[] {
  const block = help.split(/\nExamples:\n/)[1] ?? "";
  return block
    .split("\n")
    .filter((line) => line.startsWith("  "))
    .map((line) => line.trim());
}

export function commandTree(command: Command, path: string[] = []): CommandInfo {
  const help = command.createHelp();
  const text = helpText(command);
  return {
    path,
    name: command.name(),
    aliases: command.aliases(),
    summary: command.summary() || command.description().split("\n")[0]!,
    description: command.description(),
    usage: help.commandUsage(command),
    options: help.visibleOptions(command).map(optionInfo),
    argumentChoices: command.registeredArguments.flatMap((argument) => argument.argChoices ?? []),
    commands: help
      .visibleCommands(command)
      .filter((sub) => sub.name() !== "help")
      .map((sub) => commandTree(sub, [...path, sub.name()])),
    examples: examplesOf(text),
    help: text,
  };
}

export function allCommands(root: CommandInfo): CommandInfo[] {
  return [root, ...root.commands.flatMap(allCommands)];
}
