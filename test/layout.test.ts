/**
 * The layout is the architecture: the kit (src/kit) is what plugins and the engine are made of and
 * imports nothing of cairn; plugins (sources, storages, transforms, notifiers) import the kit, the
 * age library and their own folder, never the engine or each other; only the registry knows the
 * built-in plugins. A new import that breaks this fails here, naming the file and the import.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { ROOT } from "./helpers/env.ts";

const SRC = join(ROOT, "src");
const PLUGIN_FOLDERS = ["sources", "storages", "transforms", "notifiers"];

interface Import {
  from: string;
  to: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(dir, entry.name))
      : entry.name.endsWith(".ts")
        ? [join(dir, entry.name)]
        : [],
  );
}

/** Every relative import in src, static or dynamic, type-only or not, as paths relative to src. */
function imports(): Import[] {
  return sourceFiles(SRC).flatMap((file) =>
    [...readFileSync(file, "utf8").matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) => ({
      from: relative(SRC, file),
      to: relative(SRC, resolve(dirname(file), m[1]!)),
    })),
  );
}

const folderOf = (path: string) => (path.includes("/") ? path.split("/")[0]! : path.replace(/\.ts$/, ""));

function violations(rule: (i: Import) => boolean): string[] {
  return imports()
    .filter(rule)
    .map((i) => `${i.from} imports ${i.to}`);
}

test("the kit imports nothing of cairn but itself", () => {
  assert.deepEqual(
    violations((i) => folderOf(i.from) === "kit" && folderOf(i.to) !== "kit"),
    [],
  );
});

test("the age library imports only itself and the kit", () => {
  assert.deepEqual(
    violations((i) => folderOf(i.from) === "age" && !["age", "kit"].includes(folderOf(i.to))),
    [],
  );
});

test("plugins import the kit, age and their own folder: never the engine, never another plugin folder", () => {
  assert.deepEqual(
    violations(
      (i) =>
        PLUGIN_FOLDERS.includes(folderOf(i.from)) &&
        ![folderOf(i.from), "kit", "age"].includes(folderOf(i.to)),
    ),
    [],
  );
});

test("only the registry knows the built-in plugins, and never their private helpers", () => {
  assert.deepEqual(
    violations(
      (i) =>
        !PLUGIN_FOLDERS.includes(folderOf(i.from)) &&
        PLUGIN_FOLDERS.includes(folderOf(i.to)) &&
        (i.from !== "registry.ts" || i.to.split("/").pop()!.startsWith("_")),
    ),
    [],
  );
});

test("nothing in cairn imports the test kit; the public plugin API is the kit and the module contract", () => {
  assert.deepEqual(
    violations((i) => folderOf(i.to) === "testing" && folderOf(i.from) !== "testing"),
    [],
  );
  assert.deepEqual(
    violations(
      (i) =>
        i.from === "plugin.ts" &&
        !["kit", "plugins/module.ts", "events/events.ts"].some((p) => i.to.startsWith(p)),
    ),
    [],
  );
});

test("the rules see the imports (a guard that reads nothing passes everything)", () => {
  const all = imports();
  assert.ok(all.length > 300, `${all.length} imports found`);
  assert.ok(all.some((i) => i.from === "registry.ts" && i.to === "sources/postgres.ts"));
  assert.ok(all.some((i) => i.from === "sources/postgres.ts" && i.to === "kit/exec.ts"));
});
