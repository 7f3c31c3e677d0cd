/** One-off runs from the command line (C4): no config, the source's options as flags. */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  CLI,
  cairn,
  createDatabase,
  dropDatabase,
  fillAwkwardDatabase,
  PG,
  psql,
  run,
  tableContents,
  tempDir,
  uniqueName,
} from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import { createMariaDatabase, fillAwkwardMariaDatabase, MARIADB, mariadb } from "../helpers/mariadb.ts";

const pgFlags = ["--host", PG.host, "--user", PG.user];

test("one-off: postgres --db A --db B --to DIR -r KEY, then restored through a config naming the same job and folder", async () => {
  const ws = workspace(tempDir());
  const first = createDatabase("oneoff_a");
  const second = createDatabase("oneoff_b");
  fillAwkwardDatabase(first);
  psql(second, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)");
  const r = await cairn(
    [
      "backup",
      "postgres",
      "--db",
      first,
      "--db",
      second,
      ...pgFlags,
      "--to",
      "./backups",
      "-r",
      ws.recipient,
    ],
    { cwd: ws.dir, env: ws.env },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^postgres@\S+: ok/);

  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:\n  postgres:\n    sources:\n      postgres: { type: postgres, databases: [${first}, ${second}], host: ${PG.host}, user: ${PG.user} }\n    destinations:\n      to: { type: local, path: ./backups }\n`,
  );
  const copy = uniqueName("oneoff_copy");
  after(() => dropDatabase(copy));
  const restored = await cairn(
    ["restore", "postgres", "--artifact", first, "--to-database", copy, "-i", ws.keyFile],
    {
      cwd: ws.dir,
      env: ws.env,
    },
  );
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(tableContents(copy), tableContents(first));
});

test("one-off: mysql and files in one run, with the password from a file", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("oneoff_wp");
  fillAwkwardMariaDatabase(database);
  const user = uniqueName("oneoff_user");
  mariadb(`CREATE USER '${user}'@'%' IDENTIFIED BY 'file-pass-77'; GRANT ALL ON *.* TO '${user}'@'%'`);
  after(() => mariadb(`DROP USER IF EXISTS '${user}'@'%'`));
  writeFileSync(join(ws.dir, "pw"), "file-pass-77\n", { mode: 0o600 });
  mkdirSync(join(ws.dir, "site/wp-content"), { recursive: true });
  writeFileSync(join(ws.dir, "site/wp-content/ünï.txt"), "hello");
  const args = [
    "backup",
    "mysql",
    "--db",
    database,
    "--host",
    MARIADB.host,
    "--port",
    String(MARIADB.port),
    "--user",
    user,
    "--password-file",
    "pw",
    "files",
    "--path",
    "./site",
    "--to",
    "./b",
    "--json",
  ];
  const r = await cairn(args, { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.jobs[0].job, "mysql-files");
  assert.deepEqual(
    report.jobs[0].artifacts.map((a: { source: string }) => a.source),
    ["mysql", "files"],
  );
  writeFileSync(join(ws.dir, "pw"), "wrong-pass\n");
  const wrong = await cairn(args, { cwd: ws.dir, env: ws.env });
  assert.equal(wrong.code, 3, "the files were stored, the database was not: partial");
  assert.match(wrong.stderr, /Access denied/);
  assert.ok(!wrong.stderr.includes("wrong-pass"));
});

test("one-off: --stdout writes the raw dump for a pipe; pg_restore loads it", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase("oneoff_pipe");
  fillAwkwardDatabase(database);
  const copy = uniqueName("oneoff_pipe_copy");
  after(() => dropDatabase(copy));
  psql("postgres", `CREATE DATABASE ${copy}`);
  const pipeline = `set -o pipefail 2>/dev/null || true; "${process.execPath}" "${CLI}" backup postgres --db ${database} --host ${PG.host} --user ${PG.user} --stdout | pg_restore -h ${PG.host} -U ${PG.user} --single-transaction --exit-on-error -d ${copy}`;
  const r = await run("bash", ["-c", pipeline], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(tableContents(copy), tableContents(database));

  // A failing source makes the pipeline fail (with pipefail), and says why.
  const failing = await run(
    "bash",
    [
      "-o",
      "pipefail",
      "-c",
      `"${process.execPath}" "${CLI}" backup postgres --db no_such_db_x --host ${PG.host} --user ${PG.user} --stdout | cat > out`,
    ],
    { cwd: ws.dir, env: ws.env },
  );
  assert.equal(failing.code, 1);
  assert.match(failing.stderr, /database "no_such_db_x" does not exist/);
});

test("one-off: bad command lines exit 2 and say what to do; secrets are refused on argv", async () => {
  const ws = workspace(tempDir());
  const cases: [string[], RegExp][] = [
    [
      ["backup", "postgres", "--db", "x", "--password", "s3cr3t-argv", "--to", "b"],
      /visible to every user.*\n.*--password-file FILE/,
    ],
    [["backup", "postgres", "--db", "x"], /say where the backup goes: --to DIR/],
    [["backup", "postgres", "--dbx", "x", "--to", "b"], /postgres has no option --dbx/],
    [["backup", "postgres", "--db", "x", "--to", "b", "--stdout"], /choose --stdout or --to/],
    [
      ["backup", "mongo", "--uri", "mongodb://u:pw-in-uri@h/db", "--stdout"],
      /a secret on the command line \(--uri\)/,
    ],
    [
      ["backup", "postgres", "--db", "x", "--to", "gopher://host/x"],
      /no destination type for gopher:\/\/ URLs/,
    ],
    [["backup", "postgres", "--db", "x", "--to", "sftp://u:s3cr3t-argv@host/x"], /a password in a URL/],
  ];
  for (const [args, expected] of cases) {
    const r = await cairn(args, { cwd: ws.dir, env: ws.env });
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.ok(!/s3cr3t-argv|pw-in-uri/.test(r.stderr), "the secret is not repeated");
    assert.ok(!r.stderr.includes("    at "), "no stack trace");
  }
});

test("a job named like a source type still runs as a job", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data/a.txt"), "a");
  writeFileSync(
    join(dir, "cairn.yaml"),
    "jobs:\n  files:\n    sources: { data: { type: files, paths: [./data] } }\n    destinations: { here: { type: local, path: ./b } }\n",
  );
  const r = await cairn(["backup", "files"], { cwd: dir, env: { CAIRN_STATE_DIR: join(dir, "state") } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^files@\S+: ok/);
});
