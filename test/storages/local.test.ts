/** The local destination passes the conformance suite on the machine's own disk. */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import { LocalStorage } from "../../src/storages/local.ts";
import { tempDir } from "../helpers/env.ts";
import { conformance } from "./conformance.ts";

conformance("local", async () => ({ storage: new LocalStorage(tempDir()) }));

test("local: a put into a folder another process empties (and so removes) at that moment succeeds (found by the robustness run)", async () => {
  const storage = new LocalStorage(tempDir());
  for (let round = 0; round < 300; round++) {
    await storage.put(`locks/a-${round}`, Readable.from([Buffer.from("a")]));
    await Promise.all([
      storage.delete(`locks/a-${round}`),
      storage.put(`locks/b-${round}`, Readable.from([Buffer.from("b")])),
    ]);
    assert.equal((await storage.stat(`locks/b-${round}`))?.size, 1, `round ${round}`);
    await storage.delete(`locks/b-${round}`);
  }
});
