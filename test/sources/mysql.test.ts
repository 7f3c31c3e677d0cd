/** The mysql source against the real MariaDB: every table's rows, views, triggers, routines and events come back. */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { cairn, run, tempDir, uniqueName } from "../helpers/env.ts";
import { fakeDocker, sourceJob, workspace } from "../helpers/jobs.ts";
import {
  createMariaDatabase,
  dropMariaDatabase,
  fillAwkwardMariaDatabase,
  MARIADB,
  mariaContents,
  mariaDatabaseExists,
  mariadb,
  startMariaDbWithBinlog,
} from "../helpers/mariadb.ts";

function job(database: string, recipient: string, extra = ""): string {
  return `jobs:
  shop:
    sources:
      db: { type: mysql, database: ${database}, host: ${MARIADB.host}, port: ${MARIADB.port}, user: ${MARIADB.user}${extra} }
    encryption: { age: { recipients: [${recipient}] } }
    destinations:
      local: { type: local, path: ./backups }
`;
}

test("mysql: backup, restore into a new database, every row and object equal; verify; restore without cairn", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("shop");
  fillAwkwardMariaDatabase(database);
  writeFileSync(join(ws.dir, "cairn.yaml"), job(database, ws.recipient));
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stderr, /MyISAM table\(s\) found: dumping with table locks/);

  const copy = uniqueName("shop_copy");
  try {
    const restore = await cairn(["restore", "shop", "--to-database", copy, "-i", ws.keyFile], {
      cwd: ws.dir,
      env: ws.env,
    });
    assert.equal(restore.code, 0, restore.stderr);
    assert.deepEqual(mariaContents(copy), mariaContents(database));
  } finally {
    dropMariaDatabase(copy);
  }

  const verify = await cairn(["verify", "shop", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /complete \(ends with "-- Dump completed"\)/);

  const show = JSON.parse((await cairn(["show", "shop", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  const hint: string = show.manifest.artifacts[0].restoreWithoutCairn;
  const manual = uniqueName("shop_manual");
  try {
    const connection = `-h ${MARIADB.host} -P ${MARIADB.port} -u ${MARIADB.user}`;
    const shell = hint
      .replace(/NEWDB/g, manual)
      .replace(/mariadb /g, `mariadb ${connection} `)
      .replace("key.txt", ws.keyFile);
    const r = await run("sh", ["-c", shell], { cwd: join(ws.dir, "backups", show.folder) });
    assert.equal(r.code, 0, `${shell}\n${r.stderr}`);
    assert.deepEqual(mariaContents(manual), mariaContents(database));
  } finally {
    dropMariaDatabase(manual);
  }
});

test("mysql: never restores over a database that has tables", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("shop");
  mariadb("CREATE TABLE t (id INT PRIMARY KEY); INSERT INTO t VALUES (1)", database);
  writeFileSync(join(ws.dir, "cairn.yaml"), job(database, ws.recipient));
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const r = await cairn(["restore", "shop", "--to-database", database, "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(r.code, 2, "a refused action: nothing was done");
  assert.match(r.stderr, /exists and holds 1 table\(s\)/);
  assert.equal(mariadb("SELECT COUNT(*) FROM t", database), "1");
});

test("mysql: wrong password, missing database and a killed dump fail clearly; nothing is recorded", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("shop");
  fillAwkwardMariaDatabase(database);
  const user = uniqueName("cairn_user");
  mariadb(
    `CREATE USER '${user}'@'%' IDENTIFIED BY 'right-password-1'; GRANT ALL ON \`${database}\`.* TO '${user}'@'%'`,
  );
  try {
    const cases: [string, string, RegExp][] = [
      [
        "wrong password",
        job(database, ws.recipient).replace(
          `user: ${MARIADB.user}`,
          `user: ${user}, password: 'wrong-pass-42'`,
        ),
        /Access denied for user/,
      ],
      ["missing database", job(uniqueName("nope"), ws.recipient), /database \S+ does not exist/],
    ];
    const bin = join(ws.dir, "bin");
    mkdirSync(bin);
    const real = (await run("sh", ["-c", "command -v mariadb-dump"])).stdout.trim();
    writeFileSync(
      join(bin, "mariadb-dump"),
      `#!/bin/sh\n[ "$1" = --version ] && exec "${real}" --version\n"${real}" "$@" | head -c 30000\nkill -9 $$\n`,
    );
    chmodSync(join(bin, "mariadb-dump"), 0o755);
    cases.push([
      "killed dump",
      job(database, ws.recipient, `, bin_dir: ${bin}`),
      /mariadb-dump was killed by SIGKILL/,
    ]);
    for (const [name, config, expected] of cases) {
      writeFileSync(join(ws.dir, "cairn.yaml"), config);
      const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
      assert.equal(r.code, 1, `${name}: ${r.stderr}`);
      assert.match(r.stderr, expected, name);
      assert.ok(!r.stderr.includes("wrong-pass-42"), `${name}: password printed`);
      const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
      assert.equal(listed.snapshots.length, 0, name);
    }
    const left = join(ws.dir, "backups/shop");
    assert.deepEqual(
      existsSync(left) ? readdirSync(left, { recursive: true }) : [],
      [],
      "no partial objects left",
    );
    assert.ok(mariaDatabaseExists(database));
  } finally {
    mariadb(`DROP USER IF EXISTS '${user}'@'%'`);
  }
});

function serverJob(source: string, recipient: string, port = MARIADB.port): string {
  const connection = `type: mysql\nhost: ${MARIADB.host}\nport: ${port}\nuser: ${MARIADB.user}`;
  return sourceJob("shop", "db", `${connection}\n${source}`, recipient);
}

test("mysql: a list of databases and the accounts, each its own artifact; restore one by name, then the accounts", async () => {
  const ws = workspace(tempDir());
  const first = createMariaDatabase("shop_a");
  const second = createMariaDatabase("shop_b");
  fillAwkwardMariaDatabase(first);
  mariadb(
    "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'ünï'), (2, 'b')",
    second,
  );
  const user = uniqueName("cairn_acct");
  mariadb(
    `CREATE USER '${user}'@'localhost' IDENTIFIED BY 'acct-pass-1'; GRANT SELECT, INSERT ON \`${second}\`.* TO '${user}'@'localhost'`,
  );
  after(() => mariadb(`DROP USER IF EXISTS '${user}'@'localhost'`));
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    serverJob(`databases: [${first}, ${second}]\nusers: true`, ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const shown = JSON.parse((await cairn(["show", "shop", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.deepEqual(
    shown.manifest.artifacts.map((a: { name: string }) => a.name),
    ["db.users.sql", `db.${first}.sql`, `db.${second}.sql`],
  );

  const copy = uniqueName("shop_b_copy");
  after(() => dropMariaDatabase(copy));
  const restored = await cairn(
    ["restore", "shop", "--artifact", second, "--to-database", copy, "-i", ws.keyFile],
    {
      cwd: ws.dir,
      env: ws.env,
    },
  );
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(mariaContents(copy), mariaContents(second));

  const grants = () => mariadb(`SHOW GRANTS FOR '${user}'@'localhost'`);
  const before = grants();
  mariadb(`DROP USER '${user}'@'localhost'`);
  const accounts = await cairn(["restore", "shop", "--artifact", "users", "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(accounts.code, 0, accounts.stderr);
  assert.equal(grants(), before, "the account is back with its password hash and grants");

  const verify = await cairn(["verify", "shop", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /accounts and grants, \d+ bytes, complete/);
});

test("mysql: databases: all leaves out the system schemas and the excluded ones", async () => {
  const ws = workspace(tempDir());
  const kept = createMariaDatabase("shop_all_kept");
  const left = createMariaDatabase("shop_all_left");
  mariadb("CREATE TABLE t (id INT PRIMARY KEY)", kept);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    serverJob(`databases: all\nexclude_databases: [${left}]`, ws.recipient),
  );
  const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const names: string[] = JSON.parse(
    (await cairn(["show", "shop", "--json"], { cwd: ws.dir, env: ws.env })).stdout,
  ).manifest.artifacts.map((a: { name: string }) => a.name);
  assert.ok(names.includes(`db.${kept}.sql`));
  assert.ok(!names.includes(`db.${left}.sql`));
  for (const system of ["mysql", "sys", "information_schema", "performance_schema"])
    assert.ok(!names.includes(`db.${system}.sql`), system);
});

test("mysql: a dump client older than the server fails before dumping, naming versions and the package", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("shop_old");
  const bin = join(ws.dir, "bin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "mariadb-dump"),
    `#!/bin/sh\necho "$*" >> "${join(bin, "argv.log")}"\necho "mariadb-dump  Ver 10.19 Distrib 10.3.39-MariaDB, for debian-linux-gnu (x86_64)"\n`,
  );
  chmodSync(join(bin, "mariadb-dump"), 0o755);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    serverJob(`database: ${database}\nbin_dir: ${bin}`, ws.recipient),
  );
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /the server is MariaDB 10\.\d+\.\d+\S*, and no mariadb-dump of that flavor and version 10\.\d+ or newer is installed \(found: mariadb 10\.3\.39/,
  );
  assert.match(r.stderr, /install mariadb-client 10\.\d+ or newer/);
  assert.equal(readFileSync(join(bin, "argv.log"), "utf8"), "--version\n", "nothing was dumped");
});

test("mysql: inside a container (docker exec), the password forwarded as MYSQL_PWD by name, never on argv", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("shop_box");
  fillAwkwardMariaDatabase(database);
  const user = uniqueName("cairn_box");
  const secret = "box-pass-31337";
  mariadb(`CREATE USER '${user}'@'%' IDENTIFIED BY '${secret}'; GRANT ALL ON *.* TO '${user}'@'%'`);
  after(() => mariadb(`DROP USER IF EXISTS '${user}'@'%'`));
  const bin = fakeDocker(ws.dir, "dbbox");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    serverJob(`database: ${database}\ncontainer: { name: dbbox }`, ws.recipient).replace(
      `user: ${MARIADB.user}`,
      `user: ${user}\n        password: ${secret}`,
    ),
  );
  const env = { ...ws.env, PATH: `${bin}:${process.env.PATH}` };
  const backup = await cairn(["backup"], { cwd: ws.dir, env });
  assert.equal(backup.code, 0, backup.stderr);
  const copy = uniqueName("shop_box_copy");
  after(() => dropMariaDatabase(copy));
  const restored = await cairn(["restore", "shop", "--to-database", copy, "-i", ws.keyFile], {
    cwd: ws.dir,
    env,
  });
  assert.equal(restored.code, 0, restored.stderr);
  assert.deepEqual(mariaContents(copy), mariaContents(database));
  const argv = readFileSync(join(bin, "argv.log"), "utf8");
  assert.match(argv, /docker exec -i -e MYSQL_PWD dbbox mariadb-dump --host=127\.0\.0\.1/);
  assert.ok(!argv.includes(secret), "the password is never on a command line");
});

test("mysql: binlogs give point-in-time recovery: dump of backup 1 + binary logs of backup 2 = the data at backup 2", async () => {
  const ws = workspace(tempDir());
  const server = await startMariaDbWithBinlog(ws.dir);
  server.sql(
    "CREATE DATABASE pitr; CREATE TABLE pitr.orders (id INT PRIMARY KEY, item VARCHAR(50), at DATETIME)",
  );
  server.sql("INSERT INTO pitr.orders VALUES (1, 'first', NOW()), (2, 'ünïcødé', NOW())");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    serverJob("database: pitr\nbinlogs: true", ws.recipient, server.port),
  );
  const first = await cairn(["backup", "--json"], { cwd: ws.dir, env: ws.env });
  assert.equal(first.code, 0, first.stderr);
  const firstId = JSON.parse(first.stdout).jobs[0].snapshot;
  // As an application writes: unqualified names in its own database (--rewrite-db maps those).
  server.sql(
    "INSERT INTO orders VALUES (3, 'after the dump', NOW()); UPDATE orders SET item = 'changed' WHERE id = 1; DELETE FROM orders WHERE id = 2",
    "pitr",
  );
  const second = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(second.code, 0, second.stderr);
  const wanted = server.sql("SELECT * FROM pitr.orders ORDER BY id");

  const shown = JSON.parse(
    (await cairn(["show", `shop@${firstId}`, "--json"], { cwd: ws.dir, env: ws.env })).stdout,
  );
  const dump = shown.manifest.artifacts.find((a: { name: string }) => a.name === "db.sql");
  assert.match(dump.meta.binlogPosition.file, /^binlog\.\d+$/);
  assert.ok(dump.meta.binlogPosition.position > 0);

  // The documented procedure: restore the dump, then replay the logs from its position.
  const restored = await cairn(
    ["restore", `shop@${firstId}`, "--artifact", "pitr", "--to-database", "pitr_copy", "-i", ws.keyFile],
    { cwd: ws.dir, env: ws.env },
  );
  assert.equal(restored.code, 0, restored.stderr);
  const logs = join(ws.dir, "logs");
  const fetched = await cairn(
    ["restore", "shop", "--artifact", "binlogs", "--to-dir", logs, "-i", ws.keyFile],
    { cwd: ws.dir, env: ws.env },
  );
  assert.equal(fetched.code, 0, fetched.stderr);
  const files = readdirSync(logs)
    .sort()
    .filter((f) => f >= dump.meta.binlogPosition.file);
  const replay = await run("sh", [
    "-c",
    `mariadb-binlog --start-position=${dump.meta.binlogPosition.position} --rewrite-db='pitr->pitr_copy' ${files.map((f) => join(logs, f)).join(" ")} | mariadb -h 127.0.0.1 -P ${server.port} -u root`,
  ]);
  assert.equal(replay.code, 0, replay.stderr);
  assert.equal(server.sql("SELECT * FROM pitr_copy.orders ORDER BY id"), wanted);
});

test("mysql: binlogs asked for on a server that keeps none fail clearly", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("shop_nolog");
  writeFileSync(join(ws.dir, "cairn.yaml"), serverJob(`database: ${database}\nbinlogs: true`, ws.recipient));
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /binary logging is off on the server/);
});

test("mysql: a dump cut short by a client that still exits 0 is refused (no completion line)", async () => {
  const ws = workspace(tempDir());
  const database = createMariaDatabase("shop_cut");
  fillAwkwardMariaDatabase(database);
  const bin = join(ws.dir, "bin");
  mkdirSync(bin);
  const real = (await run("sh", ["-c", "command -v mariadb-dump"])).stdout.trim();
  writeFileSync(
    join(bin, "mariadb-dump"),
    `#!/bin/sh\n[ "$1" = --version ] && exec "${real}" --version\n"${real}" "$@" | head -c 30000\nexit 0\n`,
  );
  chmodSync(join(bin, "mariadb-dump"), 0o755);
  writeFileSync(join(ws.dir, "cairn.yaml"), job(database, ws.recipient, `, bin_dir: ${bin}`));
  const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /does not end with mysqldump's completion line: it is cut short/);
  const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
  assert.equal(listed.snapshots.length, 0);
});
