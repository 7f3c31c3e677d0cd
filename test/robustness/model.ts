/**
 * A seeded, model-based run (kopia's robustness test, issue #14): random steps against a real
 * job — change files, back up, restore a random snapshot and compare it with the fingerprint
 * recorded at its backup, corrupt an object and expect verify to fail naming it, prune, kill cairn
 * at a random crash point — checking `list` against the model after every step. The same seed
 * gives the same steps. `npm run robustness -- --steps 5000 --seed N`.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateIdentity } from "../../src/age/index.ts";
import { configFromObject } from "../../src/config/load.ts";
import { CRASH_POINTS } from "../../src/engine/crash.ts";
import { backup, list, prune, restore, verify } from "../../src/index.ts";
import { CLI, tempDir, treeContents } from "../helpers/env.ts";
import { random } from "../helpers/random.ts";

type Step = "change" | "backup" | "restore" | "corrupt" | "prune" | "crash" | "other-job" | "two-hosts";
const STEPS: [Step, number][] = [
  ["change", 3],
  ["backup", 3],
  ["restore", 2],
  ["corrupt", 1],
  ["prune", 1],
  ["crash", 1],
  ["other-job", 1],
  ["two-hosts", 1],
];

/** Runs the CLI with `args` in `dir`; resolves to its exit code. */
function cli(dir: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("close", (code) => resolve({ code: code ?? -1, stderr }));
  });
}

export interface RunReport {
  seed: number;
  steps: Step[];
}

