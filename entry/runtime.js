// Plain JavaScript that any Node.js parses: it runs before the rest of cairn loads, so that an old
// Node gets a sentence instead of a SyntaxError or a missing node:sqlite.
import { existsSync } from "node:fs";

export const NODE_REQUIRED = "22.18";

/** Why this Node cannot run cairn, or undefined when it can. */
export function nodeTooOld(version = process.versions.node) {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return undefined;
  return `Node.js ${version} is too old; cairn needs Node.js ${NODE_REQUIRED} or newer (24 recommended), or the single executable that has its own (docs/install.md)`;
}

/**
 * The code to load: the TypeScript sources in a checkout (Node runs them as they are, always
 * current), the compiled JavaScript in an installed package (Node does not strip types under
 * node_modules, and the package ships no sources).
 */
export function codeUrl(module) {
  const source = new URL(`../src/${module}.ts`, import.meta.url);
  if (existsSync(source) && !source.pathname.includes("/node_modules/")) return source.href;
  return new URL(`../dist/${module}.js`, import.meta.url).href;
}
