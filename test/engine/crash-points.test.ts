/**
 * Crash points (issue #14, borg's test_crash_before_*): cairn killed with SIGKILL at each step of a
 * backup and of a prune (CAIRN_TEST_CRASH_AT). After each: the next backup and prune succeed, `list`
 * shows nothing false (every listed snapshot verifies), the dead run's work folder is gone and
 * its leftovers are pruned, and no lock is left held.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CRASH_POINTS } from "../../src/engine/crash.ts";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

test("killed at every crash point of backup and prune: the next runs succeed and list shows only snapshots that verify", async () => {
  const ws = workspace(tempDir());
  const tmp = join(ws.dir, "tmp");
  mkdirSync(tmp);
  mkdirSync(join(ws.dir, "site"));
  writeFileSync(join(ws.dir, "site/a.txt"), "alpha\n");
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      site: { type: files, paths: [./site] }
      notes: { type: command, command: [echo, notes] }
    encryption: { age: { recipients: [${ws.recipient}] } }
    retention: { keep_last: 2, min_age: 0, leftovers_grace: 0s }
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  const env = { ...ws.env, TMPDIR: tmp };
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    cairn(args, { cwd: ws.dir, env: { ...env, ...extra } });
  const listed = async (): Promise<string[]> => {
    const r = await cli(["list", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).snapshots.map((s: { id: string }) => s.id);
  };
  for (let i = 0; i < 2; i++) assert.equal((await cli(["backup", "-q"])).code, 0);

  for (const point of CRASH_POINTS) {
    const command = point.startsWith("prune") ? ["prune"] : ["backup", "-q"];
    if (point === "prune:manifest-removed")
      assert.equal((await cli(["backup", "-q"])).code, 0, "one to remove");
    const crashed = await cli(command, { CAIRN_TEST_CRASH_AT: point });
    assert.equal(crashed.code, -1, `${point}: killed (${crashed.stderr})`);

    const next = await cli(["backup"]);
    assert.equal(next.code, 0, `${point}: the next backup: ${next.stderr}`);
    const pruned = await cli(["prune"]);
    assert.equal(pruned.code, 0, `${point}: the next prune: ${pruned.stdout}${pruned.stderr}`);
    for (const id of await listed()) {
      const verified = await cli(["verify", `app@${id}`, "-i", ws.keyFile]);
      assert.equal(verified.code, 0, `${point}: listed ${id} does not verify: ${verified.stderr}`);
    }
    const folders = readdirSync(join(ws.dir, "backups/app"));
    for (const folder of folders)
      assert.ok(
        existsSync(join(ws.dir, "backups/app", folder, "manifest.json")),
        `${point}: leftover ${folder} not pruned`,
      );
    const workFolders = readdirSync(tmp).filter((d) => d.startsWith("cairn-")); // not Node's compile cache
    assert.deepEqual(workFolders, [], `${point}: a work folder was left`);
    const locks = join(ws.dir, "backups/.cairn-locks/app");
    assert.deepEqual(existsSync(locks) ? readdirSync(locks) : [], [], `${point}: a lock object was left`);
  }
});
