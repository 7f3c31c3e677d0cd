/**
 * Errors in the shape users expect: what was expected and what was written, each problem once
 * with a correct count, did-you-mean for keys, types and commands, plain words instead of errno
 * codes, host and port in connection failures, and with --json one JSON object per error.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { closest, editDistance } from "../../src/engine/suggest.ts";
import { cairn, tempDir } from "../helpers/env.ts";

const MISTAKES = `jobs:
  app:
    sources: { f: { type: files, paths: [.] } }
    encryption: none
    retention: { keep_daily: five }
    destinations: { d: { type: local, path: ./b, retries: five, retires: 3 } }
    destinatons: {}
  db:
    sources: { main: { type: postgress } }
    destinations: { d: { type: lcoal, path: x } }
  pg:
    sources: { main: { type: postgres } }
    encryption: none
    destinations: { d: { type: local, path: x } }
`;

test("config problems say what was expected and what was written, once each, with did-you-mean", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "cairn.yaml"), MISTAKES);
  const r = await cairn(["config", "check"], { cwd: dir });
  assert.equal(r.code, 2);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines[0], "cairn: invalid configuration (7 problems):");
  assert.equal(lines.length, 8, "the count matches the problems listed, none repeated");
  const has = (re: RegExp) =>
    assert.ok(
      lines.some((l) => re.test(l)),
      `${re} in\n${r.stderr}`,
    );
  has(/:6:\d+: jobs\.app\.destinations\.d\.retries: expected a number, got "five"$/);
  has(/:5:\d+: jobs\.app\.retention\.keep_daily: expected a number, got "five"$/);
  has(/jobs\.app\.destinations\.d\.retires: unknown key "retires" \(did you mean "retries"\?\)$/);
  has(/jobs\.app\.destinatons: unknown key "destinatons" \(did you mean "destinations"\?\)$/);
  has(
    /jobs\.db\.sources\.main\.type: unknown source type "postgress" \(did you mean "postgres"\?\): one of /,
  );
  has(/jobs\.db\.destinations\.d\.type: unknown destination type "lcoal" \(did you mean "local"\?\)/);
  has(/jobs\.pg\.sources\.main\.database: say what to back up/);
});

test("with --json every error is one JSON object with its code and exit status", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "cairn.yaml"), MISTAKES);
  const parse = (text: string) => {
    const lines = text.trim().split("\n");
    assert.equal(lines.length, 1, text);
    return JSON.parse(lines[0]!);
  };
  const config = await cairn(["config", "check", "--json"], { cwd: dir });
  assert.equal(config.code, 2);
  const configError = parse(config.stderr);
  assert.equal(configError.message_type, "exit_error");
  assert.equal(configError.code, "CONFIG");
  assert.equal(configError.exit, 2);
  assert.equal(configError.problems.length, 7);
  assert.deepEqual(Object.keys(configError.problems[0]).sort(), [
    "column",
    "file",
    "line",
    "message",
    "path",
  ]);

  const usage = await cairn(["bakup", "--json"], { cwd: dir });
  assert.equal(usage.code, 2);
  assert.deepEqual(parse(usage.stderr), {
    message_type: "exit_error",
    code: "USAGE",
    exit: 2,
    message: "unknown command 'bakup'\n(Did you mean backup?)",
  });

  writeFileSync(
    join(dir, "ok.yaml"),
    "jobs:\n  app:\n    sources: { f: { type: files, paths: [.] } }\n    encryption: none\n    destinations: { d: { type: local, path: ./b } }\n",
  );
  const missing = await cairn(["-c", "ok.yaml", "show", "app@2020-01-01T00-00-00Z-0000", "--json"], {
    cwd: dir,
  });
  const notFound = parse(missing.stderr);
  assert.equal(missing.code, notFound.exit);
  assert.equal(notFound.code, "NOT_FOUND");
  assert.equal(notFound.exit, 10);

  const checked = await cairn(["-c", "ok.yaml", "config", "check", "--json"], { cwd: dir });
  assert.equal(checked.code, 0, checked.stderr);
  assert.deepEqual(JSON.parse(checked.stdout), {
    file: join(dir, "ok.yaml"),
    ok: true,
    jobs: ["app"],
    warnings: [],
  });
});

test("system errors in plain words, connection failures with host and port", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "folder.yaml"));
  const folder = await cairn(["-c", "folder.yaml", "config", "check"], { cwd: dir });
  assert.equal(folder.code, 2);
  assert.match(folder.stderr, /folder\.yaml: cannot read file: is a folder, where a file was expected/);
  assert.doesNotMatch(folder.stderr, /EISDIR/);
  const key = await cairn(["keygen", "-o", join(dir, "no/such/key.txt")]);
  assert.equal(key.code, 2);
  assert.match(key.stderr, /cannot write .*key\.txt: no such file or folder/);

  writeFileSync(
    join(dir, "s3.yaml"),
    `jobs:\n  app:\n    sources: { f: { type: files, paths: [.] } }\n    encryption: none\n    destinations: { d: { type: s3, bucket: abc, endpoint: "http://127.0.0.1:9", access_key_id: a, secret_access_key: b, retries: 1 } }\n`,
  );
  const refused = await cairn(["-c", "s3.yaml", "backup", "-q"], { cwd: dir });
  assert.equal(refused.code, 1);
  assert.match(refused.stdout + refused.stderr, /cannot connect to 127\.0\.0\.1:9: connection refused/);
  assert.doesNotMatch(refused.stdout + refused.stderr, /ECONNREFUSED/);
});

test("did-you-mean: close words are suggested, far ones are not", () => {
  assert.equal(editDistance("retires", "retries"), 1, "a swap of two letters counts once");
  assert.equal(closest("postgress", ["postgres", "mysql"]), "postgres");
  assert.equal(closest("lcoal", ["local", "s3"]), "local");
  assert.equal(closest("azure", ["local", "s3", "sftp"]), undefined);
  assert.equal(closest("x", ["s3"]), undefined);
});
