/**
 * What `npm pack` ships works when installed: the `cairn` bin runs from compiled JavaScript, the
 * library imports, and an old Node gets a sentence, not a SyntaxError.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ROOT, run, tempDir } from "../helpers/env.ts";
import { pack } from "../helpers/pack.ts";

const packageJson = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

const dir = mkdtempSync(join(tmpdir(), "cairn-package-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let installed = "";
let prefix = "";
// Packed and installed globally into a private prefix once, for every test of the file.
before(async () => {
  assert.ok(existsSync(join(ROOT, "dist/index.js")), "dist/ is built by `npm test` (and `npm pack`)");
  const tarball = await pack(ROOT, dir);
  prefix = join(dir, "prefix");
  const install = await run(
    "npm",
    ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", "--prefer-offline", tarball],
    { cwd: dir },
  );
  assert.equal(install.code, 0, install.stderr);
  installed = join(prefix, "lib/node_modules", packageJson.name);
});

/** The machine's own Node (20 on these machines), not the Node 24 that runs the tests. */
async function oldNode(): Promise<{ node?: string; version: string }> {
  const node = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => existsSync(p));
  const version = node ? (await run(node, ["--version"])).stdout.trim() : "";
  return Number(version.replace(/^v/, "").split(".")[0]) < 22 ? { node, version } : { version };
}

test("the package has a name of ours, no install-time build, and the `cairn` bin", () => {
  // `cairn` on npm is someone else's React Native package: never tell users to install it.
  assert.equal(packageJson.name, "@cairn-backup/cairn");
  assert.deepEqual(Object.keys(packageJson.bin), ["cairn"]);
  assert.equal(packageJson.scripts.prepare, undefined, "a prepare script would run on every install");
  assert.equal(packageJson.scripts.prepack, "npm run build");
});

test("npm pack → npm install -g → cairn --version and --help work", async () => {
  assert.ok(!existsSync(join(installed, "src")), "the package ships compiled code, not sources");
  const bin = join(prefix, "bin/cairn");
  // Users need Node ≥ 22.18; run the bin with the Node that runs the tests.
  const env = { PATH: `${join(process.execPath, "..")}:${process.env.PATH}` };
  const version = await run(bin, ["--version"], { env });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), packageJson.version);
  const help = await run(bin, ["backup", "--help"], { env });
  assert.match(help.stdout, /Examples:/);
});

test("the installed library imports and works by its package name", async () => {
  const dir = tempDir();
  const script = join(dir, "use.mjs");
  writeFileSync(
    script,
    `import { parseSize, createRegistry } from ${JSON.stringify(packageJson.name)};
console.log(parseSize("1 MiB"), typeof createRegistry);`,
  );
  writeFileSync(join(dir, "package.json"), "{}");
  const linked = await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", installed], {
    cwd: dir,
  });
  assert.equal(linked.code, 0, linked.stderr);
  const used = await run(process.execPath, [script], { cwd: dir });
  assert.equal(used.code, 0, used.stderr);
  assert.equal(used.stdout.trim(), "1048576 function");
});

test("an old Node.js gets a clear message from the command and the library, not a crash", async (t) => {
  const { node, version } = await oldNode();
  if (!node) {
    t.skip(`no Node older than 22 installed here (found ${version || "none"})`);
    return;
  }
  const message = /Node\.js 20\.\d+\.\d+ is too old; cairn needs Node\.js 22\.18 or newer/;
  const command = await run(node, [join(ROOT, "entry/cairn.js"), "--version"]);
  assert.equal(command.code, 2);
  assert.match(command.stderr, message);
  const library = await run(node, [
    "--input-type=module",
    "-e",
    `import(${JSON.stringify(join(installed, "entry/library.js"))})`,
  ]);
  assert.equal(library.code, 1);
  assert.match(library.stderr, message);
  assert.doesNotMatch(library.stderr, /SyntaxError/);
});
