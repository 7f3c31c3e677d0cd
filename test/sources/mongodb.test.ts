/**
 * The mongodb source. No MongoDB server or tools can be installed on these machines, so the
 * arguments, the secret handling and the restore path are tested against stand-in mongodump and
 * mongorestore programs; the real round trip (test/roundtrip.test.ts) runs wherever CAIRN_TEST_MONGODB_URL is set.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { cairn, tempDir } from "../helpers/env.ts";
import { workspace } from "../helpers/jobs.ts";

const MAGIC = "\\155\\342\\231\\201"; // octal: dash's printf knows no hex escapes

function standIns(dir: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin);
  // mongodump: records argv and its --config file, then writes an "archive" (magic + payload).
  writeFileSync(
    join(bin, "mongodump"),
    `#!/bin/sh
echo "$@" > "${bin}/dump.argv"
for a in "$@"; do case "$a" in --config=*) cp "\${a#--config=}" "${bin}/dump.config"; stat -c %a "\${a#--config=}" > "${bin}/dump.config.mode";; esac; done
printf '${MAGIC}'; head -c 200000 /dev/zero | tr '\\\\0' 'm'
`,
  );
  // mongorestore: records argv and what it was fed.
  writeFileSync(
    join(bin, "mongorestore"),
    `#!/bin/sh\necho "$@" > "${bin}/restore.argv"\ncat > "${bin}/restore.input"\n`,
  );
  chmodSync(join(bin, "mongodump"), 0o755);
  chmodSync(join(bin, "mongorestore"), 0o755);
  return bin;
}

test("mongodb (stand-in tools): URI and password only in a 0600 config file, archive streamed, restore renames the database", async () => {
  const ws = workspace(tempDir());
  const bin = standIns(ws.dir);
  const uri = "mongodb://app:uri-secret-33@127.0.0.1:27017/?authSource=admin";
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:\n  docs:\n    sources:\n      mongo: { type: mongodb, uri: "${uri}", password: pw-secret-44, database: shop, collection: orders, bin_dir: ${bin} }\n    encryption: { age: { recipients: [${ws.recipient}] } }\n    destinations: { local: { type: local, path: ./backups } }\n`,
  );
  const backup = await cairn(["backup", "-v"], { cwd: ws.dir, env: ws.env });
  assert.equal(backup.code, 0, backup.stderr);
  const argv = readFileSync(join(bin, "dump.argv"), "utf8");
  assert.match(argv, /^--config=\S+ --archive --quiet --db=shop --collection=orders\n$/);
  assert.ok(!argv.includes("secret"), "no secret on the command line");
  assert.equal(readFileSync(join(bin, "dump.config"), "utf8"), `uri: "${uri}"\npassword: "pw-secret-44"\n`);
  assert.equal(readFileSync(join(bin, "dump.config.mode"), "utf8").trim(), "600");
  assert.ok(!backup.stderr.includes("secret-"), "no secret in the logs");

  const verify = await cairn(["verify", "docs", "-i", ws.keyFile], { cwd: ws.dir, env: ws.env });
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stdout, /mongodump archive of 200004 bytes/);

  const restore = await cairn(["restore", "docs", "--to-database", "shop_copy", "-i", ws.keyFile], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(restore.code, 0, restore.stderr);
  assert.match(
    readFileSync(join(bin, "restore.argv"), "utf8"),
    /--archive --nsFrom=shop\.\* --nsTo=shop_copy\.\* --stopOnError/,
  );
  const fed = readFileSync(join(bin, "restore.input"));
  assert.equal(fed.length, 200004);
  assert.deepEqual([...fed.subarray(0, 4)], [0x6d, 0xe2, 0x99, 0x81]);
  assert.ok(statSync(join(bin, "restore.input")).size > 0);
});

test("mongodb (stand-in tools): output that is not an archive, or a failing mongodump, fails the backup", async () => {
  const ws = workspace(tempDir());
  const bin = join(ws.dir, "bin");
  mkdirSync(bin);
  const config = `jobs:\n  docs:\n    sources: { mongo: { type: mongodb, host: 127.0.0.1, bin_dir: ${bin} } }\n    destinations: { local: { type: local, path: ./backups } }\n`;
  writeFileSync(join(ws.dir, "cairn.yaml"), config);
  for (const [body, expected] of [
    ["echo not an archive", /not a mongodump archive/],
    [
      "echo 'Failed: error connecting to db server: no reachable servers' >&2; exit 1",
      /mongodump exited with code 1: Failed: error connecting/,
    ],
  ] as const) {
    writeFileSync(join(bin, "mongodump"), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, "mongodump"), 0o755);
    const r = await cairn(["backup"], { cwd: ws.dir, env: ws.env });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, expected);
  }
});

// The real round trip against a MongoDB server is in test/roundtrip.test.ts (runs where CAIRN_TEST_MONGODB_URL is set).