export async function robustnessRun(seed: number, count: number, log: (line: string) => void = () => {}) {
  const next = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const dir = tempDir();
  const { identity, recipient } = generateIdentity();
  const keyFile = join(dir, "key.txt");
  writeFileSync(keyFile, `${identity}\n`, { mode: 0o600 });
  const site = join(dir, "site");
  mkdirSync(site);
  const job = {
    sources: { site: { type: "files", paths: ["./site"] } },
    encryption: { age: { recipients: [recipient] } },
    retention: { keep_last: 3, min_age: 0, leftovers_grace: "0s" },
    destinations: { here: { type: "local", path: "./backups" } },
  };
  // A second job on the same destination, whose prunes must never touch the first one's.
  const logs = {
    sources: { notes: { type: "command", command: ["date", "+%s%N"] } },
    retention: { keep_last: 2, min_age: 0, leftovers_grace: "0s" },
    destinations: { here: { type: "local", path: "./backups" } },
  };
  const jobs = { app: job, logs };
  const yaml = JSON.stringify({ state_dir: "./state", jobs });
  writeFileSync(join(dir, "cairn.yaml"), yaml); // JSON is YAML: the crash steps run the CLI on it
  // Another host: its own state folder (its own local lock), the same destination.
  writeFileSync(join(dir, "host-b.yaml"), JSON.stringify({ state_dir: "./state-b", jobs }));
  const config = configFromObject(JSON.parse(yaml), { baseDir: dir });
  /** The model: every good snapshot and the tree it holds. */
  const model = new Map<string, Record<string, string>>();
  const steps: Step[] = [];
  const logsModel = new Set<string>();
  const listedIds = async (name = "app") =>
    new Set((await list({ config, job: name })).snapshots.map((s) => s.id));

  for (let i = 0; i < count; i++) {
    const weights = STEPS.flatMap(([step, w]) => Array<Step>(w).fill(step));
    const step = model.size === 0 && i % 2 === 1 ? "backup" : pick(weights);
    steps.push(step);
    const where = `step ${i} (${step}) of seed ${seed}`;
    log(where);
    if (step === "change") {
      const name = `f${Math.floor(next() * 6)}.txt`;
      if (next() < 0.25) rmSync(join(site, name), { force: true });
      else
        writeFileSync(
          join(site, name),
          `${name} ${Math.floor(next() * 1e9)}\n`.repeat(1 + Math.floor(next() * 50)),
        );
    } else if (step === "backup") {
      const report = await backup({ config, jobs: ["app"] });
      assert.ok(report.jobs[0]!.ok, `${where}: ${report.jobs[0]!.error?.message}`);
      model.set(report.jobs[0]!.snapshot, treeContents(site));
    } else if (step === "restore" && model.size > 0) {
      const id = pick([...model.keys()].sort());
      const target = join(tempDir(), "r");
      await restore({ config, job: "app", snapshot: id, toDir: target, identityFiles: [keyFile] });
      assert.deepEqual(
        treeContents(join(target, "site")),
        model.get(id),
        `${where}: ${id} restores what it held`,
      );
    } else if (step === "corrupt" && model.size > 0) {
      const id = pick([...model.keys()].sort());
      const folder = join(dir, "backups/app", id);
      const object = readdirSync(folder).find((f) => f.endsWith(".age"))!;
      const bytes = readFileSync(join(folder, object));
      bytes[Math.floor(next() * bytes.length)]! ^= 1 << Math.floor(next() * 8);
      writeFileSync(join(folder, object), bytes);
      await assert.rejects(
        verify({ config, job: "app", snapshot: id, identityFiles: [keyFile] }),
        (error: Error) => {
          assert.ok(error.message.includes(object), `${where}: ${error.message}`);
          return true;
        },
        `${where}: verify names ${object}`,
      );
      rmSync(folder, { recursive: true }); // the operator removes the damaged snapshot
      model.delete(id);
    } else if (step === "prune") {
      const result = await prune({ config, job: "app" });
      for (const d of result.destinations) for (const r of d.remove) model.delete(r.id);
    } else if (step === "crash") {
      const point = pick(CRASH_POINTS);
      const before = treeContents(site);
      const args = point.startsWith("prune") ? ["prune", "app"] : ["backup", "app", "-q"];
      spawnSync(process.execPath, [CLI, ...args], {
        cwd: dir,
        env: { ...process.env, CAIRN_TEST_CRASH_AT: point },
        stdio: "ignore",
      });
      const now = await listedIds();
      for (const id of now)
        if (!model.has(id)) {
          // Only a backup killed after its manifest was written may leave a snapshot, and it is good.
          assert.equal(
            point,
            "backup:manifest-written",
            `${where}: ${id} appeared after a crash at ${point}`,
          );
          model.set(id, before);
        }
      for (const id of [...model.keys()])
        if (!now.has(id)) {
          // A prune killed after removing a manifest took that snapshot away (it was to go anyway).
          assert.equal(point, "prune:manifest-removed", `${where}: ${id} vanished after a crash at ${point}`);
          model.delete(id);
        }
    } else if (step === "other-job") {
      if (next() < 0.7) {
        const report = await backup({ config, jobs: ["logs"] });
        assert.ok(report.jobs[0]!.ok, `${where}: ${report.jobs[0]!.error?.message}`);
        logsModel.add(report.jobs[0]!.snapshot);
      } else {
        const result = await prune({ config, job: "logs" });
        for (const d of result.destinations) for (const r of d.remove) logsModel.delete(r.id);
      }
    } else if (step === "two-hosts") {
      // Two hosts back up the same job at once: the destination lock lets one through at a time.
      const tree = treeContents(site);
      const runs = await Promise.all([
        cli(dir, ["backup", "app", "-q"]),
        cli(dir, ["-c", "host-b.yaml", "backup", "app", "-q"]),
      ]);
      const codes = runs.map((r) => r.code);
      for (const r of runs) assert.ok(r.code === 0 || r.code === 11, `${where}: exit ${r.code}: ${r.stderr}`);
      const now = await listedIds();
      const added = [...now].filter((id) => !model.has(id));
      assert.equal(
        added.length,
        codes.filter((c) => c === 0).length,
        `${where}: one snapshot per run that succeeded`,
      );
      for (const id of added) model.set(id, tree);
    }
    assert.deepEqual(
      [...(await listedIds())].sort(),
      [...model.keys()].sort(),
      `${where}: list matches the model`,
    );
    assert.deepEqual(
      [...(await listedIds("logs"))].sort(),
      [...logsModel].sort(),
      `${where}: the other job's list`,
    );
  }
  // In the end, one prune leaves no trace of the runs that were killed: no temporary object, no
  // folder without a manifest, no lock object, no work folder of a dead run.
  await prune({ config, job: "app" });
  const stored = readdirSync(join(dir, "backups"), { recursive: true }).map(String);
  assert.deepEqual(
    stored.filter((f) => f.includes(".cairn-tmp-")),
    [],
    `seed ${seed}: temporary objects left`,
  );
  for (const id of readdirSync(join(dir, "backups/app")))
    assert.ok(model.has(id), `seed ${seed}: folder ${id} left without a good snapshot`);
  assert.deepEqual(
    stored.filter((f) => f.startsWith(".cairn-locks/app/")),
    [],
    `seed ${seed}: a lock left`,
  );
  return { seed, steps, dir };
}

if (import.meta.main) {
  const arg = (name: string) => {
    const at = process.argv.indexOf(`--${name}`);
    return at > 0 ? Number(process.argv[at + 1]) : undefined;
  };
  const seed = arg("seed") ?? Date.now() % 1_000_000;
  const count = arg("steps") ?? 200;
  process.stderr.write(`robustness: seed ${seed}, ${count} steps (--seed ${seed} replays it)\n`);
  robustnessRun(seed, count).then(
    ({ steps }) => process.stderr.write(`robustness: ${steps.length} steps ok\n`),
    (error: Error) => {
      process.stderr.write(`robustness: FAILED with seed ${seed}: ${error.message}\n`);
      process.exit(1);
    },
  );
}
