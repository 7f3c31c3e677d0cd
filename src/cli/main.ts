#!/usr/bin/env node
// Plain JavaScript syntax and no static imports: this must run, and explain itself, on old Node
// versions where the rest of cairn would fail to even load (node:zlib's zstd, node:sqlite).
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `cairn: Node.js ${process.versions.node} is too old; cairn needs Node.js 22.18 or newer (24 recommended).\n`,
  );
  process.exit(2);
}
// Node keeps the compiled code of cairn's modules on disk: later starts skip most of the parsing.
(await import("node:module")).enableCompileCache?.();
const { main } = await import("./program.ts");
process.exitCode = await main(process.argv);
