/** The seeded model-based run in `npm test` (issue #14): ~200 steps; the seed is printed and replays the run. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { seedFrom } from "../helpers/random.ts";
import { robustnessRun } from "./model.ts";

test("robustness: 200 random steps keep list, restores and verify true to the model", async (t) => {
  const seed = seedFrom("CAIRN_ROBUSTNESS_SEED");
  t.diagnostic(
    `seed ${seed} (CAIRN_ROBUSTNESS_SEED=${seed}, or npm run robustness -- --seed ${seed}, replays it)`,
  );
  await robustnessRun(seed, 200);
});

test("robustness: a seed replays its run step for step", async () => {
  const first = await robustnessRun(4242, 30);
  const again = await robustnessRun(4242, 30);
  assert.deepEqual(again.steps, first.steps);
});
