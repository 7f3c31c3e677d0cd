/** Picking the pg_dump that fits the server, before anything is dumped. */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  cairn,
  createDatabase,
  databaseExists,
  dropDatabase,
  fillAwkwardDatabase,
  psql,
  run,
  tableContents,
  tempDir,
  uniqueName,
} from "../helpers/env.ts";
import { fakeDocker, fakePgBin, postgresJob, sourceJob, workspace } from "../helpers/jobs.ts";

test("postgres: the manifest records the server and the pg_dump that was picked for it", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  psql(database, "CREATE TABLE t (x int)");
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient }));
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const meta = JSON.parse((await cairn(["show", "app", "--json"], { cwd: ws.dir, env: ws.env })).stdout)
    .manifest.artifacts[0].meta;
  const serverMajor = Number.parseInt(meta.serverVersion, 10);
  const clientMajor = Number.parseInt(/pg_dump (\d+)/.exec(meta.client)![1]!, 10);
  assert.ok(clientMajor >= serverMajor, `${meta.client} for server ${meta.serverVersion}`);
});

test("postgres: a pg_dump older than the server fails before dumping, naming the versions and the package", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase();
  const bin = fakePgBin(ws.dir, 'exec "$REAL_PG_DUMP" "$@"');
  // This pg_dump claims to be version 12: too old for any server on these machines.
  writeFileSync(
    join(bin, "pg_dump"),
    `#!/bin/sh\necho "pg_dump $*" >> "${join(bin, "argv.log")}"\necho "pg_dump (PostgreSQL) 12.3"\n`,
  );
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient, binDir: bin }));
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /the PostgreSQL server is version \d+\.\d+.*no pg_dump of version \d+ or newer is installed \(found: 12\.3 \(/,
  );
  assert.match(r.stderr, /install postgresql-client-\d+/);
  const calls = readFileSync(join(bin, "argv.log"), "utf8")
    .split("\n")
    .filter((l) => l.startsWith("pg_dump"));
  assert.deepEqual(calls, ["pg_dump --version"], "nothing was dumped");
});

function clusterJob(source: string, recipient: string): string {
  return sourceJob("cluster", "pg", `type: postgres\nhost: 127.0.0.1\nuser: postgres\n${source}`, recipient);
}

