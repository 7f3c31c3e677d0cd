/**
 * The example plugin package (examples/cairn-plugin-example) as a user gets it: cairn and the
 * plugin packed with `npm pack`, installed side by side into a fresh project; the plugin's own
 * tests (cairn's suites from @cairn-backup/cairn/testing) run there, and `cairn plugins -v`,
 * backup, verify and restore run through the installed `cairn` command with the plugin's source
 * and destination.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, test } from "node:test";
import { ROOT, run, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import { pack } from "../helpers/pack.ts";

const EXAMPLE = join(ROOT, "examples/cairn-plugin-example");
const project = tempDir("cairn-example-project-");
const nodeEnv = { PATH: `${join(process.execPath, "..")}:${process.env.PATH}` };

before(async () => {
  assert.ok(existsSync(join(ROOT, "dist/testing/index.js")), "dist/ is built by `npm test` (and `npm pack`)");
  const tarballs = join(project, "tarballs");
  mkdirSync(tarballs);
  const packages = [await pack(ROOT, tarballs), await pack(EXAMPLE, tarballs)];
  writeFileSync(join(project, "package.json"), '{ "name": "backups", "private": true, "type": "module" }\n');
  const install = await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", ...packages], {
    cwd: project,
  });
  assert.equal(install.code, 0, install.stderr);
});

test("the example plugin's own tests pass against the installed packages", async () => {
  cpSync(join(EXAMPLE, "test"), join(project, "example-tests"), { recursive: true });
  // Without NODE_TEST_CONTEXT, which would make the inner runner report to this one in its binary form.
  const tests = await run(process.execPath, ["--test", "--test-reporter=tap", "example-tests/*.test.js"], {
    cwd: project,
    env: { ...nodeEnv, NODE_TEST_CONTEXT: undefined },
  });
  assert.equal(tests.code, 0, `${tests.stdout}\n${tests.stderr}`);
  assert.match(tests.stdout, /# pass (\d+)/);
  assert.match(tests.stdout, /# fail 0/);
  assert.match(tests.stdout, /objstore: never overwrites an object/);
  assert.match(tests.stdout, /gitbundle: gitbundle: back up → verify → restore/);
});

test("the installed cairn command lists the plugin's source and destination and backs up and restores with them", async () => {
  const ws = workspace(project);
  const { startObjectStore } = await import(join(project, "node_modules/cairn-plugin-example/server.js"));
  const store = await startObjectStore({ dir: tempDir(), token: "t0ken-of-the-store" });
  try {
    const repository = join(project, "app");
    const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8" });
    git("init", "--quiet", "--initial-branch=main", repository);
    writeFileSync(join(repository, "README"), "ünï\n");
    git("-C", repository, "add", ".");
    git(
      "-C",
      repository,
      "-c",
      "user.name=t",
      "-c",
      "user.email=t@example.org",
      "commit",
      "--quiet",
      "-m",
      "one",
    );
    git("-C", repository, "tag", "v1");
    writeFileSync(
      join(project, "cairn.yaml"),
      `plugins: [cairn-plugin-example]
jobs:
  code:
    sources: { app: { type: gitbundle, repository: ./app } }
    encryption: { age: { recipients: [${ws.recipient}] } }
    destinations:
      store: { type: objstore, url: "${store.url}", token: "\${OBJSTORE_TOKEN}" }
notifications:
  events: { type: jsonlines, file: ./events.jsonl, on: [start, success, failure] }
`,
    );
    const env = { ...nodeEnv, ...ws.env, OBJSTORE_TOKEN: "t0ken-of-the-store" };
    const cli = (...args: string[]) =>
      run(join(project, "node_modules/.bin/cairn"), args, { cwd: project, env });

    const listed = await cli("plugins", "-v", "--json");
    assert.equal(listed.code, 0, listed.stderr);
    const plugins = JSON.parse(listed.stdout) as {
      type: string;
      origin: string;
      options: { name: string }[];
    }[];
    for (const type of ["gitbundle", "objstore", "jsonlines"]) {
      const found = plugins.find((p) => p.type === type);
      assert.ok(found, `${type} is listed`);
      assert.equal(found.origin, "cairn-plugin-example@1.0.0");
    }
    assert.deepEqual(
      plugins.find((p) => p.type === "objstore")!.options.map((o) => o.name),
      ["url", "token", "prefix"],
    );

    const backup = await cli("backup", "-v");
    assert.equal(backup.code, 0, backup.stderr);
    const told = readFileSync(join(project, "events.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      told.map((e) => e.kind),
      ["start", "success"],
      "the plugin's notifier heard the start and the end",
    );
    assert.equal(told[0].snapshot, told[1].snapshot);
    const verify = await cli("verify", "code", "-i", ws.keyFile);
    assert.equal(verify.code, 0, verify.stderr);
    assert.match(verify.stdout, /git bundle with 3 refs/);
    const target = join(project, "restored");
    const restore = await cli("restore", "code", "--to-dir", target, "-i", ws.keyFile);
    assert.equal(restore.code, 0, restore.stderr);
    const refs = (repo: string) => git("-C", repo, "for-each-ref", "--format=%(objectname) %(refname)");
    assert.equal(refs(join(target, "app.git")), refs(repository));

    const shown = await cli("config", "show");
    for (const output of [backup.stdout, backup.stderr, shown.stdout, verify.stdout, restore.stdout])
      assert.doesNotMatch(output, /t0ken-of-the-store/, "the token is never printed");
  } finally {
    await store.close();
  }
});
