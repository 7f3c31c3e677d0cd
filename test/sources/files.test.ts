/** The files source on real folders: metadata kept, globs honoured, and restores that cannot escape their target. */
import assert from "node:assert/strict";
import {
  chmodSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import * as tar from "tar-stream";
import { createLogger } from "../../src/kit/logger.ts";
import { extractTar } from "../../src/sources/_tar.ts";
import { cairn, run, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

const quiet = createLogger({ level: "error", write: () => {} });

function tree(root: string): void {
  mkdirSync(join(root, "site/a/b"), { recursive: true });
  mkdirSync(join(root, "site/empty"));
  mkdirSync(join(root, "site/node_modules/x"), { recursive: true });
  writeFileSync(join(root, "site/index.html"), "<h1>hi</h1>");
  writeFileSync(join(root, "site/a/b/data.json"), JSON.stringify({ deep: true }));
  writeFileSync(join(root, "site/a/script.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(join(root, "site/a/script.sh"), 0o750);
  writeFileSync(join(root, "site/a/secret.key"), "k");
  chmodSync(join(root, "site/a/secret.key"), 0o600);
  writeFileSync(join(root, "site/node_modules/x/index.js"), "x");
  writeFileSync(join(root, "site/big.bin"), Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a));
  symlinkSync("a/b/data.json", join(root, "site/data-link"));
  linkSync(join(root, "site/a/b/data.json"), join(root, "site/a/hard-link.json"));
  symlinkSync("/nonexistent/target", join(root, "site/dangling"));
  utimesSync(
    join(root, "site/index.html"),
    new Date("2020-02-29T12:00:00Z"),
    new Date("2020-02-29T12:00:00Z"),
  );
  mkdirSync(join(root, "etc"));
  writeFileSync(join(root, "etc/app.conf"), "x=1\n");
}

for (const engine of ["tar", "builtin"]) {
  test(`${engine} writer: a files backup restores the same bytes, modes, mtimes, symlinks, hard links and empty folders (checked against tar itself)`, async () => {
    const ws = workspace(tempDir());
    tree(ws.dir);
    writeFileSync(
      join(ws.dir, "cairn.yaml"),
      `jobs:
  www:
    sources:
      files: { type: files, paths: [./site, ./etc], exclude: ["node_modules"], engine: ${engine} }
    compression: { type: zstd, level: 5 }
    encryption: { age: { recipients: [${ws.recipient}] } }
    destinations:
      here: { type: local, path: ./backups }
`,
    );
    const backup = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
    assert.equal(backup.code, 0, backup.stderr);
    const target = join(ws.dir, "restored");
    const restore = await cairn(["restore", "www", "--to-dir", target, "-i", ws.keyFile], {
      cwd: ws.dir,
      env: ws.env,
    });
    assert.equal(restore.code, 0, restore.stderr);

    for (const file of [
      "site/index.html",
      "site/a/b/data.json",
      "site/a/script.sh",
      "site/big.bin",
      "etc/app.conf",
    ])
      assert.deepEqual(readFileSync(join(target, file)), readFileSync(join(ws.dir, file)), file);
    assert.equal(statSync(join(target, "site/a/script.sh")).mode & 0o777, 0o750);
    assert.equal(statSync(join(target, "site/a/secret.key")).mode & 0o777, 0o600);
    assert.equal(statSync(join(target, "site/index.html")).mtime.toISOString(), "2020-02-29T12:00:00.000Z");
    assert.equal(readlinkSync(join(target, "site/data-link")), "a/b/data.json");
    assert.equal(readlinkSync(join(target, "site/dangling")), "/nonexistent/target");
    assert.ok(statSync(join(target, "site/empty")).isDirectory());
    assert.ok(!existsSync(join(target, "site/node_modules")), "excluded folder left out");

    // The standard tools read the same archive: age + zstd + tar, as the manifest's hint says.
    const show = JSON.parse((await cairn(["show", "www", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
    const hint: string = show.manifest.artifacts[0].restoreWithoutCairn;
    assert.equal(
      hint,
      "mkdir -p DIR && cat files.tar.zst.age | age -d -i key.txt | zstd -d | tar -x -p -C DIR",
    );
    const folder = join(ws.dir, "backups", show.folder);
    const byTar = join(ws.dir, "by-tar");
    const shell = hint.replace(/DIR/g, byTar).replace("key.txt", ws.keyFile);
    const manual = await run("sh", ["-c", shell], { cwd: folder });
    assert.equal(manual.code, 0, manual.stderr);
    assert.deepEqual(readFileSync(join(byTar, "site/big.bin")), readFileSync(join(ws.dir, "site/big.bin")));
    assert.equal(readlinkSync(join(byTar, "site/data-link")), "a/b/data.json");
    assert.equal(show.manifest.artifacts[0].meta.writer, engine === "tar" ? "GNU tar" : "cairn");
  });
}

test("include globs keep only matching files; a restore refuses a non-empty target", async () => {
  const ws = workspace(tempDir());
  tree(ws.dir);
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  conf:
    sources:
      json: { type: files, paths: [./site], include: ["**/*.json", "*.html"] }
    compression: none
    destinations:
      here: { type: local, path: ./backups }
`,
  );
  assert.equal((await cairn(["backup"], { cwd: ws.dir, env: ws.env })).code, 0);
  const target = join(ws.dir, "r");
  assert.equal((await cairn(["restore", "conf", "--to-dir", target], { cwd: ws.dir, env: ws.env })).code, 0);
  assert.ok(existsSync(join(target, "site/a/b/data.json")));
  assert.ok(existsSync(join(target, "site/index.html")));
  assert.ok(!existsSync(join(target, "site/a/script.sh")));
  assert.ok(!existsSync(join(target, "site/big.bin")));
  const again = await cairn(["restore", "conf", "--to-dir", target], { cwd: ws.dir, env: ws.env });
  assert.equal(again.code, 1);
  assert.match(again.stderr, /is not empty/);
});

async function archive(
  entries: { header: tar.Header | (Partial<tar.Header> & { name: string }); body?: string }[],
): Promise<Buffer> {
  const pack = tar.pack();
  for (const { header, body } of entries) pack.entry(header, body ?? "");
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

test("restore never writes outside its target: .., absolute paths and symlink escapes are refused", async () => {
  const dir = tempDir();
  const outside = join(dir, "outside");
  mkdirSync(outside);
  const cases: [string, Parameters<typeof archive>[0], RegExp][] = [
    ["dot-dot", [{ header: { name: "ok/../../outside/evil", type: "file" }, body: "x" }], /climbs out/],
    ["absolute", [{ header: { name: join(outside, "evil"), type: "file" }, body: "x" }], /absolute path/],
    [
      "through a symlink",
      [
        { header: { name: "link", type: "symlink", linkname: outside } },
        { header: { name: "link/evil", type: "file" }, body: "x" },
      ],
      /through the symlink/,
    ],
    ["hard link out", [{ header: { name: "hard", type: "link", linkname: "../outside/x" } }], /climbs out/],
  ];
  for (const [name, entries, expected] of cases) {
    const target = join(dir, `target-${name.replace(/\W/g, "_")}`);
    await assert.rejects(extractTar(Readable.from([await archive(entries)]), target, quiet), expected, name);
    assert.ok(!existsSync(join(outside, "evil")), `${name}: wrote outside`);
    assert.ok(!existsSync(target), `${name}: a failed restore leaves no target behind`);
  }
  const leftovers = (await import("node:fs")).readdirSync(dir).filter((n) => n.includes("cairn-restore"));
  assert.deepEqual(leftovers, [], "staging folders are removed");
  assert.ok(lstatSync(outside).isDirectory());
});

for (const engine of ["tar", "builtin"]) {
  test(`${engine} writer: a missing path fails the backup with its name, and nothing is recorded`, async () => {
    const ws = workspace(tempDir());
    mkdirSync(join(ws.dir, "here"));
    writeFileSync(
      join(ws.dir, "cairn.yaml"),
      `jobs:\n  x:\n    sources: { f: { type: files, paths: [./here, ./gone], engine: ${engine} } }\n    destinations: { d: { type: local, path: ./b } }\n`,
    );
    const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`cannot read ${join(ws.dir, "gone")}`));
    const listed = JSON.parse((await cairn(["list", "--json"], { cwd: ws.dir, env: ws.env })).stdout);
    assert.equal(listed.snapshots.length, 0);
  });
}
