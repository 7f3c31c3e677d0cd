/**
 * What the seed tools' users did and cairn got wrong (issue #13, item 18), each as its user would
 * meet it: closed pipes, one-off flags, URLs and templates on the command line, redaction of public
 * keys, the JSON Schema accepting the README's own config, a plugin source without a restore.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { z } from "zod";
import {
  backup,
  builtinPlugins,
  configFromObject,
  createRegistry,
  defineSource,
  restore,
} from "../../src/index.ts";
import { CLI, cairn, ROOT, run, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

const sh = (script: string, cwd: string, env: NodeJS.ProcessEnv = {}) =>
  run("bash", ["-c", `set -o pipefail; ${script}`], { cwd, env });
const c = `'${process.execPath}' '${CLI}'`;

test("a reader that closes stdout early ends the command quietly, not with an EPIPE stack trace", async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  app:
    sources: { t: { type: command, command: [echo, hi] } }
    retention: { keep_last: 1, min_age: 0 }
    destinations: { here: { type: local, path: ./b } }
`,
  );
  const env = { CAIRN_STATE_DIR: join(dir, "state") };
  for (let i = 0; i < 3; i++) assert.equal((await cairn(["backup", "-q"], { cwd: dir, env })).code, 0);
  for (const command of ["keygen --help", "list", "prune --dry-run", "backup --help"]) {
    const r = await sh(`${c} ${command} | head -c 1 >/dev/null`, dir, env);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /EPIPE|\n\s+at /, command);
  }
  const data = await sh(
    `${c} backup command --command head --command -c --command 5000000 --command /dev/zero --stdout | head -c 10 >/dev/null`,
    dir,
    env,
  );
  assert.equal(data.code, 1, "a data stream cut short is a failure");
  assert.match(data.stderr, /the reader of stdout exited before the end/);
  assert.doesNotMatch(data.stderr, /\n\s+at /);
});

test("one-off flags: --command repeats into argv, --env NAME=VALUE, sqlite --path, global and backup flags after the source", async () => {
  const dir = tempDir();
  const out = join(dir, "out");
  const r = await cairn(
    [
      "backup",
      "command",
      "--command",
      "sh",
      "--command",
      "-c",
      "--command",
      'echo "$GREETING"',
      "--env",
      "GREETING=hello",
      "--compression",
      "none",
      "--to",
      out,
      "-q",
      "--json",
    ],
    { cwd: dir, env: { CAIRN_STATE_DIR: join(dir, "state") } },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "-q after the source is the global flag");
  const [folder] = readdirSync(join(out, "command"));
  const stored = readdirSync(join(out, "command", folder!)).find((f) => f !== "manifest.json")!;
  assert.equal(
    readFileSync(join(out, "command", folder!, stored), "utf8"),
    "hello\n",
    "argv and env reached the program",
  );

  const db = join(dir, "app.db");
  await run("sqlite3", [db, "CREATE TABLE t (a); INSERT INTO t VALUES (1);"]);
  const lite = await cairn(
    [
      "backup",
      "sqlite",
      "--path",
      db,
      "--to",
      join(dir, "lite"),
      "--dry-run",
      "-n",
      "nobody",
      "--sentry-dsn",
      "https://k@sentry.example/1",
    ],
    {
      cwd: dir,
      env: { CAIRN_STATE_DIR: join(dir, "state") },
    },
  );
  assert.equal(lite.code, 0, lite.stderr);
  assert.match(lite.stdout, /dry run ok/);
  assert.ok(!existsSync(join(dir, "lite")), "a dry run stores nothing");
});

test("--to keeps a file:// URL's query and reads %Y/{job} in a folder as the template", async () => {
  const dir = tempDir();
  const env = { CAIRN_STATE_DIR: join(dir, "state") };
  const url = await cairn(
    [
      "backup",
      "command",
      "--command",
      "echo",
      "--command",
      "hi",
      "--to",
      `file://${dir}/u?template=db-{job}`,
      "-q",
    ],
    { cwd: dir, env },
  );
  assert.equal(url.code, 0, url.stderr);
  assert.equal(readdirSync(join(dir, "u", "db-command")).length, 1);
  const dated = await cairn(
    ["backup", "command", "--command", "echo", "--command", "hi", "--to", `${dir}/d/%Y/{job}`, "-q"],
    { cwd: dir, env },
  );
  assert.equal(dated.code, 0, dated.stderr);
  const year = String(new Date().getUTCFullYear());
  assert.ok(existsSync(join(dir, "d", year, "command")), "the fields were expanded");
  assert.ok(!existsSync(join(dir, "d", "%Y")), "no folder literally named %Y");
});

test("a job named like a source type does not swallow a one-off run that says --to", async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  command:
    sources: { t: { type: command, command: [echo, from the job] } }
    destinations: { here: { type: local, path: ./job-backups } }
`,
  );
  const r = await cairn(
    ["backup", "command", "--command", "echo", "--command", "one-off", "--to", "./oneoff", "-q"],
    {
      cwd: dir,
      env: { CAIRN_STATE_DIR: join(dir, "state") },
    },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(dir, "oneoff")), "the one-off run ran");
  assert.ok(!existsSync(join(dir, "job-backups")), "not the job");
});

test("a wrong identity's error names the recipients even when they come from ${file:…}", async () => {
  const ws = workspace(tempDir());
  writeFileSync(join(ws.dir, "recipients.txt"), `${ws.recipient}\n`);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources: { t: { type: command, command: [echo, hi] } }
    encryption: { age: { recipients: ["\${file:recipients.txt}"] } }
    destinations: { here: { type: local, path: ./b } }
`,
  );
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const other = workspace(tempDir());
  const wrong = await cairn(["verify", "app", "-i", other.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(wrong.code, 12, wrong.stderr);
  assert.ok(wrong.stderr.includes(ws.recipient), wrong.stderr);
  const shown = await cairn(["config", "show"], { cwd: ws.dir, env: ws.env });
  assert.ok(shown.stdout.includes(ws.recipient), "a public key is no secret");
});

test("the JSON Schema accepts the README's `compression: zstd` shorthand", () => {
  const schema = JSON.parse(readFileSync(join(ROOT, "docs/cairn.schema.json"), "utf8"));
  const compression = schema.properties.jobs.additionalProperties.properties.compression;
  const shorthand = (compression.anyOf ?? compression.oneOf).find(
    (s: { type?: string }) => s.type === "string",
  );
  assert.ok(shorthand?.enum.includes("zstd"), JSON.stringify(compression).slice(0, 300));
  assert.match(readFileSync(join(ROOT, "README.md"), "utf8"), /compression: zstd/);
});

test("a plugin source without restore() restores its artifact as a file with --to-dir", async () => {
  const dir = tempDir();
  const plain = defineSource({
    type: "greeting",
    description: "a test source with no restore of its own",
    schema: z.object({ text: z.string() }),
    create: (options) => ({
      async *backup() {
        yield { name: "greeting.txt", stream: Readable.from([Buffer.from(options.text)]), meta: {} };
      },
    }),
  });
  const config = configFromObject(
    {
      state_dir: "./state",
      jobs: {
        hello: {
          sources: { g: { type: "greeting", text: "hello, restore\n" } },
          compression: "none",
          destinations: { here: { type: "local", path: "./b" } },
        },
      },
    },
    { baseDir: dir, registry: createRegistry([...builtinPlugins, plain]) },
  );
  const report = await backup({ config });
  assert.equal(report.jobs[0]!.ok, true);
  const target = join(dir, "restored");
  mkdirSync(target);
  const result = await restore({ config, job: "hello", toDir: target });
  assert.match(result.restored[0]!.summary, /written to .*greeting\.txt/);
  assert.equal(readFileSync(join(target, "greeting.txt"), "utf8"), "hello, restore\n");
  await assert.rejects(restore({ config, job: "hello", toDir: target }), /is not empty/);
});
