/**
 * The .deb on a bare Debian: builds the single executable and the package, makes a minimal
 * Debian with debootstrap (no Node.js in it), installs the package with dpkg, and inside it backs
 * up a folder and a SQLite file, lists, verifies and restores them; the restored bytes and rows
 * equal the originals. Needs root, debootstrap and a Debian mirror; part of `npm test` (skipped, saying
 * why, without them); `npm run test:system` runs the system tests alone. About a minute.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, test } from "node:test";
import { buildDeb } from "../../scripts/build-deb.ts";

const MIRROR = process.env.CAIRN_DEBIAN_MIRROR ?? "http://deb.debian.org/debian";
const SUITE = process.env.CAIRN_DEBIAN_SUITE ?? "bookworm";
const cannot =
  process.getuid?.() !== 0
    ? "needs root (debootstrap and chroot)"
    : spawnSync("sh", ["-c", "command -v debootstrap"]).status !== 0
      ? "debootstrap is not installed (.ci/system-deps installs it)"
      : undefined;

const work = mkdtempSync(join(tmpdir(), "cairn-debian-"));
const root = join(work, "root");
after(() => rmSync(work, { recursive: true, force: true }));

function sh(command: string, args: string[], input?: string) {
  const r = spawnSync(command, args, { encoding: "utf8", input, maxBuffer: 64 * 2 ** 20 });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** A command inside the minimal Debian, with its own /proc and a bare environment. */
function inside(line: string) {
  return sh("unshare", [
    "--mount",
    "--pid",
    "--fork",
    "sh",
    "-c",
    `mount -t proc proc '${root}/proc' && exec chroot '${root}' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 /bin/sh -c '${line.replaceAll("'", "'\\''")}'`,
  ]);
}

function filesUnder(dir: string): Map<string, Buffer> {
  const found = new Map<string, Buffer>();
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else found.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return found;
}

const rows = (file: string) => {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT id, name, data FROM items ORDER BY id").all();
  } finally {
    db.close();
  }
};

let deb = "";
before(async () => {
  if (cannot) return;
  deb = await buildDeb();
  const made = sh("debootstrap", ["--variant=minbase", SUITE, root, MIRROR]);
  assert.equal(made.code, 0, `debootstrap ${SUITE} from ${MIRROR}: ${made.stderr || made.stdout}`);
});

test("the .deb installs on a bare Debian without Node.js and backs up, verifies and restores there", {
  skip: cannot,
}, () => {
  assert.notEqual(inside("command -v node nodejs").code, 0, "the minimal Debian has no Node.js");
  writeFileSync(join(root, "tmp/cairn.deb"), readFileSync(deb));
  const installed = inside("dpkg -i /tmp/cairn.deb");
  assert.equal(installed.code, 0, installed.stderr);
  for (const path of [
    "usr/bin/cairn",
    "usr/share/man/man1/cairn.1.gz",
    "usr/share/man/man1/cairn-backup.1.gz",
    "usr/share/bash-completion/completions/cairn",
    "etc/cairn/cairn.example.yaml",
    "lib/systemd/system/cairn@.timer",
  ])
    assert.ok(existsSync(join(root, path)), path);

  const data = join(root, "srv/app");
  mkdirSync(join(data, "uploads/2026/ünï"), { recursive: true });
  writeFileSync(
    join(data, "uploads/2026/ünï/photo.bin"),
    Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251)),
  );
  writeFileSync(join(data, "uploads/readme.txt"), "hello from a bare Debian\n");
  const db = new DatabaseSync(join(data, "app.db"));
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, data BLOB)");
  const insert = db.prepare("INSERT INTO items (name, data) VALUES (?, ?)");
  for (let i = 0; i < 500; i++) insert.run(`item ${i} ✓`, Buffer.from([i % 256, 0, 255]));
  db.close();

  const keygen = inside("cairn keygen -o /root/key.txt");
  assert.equal(keygen.code, 0, keygen.stderr);
  const recipient = keygen.stdout.trim();
  writeFileSync(
    join(root, "etc/cairn/cairn.yaml"),
    `jobs:
  site:
    schedule: "30 2 * * *"
    sources:
      files: { type: files, paths: [/srv/app/uploads] }
      db: { type: sqlite, path: /srv/app/app.db }
    encryption: { age: { recipients: [${recipient}] } }
    destinations:
      local: { type: local, path: /var/backups/cairn }
`,
  );
  const cairn = (args: string) => inside(`cairn -c /etc/cairn/cairn.yaml ${args}`);
  const backup = cairn("backup");
  assert.equal(backup.code, 0, backup.stderr);
  const listed = cairn("list --json");
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    JSON.parse(listed.stdout).snapshots[0].artifacts.map((a: { source: string }) => a.source),
    ["files", "db"],
  );
  const verified = cairn("verify site -i /root/key.txt");
  assert.equal(verified.code, 0, verified.stderr);
  const files = cairn("restore site --source files --to-dir /restore/files -i /root/key.txt");
  assert.equal(files.code, 0, files.stderr);
  const sqlite = cairn("restore site --source db --to-dir /restore/db -i /root/key.txt");
  assert.equal(sqlite.code, 0, sqlite.stderr);

  // Each path becomes a top-level folder of the archive: /srv/app/uploads → uploads/.
  const restoredFiles = join(root, "restore/files/uploads");
  assert.deepEqual(
    filesUnder(restoredFiles),
    filesUnder(join(data, "uploads")),
    "the files come back byte for byte",
  );
  const restoredDb = readdirSync(join(root, "restore/db")).find((name) =>
    statSync(join(root, "restore/db", name)).isFile(),
  );
  assert.ok(restoredDb, "the SQLite file is restored");
  assert.deepEqual(rows(join(root, "restore/db", restoredDb)), rows(join(data, "app.db")));

  const units = cairn("schedule show");
  assert.equal(units.code, 0, units.stderr);
  assert.match(units.stdout, /ExecStart=\/usr\/bin\/cairn /, "timers run the installed binary");
  const completion = inside("cairn completion bash");
  assert.match(completion.stdout, /complete -o default -F _cairn cairn/);

  // A plugin file works with the installed executable too (it has no Node to import cairn from).
  mkdirSync(join(root, "etc/cairn/plugins"), { recursive: true });
  writeFileSync(
    join(root, "etc/cairn/plugins/dir-store.mjs"),
    readFileSync(join(import.meta.dirname, "../fixtures/plugins/dir-store.mjs")),
  );
  writeFileSync(
    join(root, "etc/cairn/plugin.yaml"),
    "plugins: [./plugins/dir-store.mjs]\njobs:\n  hello:\n    sources: { hi: { type: greeting, text: from a plugin } }\n    encryption: none\n    destinations: { store: { type: dirstore, root: /var/backups/dirstore } }\n",
  );
  const withPlugin = inside(
    "cairn -c /etc/cairn/plugin.yaml backup && cairn -c /etc/cairn/plugin.yaml restore hello --to-dir /restore/plugin",
  );
  assert.equal(withPlugin.code, 0, withPlugin.stderr);
  assert.equal(readFileSync(join(root, "restore/plugin/hi.txt"), "utf8"), "from a plugin");
});
