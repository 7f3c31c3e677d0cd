/**
 * Events around every action, each with one session id that is also in every log line of the
 * action and in its hooks ($CAIRN_SESSION_ID); a handler that throws is logged and changes nothing.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, test } from "node:test";
import { backup, createLogger, type EventName, events, prune, restore } from "../../src/index.ts";
import { localFilesJob } from "../helpers/jobs.ts";

const stops: (() => void)[] = [];
afterEach(() => {
  for (const stop of stops.splice(0)) stop();
});

/** Every event of the given names, in the order they fire. */
function record(names: EventName[]) {
  const seen: { name: EventName; payload: Record<string, unknown> }[] = [];
  for (const name of names)
    stops.push(
      events.on(
        name,
        (payload) => void seen.push({ name, payload: payload as unknown as Record<string, unknown> }),
      ),
    );
  return seen;
}

function setup() {
  const lines: string[] = [];
  const logger = createLogger({ format: "json", level: "debug", write: (line) => void lines.push(line) });
  const { dir, config } = localFilesJob({
    hooks: { before: ['echo "$CAIRN_SESSION_ID" > session.txt'] },
    retention: { keep_last: 1, min_age: "0s", prune: "after_backup" },
  });
  return { dir, config, logger, lines };
}

test("a backup: before_backup, the prune after it with its deletions, on_backup — one session", async () => {
  const { dir, config, logger, lines } = setup();
  assert.equal((await backup({ config, logger })).ok, true);
  const seen = record([
    "before_backup",
    "on_backup",
    "before_prune",
    "on_prune",
    "before_delete",
    "on_delete",
  ]);
  lines.length = 0;
  const report = await backup({ config, logger });
  assert.equal(report.ok, true);
  assert.deepEqual(
    seen.map((e) => e.name),
    ["before_backup", "before_prune", "before_delete", "on_delete", "on_prune", "on_backup"],
  );
  const session = seen[0]!.payload.session as string;
  assert.match(session, /^[0-9a-f-]{36}$/);
  assert.ok(seen.every((e) => e.payload.session === session && e.payload.job === "app"));
  const onBackup = seen.at(-1)!.payload as { result: { snapshot: string; ok: boolean } };
  assert.equal(onBackup.result.ok, true);
  assert.equal(onBackup.result.snapshot, report.jobs[0]!.snapshot);
  assert.equal((seen[2]!.payload as { destination: string }).destination, "here");
  assert.equal(readFileSync(join(dir, "session.txt"), "utf8").trim(), session, "the hook saw the same id");
  const parsed = lines.map((line) => JSON.parse(line) as { session?: string });
  assert.ok(parsed.length > 3);
  assert.ok(
    parsed.every((line) => line.session === session),
    "every log line of the action has the id",
  );
});

test("a restore: before_restore and on_restore with the result, or with the error", async () => {
  const { dir, config, logger } = setup();
  await backup({ config, logger });
  const seen = record(["before_restore", "on_restore"]);
  const result = await restore({ config, logger, job: "app", toDir: join(dir, "r") });
  assert.deepEqual(
    seen.map((e) => e.name),
    ["before_restore", "on_restore"],
  );
  assert.equal(seen[0]!.payload.snapshot, "latest");
  assert.equal(seen[1]!.payload.snapshot, result.snapshot);
  assert.deepEqual(seen[1]!.payload.result, result);
  assert.equal(seen[0]!.payload.session, seen[1]!.payload.session);

  seen.length = 0;
  await assert.rejects(restore({ config, logger, job: "app", toDir: join(dir, "r") }), /not empty/);
  assert.deepEqual(
    seen.map((e) => e.name),
    ["before_restore", "on_restore"],
  );
  assert.match(String((seen[1]!.payload.error as Error).message), /not empty/);
});

test("a handler that throws is logged and changes nothing", async () => {
  const { config, logger, lines } = setup();
  stops.push(
    events.on("before_backup", () => {
      throw new Error("handler bug");
    }),
  );
  stops.push(events.on("on_prune", async () => Promise.reject(new Error("async handler bug"))));
  const report = await backup({ config, logger });
  assert.equal(report.ok, true);
  const warnings = lines.map((l) => JSON.parse(l)).filter((l) => l.level === "warn");
  assert.ok(
    warnings.some((w) => /before_backup event handler failed/.test(w.msg) && w.error === "handler bug"),
  );
  assert.ok(
    warnings.some((w) => /on_prune event handler failed/.test(w.msg) && w.error === "async handler bug"),
  );
  const pruned = await prune({ config, logger });
  assert.equal(pruned.destinations.length, 1);
});
