/**
 * `cairn doctor` against real servers: what works is ok, what does not is a FAIL with its fix,
 * the probe object leaves nothing behind, and the exit code says whether anything failed.
 */
import assert from "node:assert/strict";
import { chmodSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, createDatabase, dropDatabase, tempDir } from "../helpers/env.ts";

interface Check {
  section: string;
  name: string;
  status: string;
  detail: string;
  fix?: string;
}

test("doctor checks sources, destinations and keys for real, and fails naming what to fix", async () => {
  const dir = tempDir();
  const database = createDatabase("doctor");
  try {
    const key = await cairn(["keygen", "-o", "key.txt"], { cwd: dir });
    writeFileSync(join(dir, "signing.key"), "not really a key\n");
    chmodSync(join(dir, "signing.key"), 0o644);
    writeFileSync(
      join(dir, "cairn.yaml"),
      `jobs:
  app:
    sources:
      db: { type: postgres, database: ${database}, host: 127.0.0.1, user: postgres }
      missing_db: { type: postgres, database: no_such_database_here, host: 127.0.0.1, user: postgres }
      files: { type: files, paths: [./data, ./no-such-folder] }
    encryption: { age: { recipients: [${key.stdout.trim()}] } }
    signing: { key_file: ./signing.key }
    destinations:
      here: { type: local, path: ./backups }
      gone: { type: s3, bucket: abc, endpoint: "http://127.0.0.1:9", access_key_id: a, secret_access_key: b, retries: 1 }
  plain:
    sources:
      f: { type: files, paths: [.] }
      run: { type: command, command: [no-such-dump-program-7, --all] }
      echo: { type: command, command: [echo, hi] }
    destinations: { here: { type: local, path: ./backups } }
`,
    );
    const r = await cairn(["doctor", "--json"], {
      cwd: dir,
      env: { CAIRN_IDENTITY_FILE: join(dir, "key.txt") },
    });
    assert.equal(r.code, 1, r.stderr);
    const { ok, checks } = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
    assert.equal(ok, false);
    const find = (name: string) => {
      const check = checks.find((c) => c.name.startsWith(name));
      assert.ok(check, `${name} in ${JSON.stringify(checks.map((c) => c.name))}`);
      return check;
    };
    assert.equal(find("app/db").status, "ok");
    assert.match(find("app/db").detail, /^PostgreSQL \d+.*1 database\(s\) readable, pg_dump \d+/);
    assert.equal(find("app/missing_db").status, "fail");
    assert.match(find("app/missing_db").detail, /database "no_such_database_here" does not exist/);
    assert.equal(find("app/files").status, "fail");
    assert.match(find("app/files").detail, /cannot read .*no-such-folder/);
    assert.equal(find("app/here").status, "ok");
    assert.equal(find("app/gone").status, "fail");
    assert.match(find("app/gone").detail, /cannot connect to 127\.0\.0\.1:9: connection refused/);
    assert.equal(find("app signing key").status, "fail");
    assert.equal(find("app signing key").fix, `chmod 600 ${join(dir, "signing.key")}`);
    assert.equal(find("CAIRN_IDENTITY_FILE").status, "ok");
    assert.equal(find("plain encryption").status, "warn");
    assert.equal(find("pg_dump").status, "ok");
    assert.equal(find("plain/run").status, "fail");
    assert.match(find("plain/run").detail, /the program no-such-dump-program-7 is not found on PATH/);
    assert.equal(find("plain/echo").status, "ok");
    assert.deepEqual(readdirSync(join(dir, "backups")), [], "the probe object is deleted");

    const text = await cairn(["doctor"], { cwd: dir });
    assert.equal(text.code, 1);
    assert.match(text.stdout, /^FAIL\s+source\s+app\/files \(files\)\s+cannot read /m);
    assert.match(text.stdout, /^\s+→ check that the paths exist/m);
    assert.match(text.stdout, /\n\d+ problem\(s\), 1 warning\(s\)\n$/);
  } finally {
    dropDatabase(database);
  }
});

test("doctor with a broken config still checks the tools, and says what is wrong", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "cairn.yaml"), "jobs:\n  app:\n    sources: { f: { type: fils } }\n");
  const r = await cairn(["doctor"], { cwd: dir });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^ok\s+cairn\s+cairn\s+\d+\.\d+\.\d+/m);
  assert.match(r.stdout, /^FAIL\s+config\s+config\s+invalid configuration/m);

  writeFileSync(
    join(dir, "cairn.yaml"),
    "jobs:\n  app:\n    sources: { f: { type: files, paths: [.] } }\n    encryption: none\n    destinations: { d: { type: local, path: ./b } }\n",
  );
  const good = await cairn(["doctor"], { cwd: dir });
  assert.equal(good.code, 0, good.stdout);
  assert.match(good.stdout, /\nno problems\n$/);
});
