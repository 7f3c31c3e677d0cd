/**
 * The README's quick start, read from README.md and run line by line as written — `cairn` on the
 * PATH, the recipient keygen printed pasted where it says age1… — so the README cannot drift from
 * what works. Only the database names are made unique (other tests share the server), and step 5
 * (sudo, systemd) is left out.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  CLI,
  dropDatabase,
  fillAwkwardDatabase,
  ROOT,
  run,
  tableContents,
  tempDir,
  uniqueName,
} from "../helpers/env.ts";

function quickStart(): { blocks: { lang: string; text: string }[]; oneOff: string[] } {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("## Documentation"));
  const blocks = [...section.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1]!,
    text: m[2]!.replace(/^ {3}/gm, ""),
  }));
  const tail = section.slice(section.indexOf("A quick run needs no config at all"));
  const oneOff = [...tail.matchAll(/`([^`]*cairn backup[^`]*)`/g)].map((m) =>
    m[1]!.replace(/\s*\n\s*/g, " "),
  );
  return { blocks, oneOff };
}

test("the README's quick start works as written", { timeout: 180_000 }, async () => {
  const dir = tempDir();
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "cairn"), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
  chmodSync(join(bin, "cairn"), 0o755);
  const env = { PATH: `${bin}:${process.env.PATH}`, CAIRN_STATE_DIR: join(dir, "state") };
  const database = uniqueName("qs_app");
  const copy = uniqueName("qs_copy");
  const names = (line: string) =>
    line
      .replace(/-U postgres app\b/g, `-U postgres ${database}`)
      .replace(/database: app\b/g, `database: ${database}`)
      .replace(/--db app\b/g, `--db ${database}`)
      .replace(/\bapp_copy\b/g, `${copy}_1`)
      .replace(/-U postgres copy\b/g, `-U postgres ${copy}_2`)
      .replace(/-d copy\b/g, `-d ${copy}_2`);
  let recipient = "";
  const sh = async (line: string) => {
    const r = await run("bash", ["-o", "pipefail", "-c", names(line).replace(/age1(…|\.\.\.)/g, recipient)], {
      cwd: dir,
      env,
    });
    assert.equal(r.code, 0, `${line}\n${r.stderr}`);
    return r;
  };
  const { blocks, oneOff } = quickStart();
  assert.ok(blocks.length >= 5, "the quick start has its steps");
  try {
    for (const block of blocks) {
      if (block.text.includes("sudo ")) continue; // step 5: systemd on this host
      if (block.lang === "yaml") {
        writeFileSync(join(dir, "cairn.yaml"), names(block.text).replace("age1...", recipient));
        await sh("cairn config check");
        continue;
      }
      for (const line of block.text.split("\n").filter((l) => l.trim())) {
        const r = await sh(line);
        if (line.includes("createdb")) fillAwkwardDatabase(database);
        if (line.includes("keygen")) recipient = r.stdout.trim();
      }
    }
    assert.match(recipient, /^age1\w{58}$/);
    assert.deepEqual(tableContents(`${copy}_1`), tableContents(database), "the restored database");
    assert.deepEqual(readdirSync(join(dir, "restored/uploads")), ["a.txt"]);
    assert.equal(readFileSync(join(dir, "restored/uploads/a.txt"), "utf8"), "hello\n");

    assert.equal(oneOff.length, 2, "the two one-off examples");
    for (const line of oneOff) await sh(line);
    assert.deepEqual(tableContents(`${copy}_2`), tableContents(database), "the one-off piped into a copy");
  } finally {
    for (const name of [database, `${copy}_1`, `${copy}_2`]) dropDatabase(name);
  }
});
