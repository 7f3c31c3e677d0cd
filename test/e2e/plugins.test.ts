/**
 * Plugins from the config's `plugins:` and $CAIRN_PLUGINS, as files and as packages beside the
 * config: `cairn plugins` lists them with where they came from and their options, their source and
 * destination back up and restore through the CLI, and every way loading can fail is a config error
 * naming the plugin (exit 2).
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, ROOT, tempDir } from "../helpers/env.ts";

const FIXTURE = join(ROOT, "test/fixtures/plugins/dir-store.mjs");

function workspace(
  plugins: string,
  sources = "      hello: { type: greeting, text: 'hello from a plugin ✓' }",
) {
  const dir = tempDir();
  mkdirSync(join(dir, "plugins"));
  copyFileSync(FIXTURE, join(dir, "plugins/dir-store.mjs"));
  writeFileSync(
    join(dir, "cairn.yaml"),
    `${plugins}\njobs:\n  app:\n    sources:\n${sources}\n    encryption: none\n    destinations:\n      store: { type: dirstore, root: ./stored }\n`,
  );
  return { dir, env: { CAIRN_STATE_DIR: join(dir, "state") } };
}

/** A package `name` in the config's node_modules, exporting a plugin with one source. */
function packagePlugin(dir: string, name: string, body: string, version = "1.2.3") {
  const root = join(dir, "node_modules", name);
  mkdirSync(root, { recursive: true });
  writeFileSync(
    join(root, "package.json"),
    JSON.stringify({ name, version, type: "module", exports: { ".": "./index.js" } }),
  );
  writeFileSync(join(root, "index.js"), body);
}

const helloPackage = (type: string, apiVersion = "cairn.PLUGIN_API_VERSION") => `
import { Readable } from "node:stream";
export default (cairn) => cairn.definePlugin({
  apiVersion: ${apiVersion},
  plugins: [cairn.defineSource({
    type: "${type}",
    description: "says hello",
    schema: cairn.z.object({ who: cairn.z.string().default("world").describe("whom to greet") }),
    create: (options) => ({ async *backup() { yield { name: "hello.txt", stream: Readable.from([Buffer.from("hello " + options.who)]), meta: {} }; } }),
  })],
});
`;

test("a plugin file's destination and source back up and restore through the CLI", async () => {
  const { dir, env } = workspace("plugins: [./plugins/dir-store.mjs]");
  const listed = await cairn(["plugins"], { cwd: dir, env });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(
    listed.stdout,
    new RegExp(`^destination\\s+dirstore\\s+${join(dir, "plugins/dir-store.mjs")}\\s+objects as files`, "m"),
  );
  assert.match(listed.stdout, /^source\s+postgres\s+built-in\s+/m);

  const backup = await cairn(["backup"], { cwd: dir, env });
  assert.equal(backup.code, 0, backup.stderr);
  const snapshots = JSON.parse((await cairn(["list", "--json"], { cwd: dir, env })).stdout).snapshots;
  assert.equal(snapshots.length, 1);
  assert.ok(readdirSync(join(dir, "stored/app")).length === 1, "the plugin's destination holds the snapshot");
  const verified = await cairn(["verify", "app"], { cwd: dir, env });
  assert.equal(verified.code, 0, verified.stderr);
  const restored = await cairn(["restore", "app", "--to-dir", "r"], { cwd: dir, env });
  assert.equal(restored.code, 0, restored.stderr);
  assert.equal(readFileSync(join(dir, "r/hello.txt"), "utf8"), "hello from a plugin ✓");
});

test("cairn plugins -v --json: each plugin's options from its schema", async () => {
  const { dir, env } = workspace("plugins: [./plugins/dir-store.mjs]");
  const r = await cairn(["plugins", "-v", "--json"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stderr);
  const plugins = JSON.parse(r.stdout) as { kind: string; type: string; options: { name: string }[] }[];
  const dirstore = plugins.find((p) => p.type === "dirstore")!;
  assert.equal(dirstore.kind, "destination");
  assert.deepEqual(dirstore.options, [
    { name: "root", type: "string", required: true, secret: false, description: "the folder" },
  ]);
  const postgres = plugins.find((p) => p.type === "postgres")!;
  assert.ok(postgres.options.some((o) => o.name === "password" && (o as { secret?: boolean }).secret));
  const text = await cairn(["plugins", "-v"], { cwd: dir, env });
  assert.match(
    text.stdout,
    /destination dirstore \(.*dir-store\.mjs\): objects as files.*\n {4}root \(required\): string — the folder\n/,
  );
});

test("a package beside the config, named in plugins: or $CAIRN_PLUGINS, is listed as package@version", async () => {
  const { dir, env } = workspace(
    "plugins: [./plugins/dir-store.mjs, cairn-plugin-hello]",
    "      hi: { type: hello, who: tests }",
  );
  packagePlugin(dir, "cairn-plugin-hello", helloPackage("hello"));
  const listed = await cairn(["plugins"], { cwd: dir, env });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^source\s+hello\s+cairn-plugin-hello@1\.2\.3\s+says hello$/m);
  const backup = await cairn(["backup"], { cwd: dir, env });
  assert.equal(backup.code, 0, backup.stderr);
  assert.equal((await cairn(["restore", "app", "--to-dir", "r"], { cwd: dir, env })).code, 0);
  assert.equal(readFileSync(join(dir, "r/hello.txt"), "utf8"), "hello tests");

  const fromEnv = workspace("", "      hi: { type: hello }");
  packagePlugin(fromEnv.dir, "cairn-plugin-hello", helloPackage("hello"));
  const viaEnv = await cairn(["config", "check"], {
    cwd: fromEnv.dir,
    env: { ...fromEnv.env, CAIRN_PLUGINS: "./plugins/dir-store.mjs,cairn-plugin-hello" },
  });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
});

