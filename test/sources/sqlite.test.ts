/** The sqlite source copies a live database consistently while another connection keeps writing. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { backup, configFromObject, restore, verify } from "../../src/index.ts";
import { tempDir } from "../helpers/env.ts";

test("sqlite: a consistent copy of a live database restores with every row and passes integrity_check", async () => {
  const dir = tempDir();
  const path = join(dir, "live.db");
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; CREATE TABLE events (id INTEGER PRIMARY KEY, body TEXT, blob BLOB)");
  const insert = db.prepare("INSERT INTO events (body, blob) VALUES (?, ?)");
  db.exec("BEGIN");
  for (let i = 0; i < 20_000; i++) insert.run(`évènement ${i}`, Buffer.from([i % 256, 0, 255]));
  db.exec("COMMIT");
  // Writes keep landing while the backup runs: each transaction adds 10 rows.
  let writing = true;
  const writer = (async () => {
    while (writing) {
      db.exec("BEGIN");
      for (let i = 0; i < 10; i++) insert.run("during backup", null);
      db.exec("COMMIT");
      await new Promise((r) => setImmediate(r));
    }
  })();

  const config = configFromObject(
    {
      state_dir: "./state",
      jobs: {
        notes: {
          sources: { live: { type: "sqlite", path: "./live.db" } },
          destinations: { here: { type: "local", path: "./backups" } },
        },
      },
    },
    { baseDir: dir },
  );
  const report = await backup({ config });
  writing = false;
  await writer;
  assert.ok(report.ok, JSON.stringify(report.jobs[0]?.error));

  const target = join(dir, "restored");
  const result = await restore({ config, job: "notes", toDir: target });
  assert.match(result.restored[0]!.summary, /live\.db/);
  const copy = new DatabaseSync(join(target, "live.db"), { readOnly: true });
  const { n, during } = copy
    .prepare("SELECT count(*) AS n, sum(body = 'during backup') AS during FROM events")
    .get() as { n: number; during: number };
  assert.equal((n - 20_000) % 10, 0, "only whole transactions are in the copy");
  assert.equal(during % 10, 0);
  assert.equal(
    (copy.prepare("SELECT body FROM events WHERE id = 12345").get() as { body: string }).body,
    "évènement 12344",
  );
  copy.close();
  db.close();

  const checked = await verify({ config, job: "notes" });
  assert.match(checked.artifacts[0]!.summary, /integrity_check ok, 1 tables/);
});

test("sqlite: a missing database file is a clear failure, not an empty backup", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "placeholder"), "");
  const config = configFromObject(
    {
      state_dir: "./state",
      jobs: {
        x: {
          sources: { db: { type: "sqlite", path: "./missing.db" } },
          destinations: { d: { type: "local", path: "./b" } },
        },
      },
    },
    { baseDir: dir },
  );
  const report = await backup({ config });
  assert.equal(report.ok, false);
  assert.match(report.jobs[0]!.error!.message, /missing\.db does not exist/);
});
