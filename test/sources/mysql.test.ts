/** The mysql source against the real MariaDB: every table's rows, views, triggers, routines and events come back. */
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, run, tempDir, uniqueName } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";
import {
  createMariaDatabase,
  dropMariaDatabase,
  fillAwkwardMariaDatabase,
  MARIADB,
  mariaContents,
  mariaDatabaseExists,
  mariadb,
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
  assert.equal(r.code, 1);
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
    writeFileSync(join(bin, "mariadb-dump"), `#!/bin/sh\n"${real}" "$@" | head -c 30000\nkill -9 $$\n`);
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
