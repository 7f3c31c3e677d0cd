/**
 * `npm run build:exe`: cairn as one executable file (Node's single executable applications).
 * esbuild bundles the CLI into one CommonJS script, Node turns it into a blob (with its code
 * cache, so start-up skips parsing), and postject injects the blob into a copy of the pinned Node.
 * Output: build/cairn-linux-<arch> (and build/cairn, the host's). For the host's architecture
 * nothing is fetched; another one (`npm run build:exe -- arm64`) takes that architecture's Node
 * binary from the npm registry.
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { arch } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OUT = join(ROOT, "build");
const version = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** version.ts reads package.json next to the code; the executable has its version written in. */
const versionInline: Plugin = {
  name: "version-inline",
  setup(build) {
    build.onLoad({ filter: /[/\\]src[/\\]kit[/\\]version\.ts$/ }, () => ({
      contents: `export const VERSION = ${JSON.stringify(version)};`,
      loader: "ts",
    }));
  },
};

/** Runs a build step, showing its output only when it fails (postject warns about ELF notes). */
function quietly(command: string, args: string[]): void {
  const r = spawnSync(command, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args[0]} failed (${r.status}):\n${r.stdout}${r.stderr}`);
}

/** The bundle: the CLI and everything it imports, as one CommonJS script. */
async function bundle(target: string): Promise<string> {
  mkdirSync(OUT, { recursive: true });
  // One per target: two builds at once (the system tests run side by side) never share a file.
  const script = join(OUT, `cairn-${target}.cjs`);
  await build({
    entryPoints: [join(ROOT, "src/cli/exe.ts")],
    outfile: script,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node24",
    // In a single executable, import() has no loader behind it: every import becomes a require.
    supported: { "dynamic-import": false },
    // ssh2's optional native speed-ups: it falls back to JavaScript when they do not load.
    external: ["*.node", "cpu-features"],
    plugins: [versionInline],
    legalComments: "none",
    logLevel: "warning",
  });
  return script;
}

/**
 * The Node binary to inject into: this one for the host's architecture, else the same version's
 * official binary for the target, from the npm registry's node-linux-<arch> package (kept in
 * build/node-<version>-<arch>/ for later builds).
 */
function nodeBinary(target: string): string {
  if (target === arch()) return process.execPath;
  const dir = join(OUT, `node-${process.versions.node}-${target}`);
  const binary = join(dir, "package/bin/node");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const spec = `node-linux-${target}@${process.versions.node}`;
  const packed = spawnSync("npm", ["pack", spec, "--silent"], { cwd: dir, encoding: "utf8" });
  if (packed.status !== 0) throw new Error(`npm pack ${spec} failed: ${packed.stderr}`);
  quietly("tar", ["-xzf", join(dir, packed.stdout.trim().split("\n").pop()!), "-C", dir]);
  return binary;
}

export async function buildExecutable(target: string = arch()): Promise<string> {
  const script = await bundle(target);
  const blob = join(OUT, `cairn-${target}.blob`);
  const seaConfig = join(OUT, `sea-config-${target}.json`);
  // The code cache is compiled by the Node that writes the blob: only for the host's architecture.
  const useCodeCache = target === arch();
  writeFileSync(
    seaConfig,
    JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache }),
  );
  quietly(process.execPath, ["--experimental-sea-config", seaConfig]);
  const exe = join(OUT, `cairn-linux-${target}`);
  rmSync(exe, { force: true });
  copyFileSync(nodeBinary(target), exe);
  chmodSync(exe, 0o755);
  quietly(process.execPath, [
    join(ROOT, "node_modules/postject/dist/cli.js"),
    exe,
    "NODE_SEA_BLOB",
    blob,
    "--sentinel-fuse",
    "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2",
  ]);
  if (target === arch()) {
    rmSync(join(OUT, "cairn"), { force: true });
    copyFileSync(exe, join(OUT, "cairn"));
    chmodSync(join(OUT, "cairn"), 0o755);
  }
  return exe;
}

if (import.meta.main) {
  // npm run build:exe [-- x64 arm64]: the host's architecture when none is named.
  const targets = process.argv.slice(2).length > 0 ? process.argv.slice(2) : [arch()];
  for (const target of targets) {
    const exe = await buildExecutable(target);
    process.stdout.write(`${exe} (${(statSync(exe).size / 2 ** 20).toFixed(1)} MiB)\n`);
  }
}
