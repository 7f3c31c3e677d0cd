#!/usr/bin/env node
// The `cairn` command of the npm package and of a checkout (`npx cairn` after `npm ci`).
import { codeUrl, nodeTooOld } from "./runtime.js";

const tooOld = nodeTooOld();
if (tooOld) {
  process.stderr.write(`cairn: ${tooOld}.\n`);
  process.exit(2);
}
// Node keeps the compiled code of cairn's modules on disk: later starts skip most of the parsing.
(await import("node:module")).enableCompileCache?.();
const { main } = await import(codeUrl("cli/program"));
process.exitCode = await main(process.argv);
