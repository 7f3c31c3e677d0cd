/**
 * `npm run build:exe`: cairn as one executable file (Node's single executable applications).
 * esbuild bundles the CLI into one CommonJS script, Node turns it into a blob (with its code
 * cache, so start-up skips parsing), and postject injects the blob into a copy of the pinned Node.
 * Output: build/cairn-linux-<arch> (and build/cairn, the host's). Nothing is fetched.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
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
    build.onLoad({ filter: /[/\\]src[/\\]version\.ts$/ }, () => ({
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

export async function buildExecutable(): Promise<string> {
  mkdirSync(OUT, { recursive: true });
  const script = join(OUT, "cairn.cjs");
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
  const blob = join(OUT, "cairn.blob");
  const seaConfig = join(OUT, "sea-config.json");
  writeFileSync(
    seaConfig,
    JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }),
  );
  quietly(process.execPath, ["--experimental-sea-config", seaConfig]);
  const exe = join(OUT, `cairn-linux-${arch()}`);
  rmSync(exe, { force: true });
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  quietly(process.execPath, [
    join(ROOT, "node_modules/postject/dist/cli.js"),
    exe,
    "NODE_SEA_BLOB",
    blob,
    "--sentinel-fuse",
    "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2",
  ]);
  rmSync(join(OUT, "cairn"), { force: true });
  copyFileSync(exe, join(OUT, "cairn"));
  chmodSync(join(OUT, "cairn"), 0o755);
  return exe;
}

if (import.meta.main) {
  const exe = await buildExecutable();
  process.stdout.write(`${exe} (${(statSync(exe).size / 2 ** 20).toFixed(1)} MiB)\n`);
}
