/** The command source: any program's stdout, or the files it writes, backed up and restored. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

function config(source: string, recipient: string): string {
  return `jobs:
  custom:
    sources:
      out: ${source}
    encryption: { age: { recipients: [${recipient}] } }
    destinations: { local: { type: local, path: ./backups } }
`;
}

test("stdout mode: a program's output is the artifact; env and secret env reach it; a restore program gets it back", async () => {
  const ws = workspace(tempDir());
  // A program in another language (JavaScript here) that prints its environment and some binary data.
  writeFileSync(
    join(ws.dir, "dump.mjs"),
    `process.stdout.write(JSON.stringify({ region: process.env.REGION, token: process.env.API_TOKEN, source: process.env.CAIRN_SOURCE }) + "\\n");
     process.stdout.write(Buffer.alloc(300000, 7));`,
  );
  writeFileSync(join(ws.dir, "load.sh"), 'cat > "$RESTORED_TO"\n');
  const restored = join(ws.dir, "restored.bin");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    config(
      `{ type: command, command: [${process.execPath}, dump.mjs], extension: jsonl, env: { REGION: eu-west, RESTORED_TO: ${restored} }, secret_env: { API_TOKEN: tok-51f0c2e9a1 }, restore: [sh, load.sh] }`,
      ws.recipient,
    ),
  );
  const backup = await cairn(["backup", "-v"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  assert.ok(!backup.stderr.includes("tok-51f0c2e9a1"));
  const shown = await cairn(["config", "show"], { cwd: ws.dir, env: ws.env });
  assert.ok(!shown.stdout.includes("tok-51f0c2e9a1"), "secret_env is redacted in config show");
  const restore = await cairn(["restore", "custom", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(restore.code, 0, restore.stderr);
  const bytes = readFileSync(restored);
  const firstLine = bytes.subarray(0, bytes.indexOf(10)).toString();
  assert.deepEqual(JSON.parse(firstLine), { region: "eu-west", token: "tok-51f0c2e9a1", source: "out" });
  assert.equal(bytes.length, firstLine.length + 1 + 300000);
});

test("dir mode: every file the program writes into $CAIRN_OUTPUT_DIR is kept; restore gives them back", async () => {
  const ws = workspace(tempDir());
  writeFileSync(
    join(ws.dir, "export.sh"),
    'mkdir -p "$CAIRN_OUTPUT_DIR/tables"\necho users > "$CAIRN_OUTPUT_DIR/tables/users.csv"\necho "ünï" > "$CAIRN_OUTPUT_DIR/meta.txt"\n',
  );
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    config("{ type: command, command: [sh, export.sh], output: dir }", ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const target = join(ws.dir, "r");
  const restore = await cairn(["restore", "custom", "-i", ws.keyFile, "--to-dir", target], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(restore.code, 0, restore.stderr);
  assert.equal(readFileSync(join(target, "out/tables/users.csv"), "utf8"), "users\n");
  assert.equal(readFileSync(join(target, "out/meta.txt"), "utf8"), "ünï\n");
});

test("a program that fails, or prints nothing, fails the backup; nothing is recorded", async () => {
  const ws = workspace(tempDir());
  const cases: [string, RegExp][] = [
    [
      "{ type: command, command: [sh, -c, 'echo partial; echo boom >&2; exit 4'] }",
      /sh exited with code 4: boom/,
    ],
    ["{ type: command, command: [sh, -c, 'true'] }", /produced no data/],
    ["{ type: command, command: [sh, -c, 'true'], output: dir }", /wrote nothing into \$CAIRN_OUTPUT_DIR/],
    ["{ type: command, command: [/no/such/program] }", /\/no\/such\/program is not installed or not on PATH/],
  ];
  for (const [source, expected] of cases) {
    writeFileSync(join(ws.dir, "cairn.yaml"), config(source, ws.recipient));
    const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
    assert.equal(r.code, 1, `${source}: ${r.stderr}`);
    assert.match(r.stderr, expected, source);
  }
  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 0);
});

test("allow_empty: an empty output is stored, and the run warns that it was empty (#13.4)", async () => {
  const ws = workspace(tempDir());
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    config('{ type: command, command: ["true"], allow_empty: true }', ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stderr, /out\.\S* is empty \(allowed by the source\): check that nothing was lost/);
});
