/**
 * A job is resolved once: a backup with two destinations and a prune after it opens each
 * destination's storage once (the prune goes through the backup's), and the plan says what the
 * config says (retention and frequency fall back to the job's).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { backup } from "../../src/engine/backup.ts";
import { planOf } from "../../src/engine/plan.ts";
import { defineStorage } from "../../src/kit/contracts.ts";
import { builtinPlugins, createRegistry } from "../../src/registry.ts";
import { localStorage } from "../../src/storages/local.ts";
import { localFilesJob } from "../helpers/jobs.ts";

function countingConfig() {
  const opened: string[] = [];
  const counting = defineStorage({
    type: "counted",
    description: "a local folder that counts how often it is opened",
    schema: localStorage.schema,
    create(options, env) {
      opened.push(env.name);
      return localStorage.create(options, env);
    },
  });
  const { config } = localFilesJob(
    {
      retention: { keep_last: 1, prune: "after_backup" },
      frequency: "daily",
      destinations: {
        one: { type: "counted", path: "./one" },
        two: { type: "counted", path: "./two", retention: { keep_last: 2, prune: "after_backup" } },
      },
    },
    createRegistry([...builtinPlugins, counting]),
  );
  return { config, opened };
}

test("a backup with a prune after it opens each destination once", async () => {
  const { config, opened } = countingConfig();
  for (let run = 0; run < 2; run++) {
    opened.length = 0;
    const report = await backup({ config, force: true });
    assert.ok(report.ok, JSON.stringify(report.jobs[0]?.error));
    assert.equal(report.jobs[0]!.pruned?.length, 2, "both destinations were pruned");
    assert.deepEqual(opened.sort(), ["one", "two"]);
  }
});

test("the plan holds each destination's retention and frequency, the job's where it has none", () => {
  const { config } = countingConfig();
  const plan = planOf(config, "app");
  assert.equal(planOf(config, "app"), plan, "resolved once per config");
  const [one, two] = plan.destinations;
  assert.equal(one!.retention?.keep_last, 1);
  assert.equal(two!.retention?.keep_last, 2);
  assert.equal(one!.frequency, "daily");
  assert.equal(one!.own.type, "counted");
  assert.equal("retention" in one!.own, false, "common options are split from the storage's own");
  assert.deepEqual(
    plan.sources.map((s) => s.name),
    ["files"],
  );
  assert.throws(() => planOf(config, "nope"), /no job named "nope".*/);
});
