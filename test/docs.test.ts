/** The generated reference and JSON Schema match the schemas in the code (run `npm run docs` after a change). */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ENTRIES, entryFile, jsonSchema, reference } from "../scripts/docs.ts";
import { ROOT } from "./helpers/env.ts";

test("docs/reference.md and docs/cairn.schema.json are up to date", () => {
  assert.equal(readFileSync(join(ROOT, "docs/reference.md"), "utf8"), reference(), "run: npm run docs");
  assert.equal(readFileSync(join(ROOT, "docs/cairn.schema.json"), "utf8"), jsonSchema(), "run: npm run docs");
});

test("entry/library.js, plugin.js and testing.js export every name of their modules", async () => {
  for (const entry of ENTRIES)
    assert.equal(
      readFileSync(join(ROOT, entry.file), "utf8"),
      await entryFile(entry.module),
      `run: npm run docs (${entry.file})`,
    );
});

test("every doc page the README links to exists", () => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const links = [...readme.matchAll(/\]\((docs\/[^)#]+)/g)].map((m) => m[1]!);
  assert.ok(links.length >= 8, "the README links to the docs");
  for (const link of links) assert.ok(existsSync(join(ROOT, link)), link);
});
