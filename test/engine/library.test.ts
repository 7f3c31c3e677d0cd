/** The library API on its own: split parts, catalog rebuild, snapshots by id, never overwriting, passphrase. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { z } from "zod";
import {
  backup,
  builtinPlugins,
  Catalog,
  configFromObject,
  createRegistry,
  defineStorage,
  list,
  rebuildCatalog,
  restore,
  StorageError,
  show,
  verify,
} from "../../src/index.ts";
import type { Storage } from "../../src/kit/contracts.ts";
import { LocalStorage } from "../../src/storages/local.ts";
import { run, tempDir } from "../helpers/env.ts";

function filesJob(dir: string, extra: Record<string, unknown> = {}) {
  return configFromObject(
    {
      state_dir: "./state",
      jobs: {
        docs: {
          sources: { docs: { type: "files", paths: ["./docs"] } },
          destinations: {
            one: { type: "local", path: "./one", template: "{hostname}/{job}/%Y" },
            two: { type: "local", path: "./two" },
          },
          ...extra,
        },
      },
    },
    { baseDir: dir, env: { CAIRN_PASSPHRASE_FOR_TEST: "not used" } },
  );
}

test("split parts, two destinations, passphrase: restore joins the parts and checks each one", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "docs"));
  const data = randomBytes(2_500_000);
  writeFileSync(join(dir, "docs/blob.bin"), data);
  const config = filesJob(dir, {
    split: "1MB",
    compression: "none",
    encryption: { age: { passphrase: "hunter2 hunter2", scrypt_work_factor: 10 } },
  });
  const report = await backup({ config });
  assert.ok(report.ok, JSON.stringify(report.jobs[0]?.error));
  const job = report.jobs[0]!;
  assert.equal(job.artifacts[0]!.objects, 3);
  assert.deepEqual(Object.keys(job.destinations), ["one", "two"]);
  const folderOne = join(dir, "one", job.destinations.one!);
  assert.match(job.destinations.one!, new RegExp(`/docs/${new Date().getFullYear()}/${job.snapshot}$`));
  assert.deepEqual(readdirSync(folderOne).sort(), [
    "docs.tar.age.part0001",
    "docs.tar.age.part0002",
    "docs.tar.age.part0003",
    "manifest.json",
  ]);

  const listed = await list({ config });
  assert.deepEqual(listed.snapshots[0]!.destinations, ["one", "two"]);

  await assert.rejects(
    restore({ config, job: "docs", toDir: join(dir, "nope") }),
    /encrypted with a passphrase/,
  );
  const target = join(dir, "restored");
  await restore({ config, job: "docs", toDir: target, passphrase: "hunter2 hunter2", destination: "two" });
  assert.deepEqual(readFileSync(join(target, "docs/blob.bin")), data);

  // A missing part is found by verify even without the passphrase.
  rmSync(join(folderOne, "docs.tar.age.part0002"));
  await assert.rejects(verify({ config, job: "docs", destination: "one" }), /does not exist/);
  const fromTwo = await verify({ config, job: "docs", destination: "two", passphrase: "hunter2 hunter2" });
  assert.equal(fromTwo.level, "full");
});

test("the catalog can be lost: rebuild recreates it from the manifests; ids resolve by prefix", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "docs"));
  writeFileSync(join(dir, "docs/a.txt"), "a");
  const config = filesJob(dir);
  const first = (await backup({ config })).jobs[0]!;
  await new Promise((r) => setTimeout(r, 1100));
  const second = (await backup({ config })).jobs[0]!;
  assert.ok(first.ok && second.ok);

  rmSync(join(dir, "state"), { recursive: true });
  const rebuilt = await rebuildCatalog({ config });
  assert.deepEqual(
    rebuilt.map((r) => [r.job, r.snapshots]),
    [["docs", 4]],
  );
  const catalog = await Catalog.open(join(dir, "state"));
  assert.deepEqual(
    [...new Set(catalog.snapshots("docs").map((s) => s.id))],
    [first.snapshot, second.snapshot],
  );
  catalog.close();

  const shownLatest = await show({ config, job: "docs" });
  assert.equal(shownLatest.id, second.snapshot);
  const shownFirst = await show({ config, job: "docs", snapshot: first.snapshot.slice(0, 22) });
  assert.equal(shownFirst.id, first.snapshot);
  await assert.rejects(show({ config, job: "docs", snapshot: "1999" }), /no snapshot 1999/);
});

test("local storage never overwrites and never shows a half-written object", async () => {
  const dir = tempDir();
  const storage: Storage = new LocalStorage(dir);
  const ctx = {
    signal: new AbortController().signal,
    logger: (await import("../../src/kit/logger.ts")).silentLogger,
    workDir: dir,
  };
  await storage.put("a/b.bin", Readable.from([Buffer.from("first")]), ctx);
  await assert.rejects(storage.put("a/b.bin", Readable.from([Buffer.from("second")]), ctx), StorageError);
  assert.equal(readFileSync(join(dir, "a/b.bin"), "utf8"), "first");

  const failing = new Readable({
    read() {
      this.push(Buffer.alloc(1000));
      this.destroy(new Error("connection lost"));
    },
  });
  await assert.rejects(storage.put("a/c.bin", failing, ctx), /connection lost/);
  assert.ok(!existsSync(join(dir, "a/c.bin")));
  assert.deepEqual(readdirSync(join(dir, "a")), ["b.bin"], "no temp file left behind");
  const keys = [];
  for await (const o of storage.list("a/", ctx)) keys.push(o.key);
  assert.deepEqual(keys, ["a/b.bin"]);
  await storage.delete("a/nothing", ctx);
  await assert.rejects(storage.get("a/nothing", ctx), /does not exist/);
  await assert.rejects(storage.put("../escape", Readable.from([]), ctx), /invalid key/);
});

test("every compression engine round-trips and is readable by the standard tools", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "docs"));
  const text = Buffer.from("a line of text that compresses well\n".repeat(100_000));
  writeFileSync(join(dir, "docs/text.txt"), text);
  for (const compression of [
    { type: "zstd", engine: "builtin", level: 7 },
    { type: "zstd", engine: "tool" },
    { type: "gzip", level: 9 },
    "none",
  ]) {
    const label = JSON.stringify(compression);
    const out = `out-${label.replace(/\W+/g, "-")}`;
    const config = configFromObject(
      {
        state_dir: "./state",
        jobs: {
          docs: {
            sources: { docs: { type: "files", paths: ["./docs"] } },
            compression,
            destinations: { d: { type: "local", path: out } },
          },
        },
      },
      { baseDir: dir },
    );
    const report = await backup({ config });
    assert.ok(report.ok, `${label}: ${JSON.stringify(report.jobs[0]?.error)}`);
    const target = join(dir, `r-${Math.random().toString(36).slice(2)}`);
    await restore({ config, job: "docs", toDir: target });
    assert.deepEqual(readFileSync(join(target, "docs/text.txt")), text, label);
    const snapshot = await show({ config, job: "docs" });
    const hint = snapshot.manifest.artifacts[0]!.restoreWithoutCairn;
    const byTools = join(dir, `t-${Math.random().toString(36).slice(2)}`);
    const manual = await run("sh", ["-c", hint.replace(/DIR/g, byTools)], {
      cwd: join(dir, out, snapshot.folder),
    });
    assert.equal(manual.code, 0, `${label}: ${manual.stderr}`);
    assert.deepEqual(readFileSync(join(byTools, "docs/text.txt")), text, `${label} via ${hint}`);
    if (compression !== "none")
      assert.ok(report.jobs[0]!.storedBytes < text.length / 10, `${label} compresses`);
  }
});

test("a destination that fails at the manifest fails the run; one that got the whole snapshot keeps it", async () => {
  const dir = tempDir();
  mkdirSync(join(dir, "docs"));
  writeFileSync(join(dir, "docs/a.txt"), "a");
  // A plugin storage, registered like the built-ins, that refuses manifests.
  const refusing = defineStorage({
    type: "refuses-manifests",
    description: "test storage",
    schema: z.object({ path: z.string() }),
    create: (options, env) => {
      const inner: Storage = new LocalStorage(join(env.baseDir, options.path));
      return {
        capabilities: inner.capabilities,
        location: inner.location,
        put: (key, body, ctx) =>
          key.endsWith("manifest.json")
            ? Promise.reject(new Error("quota exceeded"))
            : inner.put(key, body, ctx),
        get: (key, ctx) => inner.get(key, ctx),
        stat: (key, ctx) => inner.stat(key, ctx),
        list: (prefix, ctx) => inner.list(prefix, ctx),
        delete: (key, ctx) => inner.delete(key, ctx),
      };
    },
  });
  const config = configFromObject(
    {
      state_dir: "./state",
      jobs: {
        docs: {
          sources: { docs: { type: "files", paths: ["./docs"] } },
          destinations: {
            good: { type: "local", path: "./good" },
            bad: { type: "refuses-manifests", path: "./bad" },
          },
        },
      },
    },
    { baseDir: dir, registry: createRegistry([...builtinPlugins, refusing]) },
  );
  const report = await backup({ config });
  assert.equal(report.ok, false);
  assert.match(
    report.jobs[0]!.error!.message,
    /stored on good only; failed on bad: could not store the manifest: quota exceeded/,
  );
  assert.deepEqual(Object.keys(report.jobs[0]!.destinations), ["good"]);
  const listed = await list({ config });
  assert.deepEqual(
    listed.snapshots.map((s) => s.destinations),
    [["good"]],
  );
  assert.deepEqual(readdirSync(join(dir, "bad/docs")), [], "the incomplete copy is removed");
});
