/**
 * The one-call library forms: quickBackup({ paths, to }) and withBackupSession — what the callback
 * writes is backed up as one artifact, retention applies, the work folder is gone afterwards.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, test } from "node:test";
import { configFromObject, events, list, quickBackup, restore, withBackupSession } from "../../src/index.ts";
import { run, tempDir } from "../helpers/env.ts";

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** A config that reads what quickBackup wrote (same job, same destination). */
const reader = (dir: string, job: string) =>
  configFromObject({
    state_dir: join(dir, "state"),
    jobs: {
      [job]: {
        sources: { files: { type: "files", paths: ["."] } },
        encryption: "none",
        destinations: { to: { type: "local", path: join(dir, "out") } },
      },
    },
  });

test("quickBackup: folders to a folder in one call, restorable", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "site"));
  writeFileSync(join(dir, "site/index.html"), "<h1>hi</h1>\n");
  const report = await quickBackup({
    paths: [join(dir, "site")],
    to: join(dir, "out"),
    stateDir: join(dir, "state"),
  });
  assert.equal(report.ok, true);
  await restore({ config: reader(dir, "backup"), job: "backup", toDir: join(dir, "r") });
  assert.equal(readFileSync(join(dir, "r/site/index.html"), "utf8"), "<h1>hi</h1>\n");
});

test("withBackupSession: the callback's folder is backed up, pruned by retention, then removed", async () => {
  const dir = tempDir();
  const seen: string[] = [];
  stops.push(events.on("on_backup", ({ session }) => void seen.push(session)));
  let folder = "";
  for (const n of [1, 2, 3]) {
    const result = await withBackupSession(
      {
        job: "exports",
        to: join(dir, "out"),
        stateDir: join(dir, "state"),
        retention: { keep_last: 2, min_age: 0 },
      },
      async (session) => {
        folder = session.dir;
        assert.equal((await run("stat", ["-c", "%a", session.dir])).stdout.trim(), "700");
        writeFileSync(join(session.dir, "export.csv"), `run,${n}\n`);
        assert.match(session.id, /^[0-9a-f-]{36}$/);
        seen.push(`cb:${session.id}`);
      },
    );
    assert.equal(result.ok, true, String(result.error));
    assert.ok(!existsSync(folder), "the work folder is removed");
  }
  assert.equal(seen[0], `cb:${seen[1]}`, "the callback and the backup share the session");
  const snapshots = (await list({ config: reader(dir, "exports"), job: "exports" })).snapshots;
  assert.equal(snapshots.length, 2, "keep_last: 2 pruned the first");
  await restore({ config: reader(dir, "exports"), job: "exports", toDir: join(dir, "r") });
  assert.equal(readFileSync(join(dir, "r/exports/export.csv"), "utf8"), "run,3\n");

  await assert.rejects(
    withBackupSession(
      { job: "exports", to: join(dir, "out"), stateDir: join(dir, "state") },
      async (session) => {
        folder = session.dir;
        throw new Error("export failed");
      },
    ),
    /export failed/,
  );
  assert.ok(!existsSync(folder));
  assert.equal(readdirSync(join(dir, "out/exports")).length, 2, "a failed callback backs up nothing");
});
