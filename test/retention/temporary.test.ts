/**
 * The temporary object of an upload killed mid-put (`..cairn-tmp-*`, hidden from listings) is
 * removed by prune once older than `leftovers_grace`; one still being written is not (issue #13,
 * item 16). Before, nothing ever removed them.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CLI, cairn, tempDir } from "../helpers/env.ts";

/** Every file under `dir`, recursively, relative to it. */
const files = (dir: string): string[] =>
  existsSync(dir)
    ? (readdirSync(dir, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
        .filter((e) => e.isFile())
        .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    : [];

test("prune removes the temporary object a killed upload left, once past leftovers_grace; not a fresh one", async () => {
  const dir = tempDir();
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      stream: { type: command, command: [sh, -c, "head -c 3000000 /dev/urandom; sleep 60"] }
    compression: none
    retention: { keep_last: 3, min_age: 0, leftovers_grace: 1h }
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  const env = { ...process.env, CAIRN_STATE_DIR: join(dir, "state") };
  const backups = join(dir, "backups");
  // The artifact's temporary object in the snapshot folder: the lock object is written through a
  // temporary too, and under load the run could be killed while writing that one first.
  const temporaries = () => files(backups).filter((f) => f.startsWith("app/") && f.includes(".cairn-tmp-"));
  const child = spawn(process.execPath, [CLI, "backup"], { cwd: dir, env, stdio: "ignore" });
  for (let i = 0; i < 100 && temporaries().length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  child.kill("SIGKILL");
  await new Promise((resolve) => child.on("close", resolve));
  const [left] = temporaries();
  assert.ok(left, "the killed upload left its temporary object");

  const cli = (args: string[]) => cairn(args, { cwd: dir, env: { CAIRN_STATE_DIR: join(dir, "state") } });
  const fresh = await cli(["prune"]);
  assert.equal(fresh.code, 0, fresh.stderr);
  assert.deepEqual(
    temporaries(),
    [left],
    "younger than leftovers_grace: kept (it could be an upload running now)",
  );

  const old = new Date(Date.now() - 2 * 3_600_000);
  utimesSync(join(backups, left), old, old);
  const dry = await cli(["prune", "--dry-run"]);
  assert.match(
    dry.stdout,
    /would remove the temporary object of an upload that never finished: app\/\S+\.cairn-tmp-/,
  );
  assert.deepEqual(temporaries(), [left], "a dry run removes nothing");
  const pruned = await cli(["prune"]);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /removed the temporary object of an upload that never finished/);
  assert.deepEqual(files(join(backups, "app")), [], "the temporary object and its folder are gone");
});
