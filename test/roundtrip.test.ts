/**
 * The shared round-trip suite: every source, against its real server on 127.0.0.1, goes through
 * the same steps — back up (encrypted), verify with the key, restore into a fresh target, compare
 * the content itself, then restore again into the same target and see it refused, untouched.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import {
  cairn,
  createDatabase,
  dropDatabase,
  fillAwkwardDatabase,
  hasProgram,
  PG,
  run,
  tableContents,
  tempDir,
  treeContents,
  uniqueName,
} from "./helpers/env.ts";
import { type Workspace, workspace } from "./helpers/jobs.ts";
import {
  createMariaDatabase,
  dropMariaDatabase,
  fillAwkwardMariaDatabase,
  MARIADB,
  mariaContents,
} from "./helpers/mariadb.ts";
import { fillRedis, redisContents, startRedis } from "./helpers/redis.ts";
import { ADMIN, ADMIN_PASSWORD, awkwardDirectory, SUFFIX, startSlapd } from "./helpers/slapd.ts";

interface Prepared {
  /** The source's options, as a YAML flow mapping. */
  source: string;
  /** The source's options for the restore, when the target is named there (e.g. a fresh server's URI). */
  restoreSource?: string;
  restoreArgs: string[];
  original(): unknown;
  restored(): unknown | Promise<unknown>;
  cleanup?(): void | Promise<void>;
}

interface RoundTripCase {
  name: string;
  skip?: string | false;
  prepare(ws: Workspace): Promise<Prepared>;
}

function config(source: string, recipient: string): string {
  return `jobs:
  rt:
    sources:
      src: ${source}
    encryption: { age: { recipients: [${recipient}] } }
    destinations:
      local: { type: local, path: ./backups }
`;
}

function missing(...programs: string[]): string | false {
  const absent = programs.filter((p) => !hasProgram(p));
  return absent.length ? `needs ${absent.join(", ")} (.ci/system-deps installs them)` : false;
}

