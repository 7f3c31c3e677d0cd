import { createInterface, type Interface } from "node:readline";

export interface Questions {
  /** The next line typed, after showing the prompt; undefined at the end of input. */
  line(prompt: string): Promise<string | undefined>;
  /** A yes/no question: anything but y or yes is no, and so is the end of input. */
  ask(question: string): Promise<boolean>;
  close(): void;
}

/**
 * Questions on the terminal, one reader for the whole run: answers typed ahead are kept in order
 * (readline's own question() drops a line that arrives before it asks).
 */
export function terminalQuestions(): Questions {
  let reader: Interface | undefined;
  const lines: string[] = [];
  const waiting: ((line: string | undefined) => void)[] = [];
  let ended = false;
  const open = () => {
    reader = createInterface({ input: process.stdin, terminal: false });
    reader.on("line", (line) => {
      const next = waiting.shift();
      if (next) next(line);
      else lines.push(line);
    });
    reader.on("close", () => {
      ended = true;
      for (const next of waiting.splice(0)) next(undefined);
    });
    return reader;
  };
  const line = async (prompt: string) => {
    if (!reader) open();
    process.stderr.write(prompt);
    const answer =
      lines.shift() ?? (ended ? undefined : await new Promise<string | undefined>((r) => waiting.push(r)));
    if (answer === undefined) process.stderr.write("\n");
    return answer;
  };
  return {
    line,
    async ask(question) {
      const answer = await line(question);
      return answer !== undefined && /^y(es)?$/i.test(answer.trim());
    },
    close: () => reader?.close(),
  };
}
