/**
 * The built-ins pass the source round trip of `@cairn-backup/cairn/testing`, the suite plugin
 * authors run on their own sources: through the library, against the real servers.
 */
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { registerCases, sourceRoundTrip } from "../../src/testing/index.ts";
import {
  createDatabase,
  dropDatabase,
  fillAwkwardDatabase,
  PG,
  tableContents,
  tempDir,
  treeContents,
  uniqueName,
} from "../helpers/env.ts";
import {
  createMariaDatabase,
  dropMariaDatabase,
  fillAwkwardMariaDatabase,
  MARIADB,
  mariaContents,
} from "../helpers/mariadb.ts";

const pgDatabase = createDatabase("kit_pg");
fillAwkwardDatabase(pgDatabase);
const pgCopy = uniqueName("kit_pg_copy");
test.after(() => dropDatabase(pgCopy));
registerCases(
  test,
  sourceRoundTrip({
    source: { type: "postgres", database: pgDatabase, host: PG.host, user: PG.user },
    target: () => ({ database: pgCopy }),
    compare: (target) => assert.deepEqual(tableContents(target.database!), tableContents(pgDatabase)),
  }),
  "testing kit",
);

const myDatabase = createMariaDatabase("kit_my");
fillAwkwardMariaDatabase(myDatabase);
const myCopy = uniqueName("kit_my_copy");
test.after(() => dropMariaDatabase(myCopy));
registerCases(
  test,
  sourceRoundTrip({
    source: {
      type: "mysql",
      database: myDatabase,
      host: MARIADB.host,
      port: MARIADB.port,
      user: MARIADB.user,
    },
    target: () => ({ database: myCopy }),
    compare: (target) => assert.deepEqual(mariaContents(target.database!), mariaContents(myDatabase)),
  }),
  "testing kit",
);

const sqliteDir = tempDir();
const rows = (file: string) => {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT id, body, hex(blob) AS blob FROM notes ORDER BY id").all();
  } finally {
    db.close();
  }
};
registerCases(
  test,
  sourceRoundTrip({
    source: { type: "sqlite", path: "app.db" },
    baseDir: sqliteDir,
    prepare() {
      const db = new DatabaseSync(join(sqliteDir, "app.db"));
      db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, blob BLOB)");
      const insert = db.prepare("INSERT INTO notes (body, blob) VALUES (?, ?)");
      for (let i = 0; i < 2000; i++) insert.run(`ünï ${i} 🐘`, Buffer.from([i % 256, 0, 255]));
      db.close();
    },
    compare: (target) => assert.deepEqual(rows(join(target.dir!, "app.db")), rows(join(sqliteDir, "app.db"))),
  }),
  "testing kit",
);

const site = join(tempDir(), "site");
registerCases(
  test,
  sourceRoundTrip({
    source: { type: "files", paths: [site] },
    compression: "zstd",
    prepare() {
      mkdirSync(join(site, "ünï/deep"), { recursive: true });
      writeFileSync(join(site, "ünï/deep/file.txt"), "tief\n");
      writeFileSync(join(site, "big.bin"), Buffer.alloc(2_000_000, 7));
      symlinkSync("ünï/deep/file.txt", join(site, "link"));
    },
    compare: (target) => assert.deepEqual(treeContents(join(target.dir!, "site")), treeContents(site)),
  }),
  "testing kit",
);