const cases: RoundTripCase[] = [
  {
    name: "postgres",
    async prepare() {
      const database = createDatabase("rt_pg");
      fillAwkwardDatabase(database);
      const copy = uniqueName("rt_pg_copy");
      return {
        source: `{ type: postgres, database: ${database}, host: ${PG.host}, user: ${PG.user} }`,
        restoreArgs: ["--to-database", copy],
        original: () => tableContents(database),
        restored: () => tableContents(copy),
        cleanup: () => dropDatabase(copy),
      };
    },
  },
  {
    name: "postgres, directory format, 2 jobs",
    async prepare() {
      const database = createDatabase("rt_pgdir");
      fillAwkwardDatabase(database);
      const copy = uniqueName("rt_pgdir_copy");
      return {
        source: `{ type: postgres, database: ${database}, host: ${PG.host}, user: ${PG.user}, format: directory, jobs: 2 }`,
        restoreArgs: ["--to-database", copy],
        original: () => tableContents(database),
        restored: () => tableContents(copy),
        cleanup: () => dropDatabase(copy),
      };
    },
  },
  {
    name: "mysql",
    async prepare() {
      const database = createMariaDatabase("rt_my");
      fillAwkwardMariaDatabase(database);
      const copy = uniqueName("rt_my_copy");
      return {
        source: `{ type: mysql, database: ${database}, host: ${MARIADB.host}, port: ${MARIADB.port}, user: ${MARIADB.user} }`,
        restoreArgs: ["--to-database", copy],
        original: () => mariaContents(database),
        restored: () => mariaContents(copy),
        cleanup: () => dropMariaDatabase(copy),
      };
    },
  },
  {
    name: "redis",
    skip: missing("redis-server", "redis-cli"),
    async prepare(ws) {
      const server = await startRedis({ dir: tempDir() });
      fillRedis(server);
      const target = join(ws.dir, "redis-restored");
      return {
        source: `{ type: redis, port: ${server.port} }`,
        restoreArgs: ["--to-dir", target],
        original: () => redisContents(server),
        restored: async () => redisContents(await startRedis({ dir: target, dbfilename: "dump.rdb" })),
      };
    },
  },
  {
    name: "sqlite",
    async prepare(ws) {
      const path = join(ws.dir, "app.db");
      const db = new DatabaseSync(path);
      db.exec(
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, blob BLOB); CREATE VIEW v AS SELECT id FROM notes",
      );
      const insert = db.prepare("INSERT INTO notes (body, blob) VALUES (?, ?)");
      for (let i = 0; i < 3000; i++) insert.run(`ünï ${i} 🐘`, Buffer.from([i % 256, 0, 255]));
      db.close();
      const rows = (file: string) => {
        const copy = new DatabaseSync(file, { readOnly: true });
        try {
          return copy.prepare("SELECT id, body, hex(blob) AS blob FROM notes ORDER BY id").all();
        } finally {
          copy.close();
        }
      };
      const target = join(ws.dir, "sqlite-restored");
      return {
        source: "{ type: sqlite, path: ./app.db }",
        restoreArgs: ["--to-dir", target],
        original: () => rows(path),
        restored: () => rows(join(target, "app.db")),
      };
    },
  },
  {
    name: "files",
    async prepare(ws) {
      const root = join(ws.dir, "site");
      mkdirSync(join(root, "ünï/deep/er"), { recursive: true });
      mkdirSync(join(root, "empty"));
      writeFileSync(join(root, "ünï/deep/er/file.txt"), "tief\n");
      writeFileSync(join(root, "big.bin"), Buffer.alloc(3_000_000, 7));
      symlinkSync("ünï/deep/er/file.txt", join(root, "link"));
      const target = join(ws.dir, "files-restored");
      return {
        source: "{ type: files, paths: [./site] }",
        restoreArgs: ["--to-dir", target],
        original: () => treeContents(root),
        restored: () => treeContents(join(target, "site")),
      };
    },
  },
  {
    name: "command (any program's output)",
    async prepare(ws) {
      writeFileSync(
        join(ws.dir, "export.sh"),
        "printf 'id,name\\n1,ünï\\n'; head -c 500000 /dev/zero | tr '\\\\0' 'x'\n",
      );
      const target = join(ws.dir, "command-restored");
      const expected = (await run("sh", [join(ws.dir, "export.sh")])).stdout;
      return {
        source: "{ type: command, command: [sh, export.sh], extension: csv }",
        restoreArgs: ["--to-dir", target],
        original: () => expected,
        restored: () => readFileSync(join(target, "src.csv"), "utf8"),
      };
    },
  },
  {
    name: "ldap (ldapsearch → ldapadd on a fresh slapd)",
    skip: missing("slapd", "ldapsearch", "ldapadd", "ldapdelete"),
    async prepare(ws) {
      const source = await startSlapd(join(ws.dir, "slapd-a"));
      source.add(awkwardDirectory(200));
      const fresh = await startSlapd(join(ws.dir, "slapd-b"));
      const options = (uri: string) =>
        `{ type: ldap, base: "${SUFFIX}", uri: "${uri}", bind_dn: "${ADMIN}", password: ${ADMIN_PASSWORD} }`;
      return {
        source: options(source.uri),
        restoreSource: options(fresh.uri),
        restoreArgs: [],
        original: () => source.entries(),
        restored: () => fresh.entries(),
      };
    },
  },
  {
    name: "mail (maildir)",
    async prepare(ws) {
      const box = join(ws.dir, "vmail/alice/Maildir");
      for (const sub of ["cur", "new", "tmp"]) mkdirSync(join(box, sub), { recursive: true });
      writeFileSync(join(box, "cur/1700000000.M1P1.mx:2,S"), "Subject: ünï\n\nhi\n");
      writeFileSync(join(box, "dovecot-uidlist"), "3 V1 N2\n1 1700000000.M1P1.mx\n");
      const target = join(ws.dir, "mail-restored");
      return {
        source: "{ type: mail, paths: [./vmail] }",
        restoreArgs: ["--to-dir", target],
        original: () => treeContents(join(ws.dir, "vmail")),
        restored: () => treeContents(join(target, "vmail")),
      };
    },
  },
  {
    name: "mongodb",
    skip:
      process.env.CAIRN_TEST_MONGODB_URL && !missing("mongodump", "mongorestore", "mongosh")
        ? false
        : "no MongoDB server on these machines: set CAIRN_TEST_MONGODB_URL (and install mongodump, mongorestore, mongosh) to run it",
    async prepare() {
      const url = process.env.CAIRN_TEST_MONGODB_URL!;
      const db = uniqueName("rt_mongo");
      const copy = uniqueName("rt_mongo_copy");
      const mongo = async (script: string) =>
        (await run("mongosh", [url, "--quiet", "--eval", script])).stdout;
      await mongo(
        `db.getSiblingDB("${db}").items.insertMany([...Array(1000).keys()].map(i => ({ i, s: "ünï" + i, b: BinData(0, "AAEC") })))`,
      );
      const dump = (name: string) =>
        mongo(`JSON.stringify(db.getSiblingDB("${name}").items.find({}, {_id: 0}).sort({i: 1}).toArray())`);
      const original = await dump(db);
      return {
        source: `{ type: mongodb, uri: "${url}", database: ${db} }`,
        restoreArgs: ["--to-database", copy],
        original: () => original,
        restored: () => dump(copy),
        cleanup: async () => {
          await mongo(`db.getSiblingDB("${db}").dropDatabase(); db.getSiblingDB("${copy}").dropDatabase()`);
        },
      };
    },
  },
];

for (const c of cases) {
  test(`round trip: ${c.name}`, { skip: c.skip ?? false }, async () => {
    const ws = workspace(tempDir());
    const prepared = await c.prepare(ws);
    const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
    try {
      writeFileSync(join(ws.dir, "cairn.yaml"), config(prepared.source, ws.recipient));
      const backup = await cli(["backup"]);
      assert.equal(backup.code, 0, backup.stderr);
      const verify = await cli(["verify", "rt", "-i", ws.keyFile]);
      assert.equal(verify.code, 0, verify.stderr);

      if (prepared.restoreSource)
        writeFileSync(join(ws.dir, "cairn.yaml"), config(prepared.restoreSource, ws.recipient));
      const restore = await cli(["restore", "rt", ...prepared.restoreArgs, "-i", ws.keyFile]);
      assert.equal(restore.code, 0, restore.stderr);
      const original = await prepared.original();
      const restored = await prepared.restored();
      assert.ok(JSON.stringify(original).length > 20, "the data set is not empty");
      assert.deepEqual(restored, original);

      const again = await cli(["restore", "rt", ...prepared.restoreArgs, "-i", ws.keyFile]);
      assert.notEqual(again.code, 0, "a second restore into the same target is refused");
      assert.match(again.stderr, /exists|not empty|holds/);
      assert.deepEqual(await prepared.restored(), original, "the target is untouched");
    } finally {
      await prepared.cleanup?.();
    }
  });
}
