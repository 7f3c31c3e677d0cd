import { Argument, type Command } from "commander";
import { examples } from "../_shared.ts";
import { completionScript, SHELLS, type Shell } from "../help/completion.ts";
import { commandTree } from "../help/tree.ts";

export function register(program: Command): void {
  program
    .command("completion")
    .description("print the shell completion script for bash, zsh or fish")
    .addArgument(new Argument("<shell>", "bash, zsh or fish").choices(SHELLS))
    .addHelpText(
      "after",
      examples([
        "cairn completion bash > ~/.local/share/bash-completion/completions/cairn",
        "cairn completion zsh > ~/.zfunc/_cairn               # with fpath+=(~/.zfunc) in ~/.zshrc",
        "cairn completion fish > ~/.config/fish/completions/cairn.fish",
      ]),
    )
    .action((shell: Shell) => {
      process.stdout.write(completionScript(shell, commandTree(program)));
    });
}
