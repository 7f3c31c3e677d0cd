/**
 * A PostgreSQL restore never merges into a database that already holds tables unless asked to
 * (issue #13, item 14): refused with exit 2 naming the database and what to do, the database left
 * as it was; `--force` restores into it; a new name just works.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, createDatabase, dropDatabase, psql, tableContents, tempDir } from "../helpers/env.ts";
import { postgresJob, workspace } from "../helpers/jobs.ts";

test("postgres restore into an existing database with tables: refused (exit 2) unless --force; the database untouched", async (t) => {
  const source = createDatabase();
  const target = createDatabase();
  const fresh = `${source}_new`;
  t.after(() => [source, target, fresh].forEach(dropDatabase));
  psql(
    source,
    "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'disk'), (2, 'tape');",
  );
  psql(target, "CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers VALUES (7);");
  const ws = workspace(tempDir());
  writeFileSync(join(ws.dir, "cairn.yaml"), postgresJob({ database: source, recipient: ws.recipient }));
  const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
  assert.equal((await cli(["backup"])).code, 0);
  const before = tableContents(target);

  const refused = await cli(["restore", "app", "--to-database", target, "-i", ws.keyFile]);
  assert.equal(refused.code, 2, refused.stdout + refused.stderr);
  assert.match(refused.stderr, new RegExp(`database ${target} exists and holds 1 table\\(s\\)`));
  assert.match(refused.stderr, /choose a new name with --to-database, or pass --force/);
  assert.deepEqual(tableContents(target), before, "the existing database was not touched");

  const forced = await cli(["restore", "app", "--to-database", target, "-i", ws.keyFile, "--force"]);
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(psql(target, "SELECT string_agg(item, ',' ORDER BY id) FROM orders"), "disk,tape");
  assert.equal(psql(target, "SELECT count(*) FROM customers"), "1", "its own tables are still there");

  const created = await cli(["restore", "app", "--to-database", fresh, "-i", ws.keyFile]);
  assert.equal(created.code, 0, created.stderr);
  assert.deepEqual(tableContents(fresh), tableContents(source));
});
