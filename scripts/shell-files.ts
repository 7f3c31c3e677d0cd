/**
 * `node scripts/shell-files.ts DIR`: the man pages (DIR/man/cairn*.1) and the shell completions
 * (DIR/completions/cairn.bash, _cairn, cairn.fish), generated from the command definitions. The
 * build writes them into dist/ (npm installs the man pages), the .deb into its tree.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { completionScript } from "../src/cli/help/completion.ts";
import { manPages } from "../src/cli/help/man.ts";
import { commandTree } from "../src/cli/help/tree.ts";
import { buildProgram } from "../src/cli/program.ts";

export const COMPLETION_FILES = { bash: "cairn.bash", zsh: "_cairn", fish: "cairn.fish" } as const;

export function writeShellFiles(dir: string): void {
  const tree = commandTree(buildProgram({ signal: new AbortController().signal, secrets: new Set() }));
  mkdirSync(join(dir, "man"), { recursive: true });
  for (const [name, text] of manPages(tree)) writeFileSync(join(dir, "man", name), text);
  mkdirSync(join(dir, "completions"), { recursive: true });
  for (const [shell, name] of Object.entries(COMPLETION_FILES))
    writeFileSync(
      join(dir, "completions", name),
      completionScript(shell as keyof typeof COMPLETION_FILES, tree),
    );
}

if (import.meta.main) {
  const dir = resolve(process.argv[2] ?? "dist");
  writeShellFiles(dir);
  process.stdout.write(`wrote ${dir}/man and ${dir}/completions\n`);
}
