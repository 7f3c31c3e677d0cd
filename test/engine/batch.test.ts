import assert from "node:assert/strict";
import { test } from "node:test";
import { Batcher } from "../../src/kit/batch.ts";

test("Batcher: the first call goes alone, calls arriving meanwhile go together, each gets its own answer", async () => {
  const runs: number[][] = [];
  const batcher = new Batcher<number, number>(async (items) => {
    runs.push(items);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return items.map((n) => (n === 3 ? new Error("three refused") : n * 10));
  });
  const answers = await Promise.allSettled([1, 2, 3, 4].map((n) => batcher.add(n)));
  assert.deepEqual(runs, [[1], [2, 3, 4]]);
  assert.deepEqual(
    answers.map((a) => (a.status === "fulfilled" ? a.value : (a.reason as Error).message)),
    [10, 20, "three refused", 40],
  );
});

test("Batcher: a run that throws fails every call in it, and later calls still run", async () => {
  let fail = true;
  const batcher = new Batcher<string, string>(async (items) => {
    if (fail) throw new Error("rsync died");
    return items;
  });
  const failed = await Promise.allSettled([batcher.add("a"), batcher.add("b")]);
  assert.deepEqual(
    failed.map((a) => a.status),
    ["rejected", "rejected"],
  );
  fail = false;
  assert.equal(await batcher.add("c"), "c");
});

test("Batcher: at most `parallel` runs at once, each with at most `most` items", async () => {
  let running = 0;
  let peak = 0;
  const sizes: number[] = [];
  const batcher = new Batcher<number, number>(
    async (items) => {
      running++;
      peak = Math.max(peak, running);
      sizes.push(items.length);
      await new Promise((resolve) => setTimeout(resolve, 10));
      running--;
      return items;
    },
    2,
    3,
  );
  await Promise.all(Array.from({ length: 12 }, (_, i) => batcher.add(i)));
  assert.equal(peak, 2);
  assert.ok(
    sizes.every((size) => size <= 3),
    String(sizes),
  );
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    12,
  );
});