test("every way a plugin can fail to load is a config error naming it", async () => {
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      "plugins: [cairn-plugin-nowhere]",
      () => {},
      /plugins: plugin cairn-plugin-nowhere: package not found \(looked in .*\): npm install cairn-plugin-nowhere/,
    ],
    [
      "plugins: [./plugins/missing.mjs]",
      () => {},
      /plugin \.\/plugins\/missing\.mjs: file .*missing\.mjs does not exist/,
    ],
    [
      "plugins: [./plugins/dir-store.mjs, old]",
      (dir) => packagePlugin(dir, "old", helloPackage("hello", "0")),
      /plugin old: built for plugin API 0, and this cairn offers 1: use a version of the plugin made for it/,
    ],
    [
      "plugins: [./plugins/dir-store.mjs, clash]",
      (dir) => packagePlugin(dir, "clash", helloPackage("files")),
      /plugin clash: its source "files" clashes with the one from built-in/,
    ],
    [
      "plugins: [./plugins/dir-store.mjs, ./plugins/broken.mjs]",
      (dir) => writeFileSync(join(dir, "plugins/broken.mjs"), "export default {{ nope"),
      /plugin \.\/plugins\/broken\.mjs: failed to load: /,
    ],
    [
      "plugins: [./plugins/dir-store.mjs, ./plugins/empty.mjs]",
      (dir) => writeFileSync(join(dir, "plugins/empty.mjs"), "export const x = 1;\n"),
      /plugin \.\/plugins\/empty\.mjs: exports no plugin: export default definePlugin/,
    ],
  ];
  for (const [plugins, prepare, expected] of cases) {
    const { dir, env } = workspace(plugins);
    prepare(dir);
    const r = await cairn(["config", "check"], { cwd: dir, env });
    assert.equal(r.code, 2, `${plugins}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
});

test("a plugin written in TypeScript loads from a checkout", async () => {
  const { dir, env } = workspace(
    "plugins: [./plugins/dir-store.mjs, ./plugins/hello.ts]",
    "      hi: { type: hello }",
  );
  writeFileSync(
    join(dir, "plugins/hello.ts"),
    helloPackage("hello").replace("(cairn) =>", "(cairn: any) =>"),
  );
  const r = await cairn(["backup"], { cwd: dir, env });
  assert.equal(r.code, 0, r.stderr);
});

test("activate gets its options (expanded), the logger and the events; deactivate runs at the end", async () => {
  const { dir, env } = workspace(
    'plugins:\n  - ./plugins/dir-store.mjs\n  - { name: ./plugins/audit.mjs, options: { file: ./audit.log, token: "${AUDIT_TOKEN}" } }',
  );
  writeFileSync(
    join(dir, "plugins/audit.mjs"),
    `import { appendFileSync } from "node:fs";
export default ({ definePlugin, PLUGIN_API_VERSION }) => {
  let stop;
  return definePlugin({
    apiVersion: PLUGIN_API_VERSION,
    plugins: [],
    secrets: ["token"],
    activate({ logger, events, options }) {
      const log = (line) => appendFileSync(options.file, line + "\\n");
      log("activate token=" + options.token);
      logger.info("audit plugin ready");
      logger.warn("careless plugin logs its token " + options.token);
      stop = events.on("on_backup", ({ job, session, result }) => log("on_backup " + job + " " + result.ok + " " + session.length));
    },
    deactivate() {
      stop();
      appendFileSync("./audit.log", "deactivate\\n");
    },
  });
};
`,
  );
  const r = await cairn(["backup"], { cwd: dir, env: { ...env, AUDIT_TOKEN: "t0k3n" } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /audit plugin ready {2}plugin=\.\/plugins\/audit\.mjs/);
  assert.match(r.stderr, /careless plugin logs its token \S+/);
  assert.doesNotMatch(r.stderr, /t0k3n/, "an option the plugin declares secret is never logged");
  assert.equal(
    readFileSync(join(dir, "audit.log"), "utf8"),
    "activate token=t0k3n\non_backup app true 36\ndeactivate\n",
  );

  writeFileSync(
    join(dir, "plugins/audit.mjs"),
    "export default ({ definePlugin }) => definePlugin({ apiVersion: 1, plugins: [], activate() { throw new Error('no licence'); } });\n",
  );
  const failed = await cairn(["backup"], { cwd: dir, env: { ...env, AUDIT_TOKEN: "x" } });
  assert.equal(failed.code, 2);
  assert.match(failed.stderr, /plugin \.\/plugins\/audit\.mjs: activate failed: no licence/);
});
