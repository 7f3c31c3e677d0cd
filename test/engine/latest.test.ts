/**
 * "latest" is the newest snapshot by its start time, not by its id: two backups in the same second
 * get ids that differ only in a random suffix (found by a flaky MySQL point-in-time test, which
 * replayed the binary logs of the older snapshot).
 */
import assert from "node:assert/strict";
import { mock, test } from "node:test";
import { backup, list, show } from "../../src/index.ts";
import { localFilesJob } from "../helpers/jobs.ts";

test("two backups in the same second: latest is the one that started last", async () => {
  let reversed = 0;
  for (let attempt = 0; attempt < 30 && reversed < 2; attempt++) {
    const { config } = localFilesJob();
    const second = Date.UTC(2026, 0, 1, 0, 0, 0);
    mock.timers.enable({ apis: ["Date"], now: second + 100 });
    try {
      const first = (await backup({ config })).jobs[0]!.snapshot!;
      mock.timers.setTime(second + 600);
      const later = (await backup({ config })).jobs[0]!.snapshot!;
      assert.equal(first.slice(0, 20), later.slice(0, 20), "both in the same second");
      if (later > first) continue; // the ids happen to sort in time order: try again
      reversed++;
      assert.equal((await show({ config, job: "app" })).manifest.id, later, "latest is the later one");
      const ids = (await list({ config, job: "app" })).snapshots.map((s) => s.id);
      assert.deepEqual(ids, [first, later], "listed oldest first, by time");
    } finally {
      mock.timers.reset();
    }
  }
  assert.ok(reversed > 0, "no pair of ids came out of time order in 30 tries");
});