test("postgres: a list of databases and the globals, each its own artifact; restore one by name, then the roles", async () => {
  const ws = workspace(tempDir());
  const first = createDatabase("cairn_list_a");
  const second = createDatabase("cairn_list_b");
  fillAwkwardDatabase(first);
  psql(
    second,
    "CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, 'ünï'), (2, 'b')",
  );
  const role = uniqueName("cairn_role");
  psql("postgres", `CREATE ROLE ${role} LOGIN CONNECTION LIMIT 7 PASSWORD 'role-secret-9'`);
  after(() => psql("postgres", `DROP ROLE IF EXISTS ${role}`));
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    clusterJob(`databases: [${first}, ${second}]\nglobals: true`, ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);

  const shown = JSON.parse((await cairn(["show", "cluster", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.deepEqual(
    shown.manifest.artifacts.map((a: { name: string }) => a.name),
    ["pg.globals.sql", `pg.${first}.pgdump`, `pg.${second}.pgdump`],
  );

  const ambiguous = await cairn(["restore", "cluster", "--to-database", "x", "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(ambiguous.code, 2);
  assert.match(
    ambiguous.stderr,
    /produced several artifacts \(pg\.globals\.sql, .*\): choose one with --artifact NAME/,
  );

  const copy = uniqueName("cairn_list_copy");
  after(() => dropDatabase(copy));
  const restored = await cairn(
    ["restore", "cluster", "--artifact", second, "--to-database", copy, "-i", ws.keyFile],
    { cwd: ws.dir, env: ws.env },
  );
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(tableContents(copy), tableContents(second));

  // The roles: drop one, restore the globals, and it is back with its attributes and password.
  const before = psql(
    "postgres",
    `SELECT rolcanlogin, rolconnlimit, rolpassword FROM pg_authid WHERE rolname = '${role}'`,
  );
  psql("postgres", `DROP ROLE ${role}`);
  const globals = await cairn(["restore", "cluster", "--artifact", "globals", "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(globals.code, 0, globals.stderr);
  assert.match(
    globals.stdout,
    /roles and tablespaces restored; already there and updated in place: .*postgres/,
  );
  assert.equal(
    psql(
      "postgres",
      `SELECT rolcanlogin, rolconnlimit, rolpassword FROM pg_authid WHERE rolname = '${role}'`,
    ),
    before,
  );

  const verify = await cairn(["verify", "cluster", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /pg_dumpall --globals-only output, complete/);
});

test("postgres: databases: all takes every database but the excluded ones and the templates", async () => {
  const ws = workspace(tempDir());
  const kept = createDatabase("cairn_all_kept");
  const left = createDatabase("cairn_all_left");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    clusterJob(`databases: all\nexclude_databases: [${left}]\nformat: custom`, ws.recipient),
  );
  const backup = await cairn(["backup", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const names: string[] = JSON.parse(
    (await cairn(["show", "cluster", "--json"], { cwd: ws.dir, env: ws.env })).stdout,
  ).manifest.artifacts.map((a: { name: string }) => a.name);
  assert.ok(names.includes("pg.globals.sql"), "globals are on by default with databases: all");
  assert.ok(names.includes(`pg.${kept}.pgdump`));
  assert.ok(names.includes("pg.postgres.pgdump"));
  assert.ok(!names.includes(`pg.${left}.pgdump`));
  assert.ok(!names.some((n) => n.includes("template")));
});

test("postgres: directory format with parallel jobs backs up and restores, with cairn and without", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase("cairn_dir");
  fillAwkwardDatabase(database);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    clusterJob(`database: ${database}\nformat: directory\njobs: 2`, ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const copy = uniqueName("cairn_dir_copy");
  after(() => dropDatabase(copy));
  const restored = await cairn(["restore", "cluster", "--to-database", copy, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(tableContents(copy), tableContents(database));

  const verify = await cairn(["verify", "cluster", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /pg_restore --list: \d+ entries/);

  const shown = JSON.parse((await cairn(["show", "cluster", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  const manual = uniqueName("cairn_dir_manual");
  after(() => dropDatabase(manual));
  const shell = (shown.manifest.artifacts[0].restoreWithoutCairn as string)
    .replace(/NEWDB/g, manual)
    .replace("key.txt", ws.keyFile);
  const pgEnv = { PGHOST: "127.0.0.1", PGUSER: "postgres" };
  const r = await run("sh", ["-c", shell], { cwd: join(ws.dir, "backups", shown.folder), env: pgEnv });
  assert.equal(r.code, 0, `${shell}\n${r.stderr}`);
  assert.deepEqual(tableContents(manual), tableContents(database));
});

test("postgres: a listed database that does not exist fails before anything is dumped", async () => {
  const ws = workspace(tempDir());
  const real = createDatabase("cairn_missing_ok");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    clusterJob(`databases: [${real}, no_such_db_here]`, ws.recipient),
  );
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /database "no_such_db_here" does not exist on the server/);
  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 0, "nothing recorded as good");
});

test("postgres: a pg_restore too old for the dump fails before touching the target, naming versions", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase("cairn_old_restore");
  psql(database, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)");
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient }));
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const bin = fakePgBin(ws.dir, 'exec "$REAL_PG_DUMP" "$@"');
  writeFileSync(join(bin, "pg_restore"), `#!/bin/sh\necho "pg_restore (PostgreSQL) 11.2"\n`);
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient, binDir: bin }));
  const target = uniqueName("cairn_never");
  const r = await cairn(["restore", "app", "--to-database", target, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /is version \d+(\.\d+)?, and no pg_restore of version \d+ or newer is installed \(found: 11\.2/,
  );
  assert.equal(databaseExists(target), false, "the target database was not created");
});

test("postgres: inside a container (docker exec), with the password forwarded by name, never on argv", async () => {
  const ws = workspace(tempDir());
  const database = createDatabase("cairn_container");
  fillAwkwardDatabase(database);
  const bin = fakeDocker(
    ws.dir,
    "pgbox",
    '[ -n "$PGPASSWORD" ] || { echo "PGPASSWORD was not forwarded" >&2; exit 66; }',
  );
  const secret = "dock-secret-4242";
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    clusterJob(
      `database: ${database}\npassword: ${secret}\ncontainer: { runtime: docker, name: pgbox }`,
      ws.recipient,
    ),
  );
  const env = { ...ws.env, PATH: `${bin}:${process.env.PATH}` };
  const backup = await cairn(["backup"], { cwd: ws.dir, env });
  assert.equal(backup.code, 0, backup.stderr);
  const copy = uniqueName("cairn_container_copy");
  after(() => dropDatabase(copy));
  const restored = await cairn(["restore", "cluster", "--to-database", copy, "-i", ws.keyFile], {
    cwd: ws.dir,
    env,
  });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(tableContents(copy), tableContents(database));
  const argv = readFileSync(join(bin, "argv.log"), "utf8");
  assert.match(argv, /docker exec -i .*-e PGPASSWORD .*pgbox pg_dump --format=custom/);
  assert.match(argv, /pgbox pg_restore --single-transaction/);
  assert.ok(!argv.includes(secret), "the password is never on a command line");
});

test("postgres: kubectl cannot carry a password, and says so before dumping", async () => {
  const ws = workspace(tempDir());
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    clusterJob(
      "database: app\npassword: k8s-secret\ncontainer: { runtime: kubectl, name: pg-0 }",
      ws.recipient,
    ),
  );
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /kubectl exec cannot pass PGPASSWORD without putting it on a command line/);
  assert.ok(!r.stderr.includes("k8s-secret"));
});

/** A new database with one table of 20,000 rows. */
function databaseWithRows(): string {
  const database = createDatabase();
  psql(
    database,
    "CREATE TABLE t (x int, y text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g",
  );
  return database;
}

test("postgres: a pg_dump that stops early but exits 0 fails the backup; nothing is recorded as good (#13.4)", async () => {
  const ws = workspace(tempDir());
  const database = databaseWithRows();
  // Writes the first 60% of a real dump, then exits 0 (a wrapper that lost the exit status).
  const bin = fakePgBin(
    ws.dir,
    `"$REAL_PG_DUMP" "$@" > "${ws.dir}/whole.dump" || exit 1\nhead -c $(( $(stat -c %s "${ws.dir}/whole.dump") * 6 / 10 )) "${ws.dir}/whole.dump"\nexit 0`,
  );
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient, binDir: bin }));
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 1, backup.stderr);
  assert.match(backup.stderr, /not a complete pg_dump archive: it ends in the middle/);
  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 0, "no snapshot is listed");
});

test("postgres: verify reads every data block — a dump cut short that an older cairn stored fails verify (#13.4)", async () => {
  const ws = workspace(tempDir());
  const database = databaseWithRows();
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources: { db: { type: postgres, database: ${database}, host: 127.0.0.1, user: postgres } }
    compression: none
    destinations: { local: { type: local, path: ./backups } }
`,
  );
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const good = await cairn(["verify", "app"], { cwd: ws.dir, env: ws.env });
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /all \d+ data blocks complete/);
  // Cut the stored dump and make the manifest agree with it, as a pg_dump that exited 0 early would have.
  const [id] = readdirSync(join(ws.dir, "backups/app"));
  const folder = join(ws.dir, "backups/app", id!);
  const dumpFile = join(folder, "db.pgdump");
  const cut = readFileSync(dumpFile).subarray(0, Math.floor(statSync(dumpFile).size * 0.6));
  chmodSync(dumpFile, 0o600);
  writeFileSync(dumpFile, cut);
  const manifestFile = join(folder, "manifest.json");
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8"));
  manifest.artifacts[0].objects[0].size = cut.length;
  manifest.artifacts[0].objects[0].sha256 = createHash("sha256").update(cut).digest("hex");
  chmodSync(manifestFile, 0o600);
  writeFileSync(manifestFile, JSON.stringify(manifest));
  const verify = await cairn(["verify", "app"], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 1, verify.stdout + verify.stderr);
  assert.match(verify.stdout + verify.stderr, /db\.pgdump is not a complete pg_dump archive/);
});

test("postgres: a dump much smaller than the previous one succeeds with a warning that says so (#13.4)", async () => {
  const ws = workspace(tempDir());
  const database = databaseWithRows();
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database, recipient: ws.recipient }));
  const first = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(first.code, 0, first.stderr);
  assert.doesNotMatch(first.stderr, /down from/);
  psql(database, "DELETE FROM t WHERE x > 100");
  const second = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(second.code, 0, second.stderr);
  assert.match(
    second.stderr,
    /db\.pgdump is \d+ bytes, down from \d+ in snapshot \S+ \(\d+%\): check that no data was deleted by mistake/,
  );
});
