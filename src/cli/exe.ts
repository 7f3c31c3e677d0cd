// The single executable's entry: Node is built in, so no version check, and no top-level await
// (the executable runs one CommonJS script).
import { main } from "./program.ts";

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`cairn: unexpected error: ${(error as Error)?.message ?? error}\n`);
    process.exitCode = 1;
  },
);
