/** Picking the pg_dump that fits the server, before anything is dumped. */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, createDatabase, psql, tempDir } from "../helpers/env.ts";
import { fakePgBin, postgresJob, workspace } from "../helpers/jobs.ts";

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
