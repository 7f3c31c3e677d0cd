/** --show-commands and --confirm-commands: what a run does, as shell lines; a refused write stops the run. */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { WriteOp } from "../../src/kit/contracts.ts";
import { createRegistry } from "../../src/registry.ts";
import { writeCommand } from "../../src/wrappers/show-commands.ts";
import { CLI, run } from "../helpers/env.ts";
import { configured } from "../helpers/jobs.ts";

const CONFIG = `jobs:
  app:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations: { near: { type: local, path: "./my backups" } }
`;

test("--show-commands: every program and every write, as shell lines a person could run", async () => {
  const { ws, cli } = configured(CONFIG);
  const shown = await cli(["--show-commands", "-q", "backup"]);
  assert.equal(shown.code, 0, shown.stderr);
  const lines = shown.stderr.split("\n").filter((l) => l.startsWith("+ "));
  const folder = join(ws.dir, "my backups");
  assert.ok(
    lines.some((l) => /^\+ \S*tar --create /.test(l)),
    shown.stderr,
  );
  const id = readdirSync(join(folder, "app"))[0] as string;
  assert.ok(lines.includes(`+ cat > '${join(folder, "app", id, "site.tar")}'`), shown.stderr);
  assert.ok(lines.includes(`+ cat > '${join(folder, "app", id, "manifest.json")}'`), shown.stderr);
  assert.ok(
    lines.some((l) => l.startsWith(`+ rm -f -- '${join(folder, ".cairn-locks/app/")}`)),
    shown.stderr,
  );

  const dry = await cli(["--show-commands", "-q", "backup", "--dry-run"]);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /\+ cat > '.*site\.tar'/);
  assert.equal(readdirSync(join(folder, "app")).length, 1, "the dry run stored nothing");
});

test("each destination gives the hand-made equivalent of its writes, quoted for sh", async () => {
  const registry = createRegistry();
  const at = async (options: { type: string } & Record<string, unknown>) => {
    const definition = registry.storages.get(options.type)!;
    return definition.create(definition.schema.parse(options), { name: "t", baseDir: "/" });
  };
  const cases: [Record<string, unknown> & { type: string }, string, WriteOp, string][] = [
    [
      { type: "s3", bucket: "bucket", prefix: "pre" },
      "app/x y",
      "put",
      "aws s3 cp - 's3://bucket/pre/app/x y'",
    ],
    [{ type: "s3", bucket: "bucket", prefix: "pre" }, "app/x", "delete", "aws s3 rm s3://bucket/pre/app/x"],
    [
      { type: "webdav", url: "https://dav.example/b" },
      "app/x",
      "put",
      "curl -fT - https://dav.example/b/app/x",
    ],
    [
      { type: "http", url: "https://dav.example/b" },
      "app/x",
      "delete",
      "curl -f -X DELETE https://dav.example/b/app/x",
    ],
    [
      { type: "sftp", host: "host", user: "me", port: 2222, path: "srv" },
      "app/x",
      "put",
      "curl -f -T - sftp://me@host:2222/srv/app/x",
    ],
    [
      { type: "sftp", host: "host", user: "me", path: "srv" },
      "app/x",
      "delete",
      "curl -f sftp://me@host/ -Q 'rm /srv/app/x'",
    ],
    [
      { type: "ftp", host: "host", user: "me", password: "x", path: "b", tls: "explicit" },
      "app/x",
      "delete",
      "curl -f --ssl-reqd ftp://me@host/ -Q 'DELE /b/app/x'",
    ],
    [
      { type: "azure", account: "acct", container: "cont", prefix: "pre", account_key: "eA==" },
      "app/x",
      "put",
      "az storage blob upload --account-name acct -c cont -n pre/app/x -f /dev/stdin",
    ],
    [
      { type: "swift", container: "cont", prefix: "pre", auth_url: "http://k/v3", user: "u", password: "p" },
      "app/x",
      "delete",
      "swift delete cont pre/app/x",
    ],
    [{ type: "rclone", remote: "gdrive:backups" }, "app/x", "put", "rclone rcat gdrive:backups/app/x"],
    [{ type: "local", path: "/srv/it's" }, "app/x", "delete", "rm -f -- '/srv/it'\\''s/app/x'"],
  ];
  for (const [options, key, op, expected] of cases) {
    const storage = await at(options);
    try {
      assert.equal(writeCommand(storage, key, op), expected, `${options.type} ${op}`);
    } finally {
      await storage.close?.();
    }
  }
  const plain = { ...(await at({ type: "local", path: "/x" })), handCommand: undefined };
  assert.equal(
    writeCommand(plain, "k", "put"),
    "# put k on /x",
    "a destination without one says what it writes",
  );
});

test("--confirm-commands: each write is asked on the terminal; a no stops the run, yes to all stores the snapshot", {
  timeout: 60_000,
}, async () => {
  const { ws } = configured(CONFIG);
  const folder = join(ws.dir, "my backups", "app");
  // `script` gives cairn a terminal; the answers are typed into it.
  const typed = (answers: string) =>
    run("script", ["-qec", `'${process.execPath}' '${CLI}' --confirm-commands -q backup`, "/dev/null"], {
      cwd: ws.dir,
      env: ws.env,
      input: answers,
    });
  // Yes to taking the lock, no to the first artifact, no to releasing the lock (the next run takes
  // over a lock whose process is gone).
  const refused = await typed("y\nn\nn\n");
  assert.notEqual(refused.code, 0, refused.stdout);
  assert.match(refused.stdout, /run: cat > '.*\.cairn-locks\/app\/[^'/]+\.json'/);
  assert.match(refused.stdout, /not confirmed: cat > '.*site\.tar'/);
  const complete = existsSync(folder)
    ? readdirSync(folder).filter((id) => existsSync(join(folder, id, "manifest.json")))
    : [];
  assert.deepEqual(complete, [], "nothing that looks like a good snapshot");

  const accepted = await typed("y\n".repeat(12));
  assert.equal(accepted.code, 0, accepted.stdout);
  assert.equal(readdirSync(folder).filter((id) => existsSync(join(folder, id, "manifest.json"))).length, 1);

  const noTerminal = await run(process.execPath, [CLI, "--confirm-commands", "backup"], {
    cwd: ws.dir,
    env: ws.env,
  });
  assert.equal(noTerminal.code, 2);
  assert.match(noTerminal.stderr, /--confirm-commands asks on a terminal, and stdin is not one/);
});
