/** The git destination: a bare repository over SSH (OpenSSH's sshd on 127.0.0.1, an unprivileged login). */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { silentLogger } from "../../src/core/logger.ts";
import { gitStorage } from "../../src/storages/git.ts";
import type { Storage } from "../../src/types.ts";
import {
  ensureBackupUser,
  forBackupUser,
  knownHostsForPort,
  ownedByBackupUser,
} from "../helpers/backup-user.ts";
import { hasProgram, tempDir } from "../helpers/env.ts";
import { startSshd } from "../helpers/sshd.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip = hasProgram("git") && hasProgram("/usr/sbin/sshd") ? false : "needs git and openssh-server";
if (!skip) ensureBackupUser();
const sshd = skip ? undefined : forBackupUser(await startSshd());

/** A new empty bare repository on the server, and its ssh:// URL through `port`. */
function bareRepository(name: string): (port?: number) => string {
  const path = join(sshd!.home, `${name}.git`);
  execFileSync("git", ["init", "-q", "--bare", "-b", "main", path]);
  ownedByBackupUser(path);
  return (port = sshd!.port) => `ssh://${sshd!.user}@127.0.0.1:${port}${path}`;
}

const open = (url: string, overrides: Record<string, unknown> = {}): Storage =>
  gitStorage.create(
    gitStorage.schema.parse({
      url,
      path: "backups",
      work_dir: join(tempDir(), "clone"),
      private_key_file: sshd!.clientKey,
      known_hosts: sshd!.knownHosts,
      ...overrides,
    }),
    { name: "git-test", baseDir: "/" },
  ) as Storage;

const ctx = () => ({ signal: new AbortController().signal, logger: silentLogger, workDir: tempDir() });

const conformanceRepo = skip ? undefined : bareRepository("conformance");
conformance(
  "git (bare repository over OpenSSH)",
  async () => ({
    storage: open(conformanceRepo!()),
    withWrongCredentials: () => open(conformanceRepo!().replace(sshd!.user, "nobody")),
    server: {
      port: sshd!.port,
      via: (port) => open(conformanceRepo!(port), { known_hosts: knownHostsForPort(sshd!, port) }),
    },
    parallelCleanup: true,
  }),
  skip,
);

test("git: each publish is a commit on the remote branch; a deleted object stays in history", {
  skip,
}, async () => {
  const url = bareRepository("history")();
  const storage = open(url);
  const c = ctx();
  await Promise.all(
    ["a", "b", "c"].map((name) =>
      storage.put(`snap/${name}.sql`, Readable.from([Buffer.from(`${name}\n`)]), c),
    ),
  );
  await storage.delete("snap/b.sql", c);
  const remote = join(sshd!.home, "history.git");
  const tree = execFileSync(
    "git",
    ["-c", "safe.directory=*", "-C", remote, "ls-tree", "-r", "--name-only", "main"],
    {
      encoding: "utf8",
    },
  );
  assert.deepEqual(tree.trim().split("\n"), ["backups/snap/a.sql", "backups/snap/c.sql"]);
  const log = execFileSync("git", ["-c", "safe.directory=*", "-C", remote, "log", "--format=%s", "main"], {
    encoding: "utf8",
  });
  const commits = log.trim().split("\n");
  assert.ok(
    commits.length >= 2 && commits.length <= 4,
    `three puts and a delete in at most 4 commits: ${log}`,
  );
  const old = execFileSync(
    "git",
    ["-c", "safe.directory=*", "-C", remote, "show", "main~1:backups/snap/b.sql"],
    { encoding: "utf8" },
  );
  assert.equal(old, "b\n");
  // A second host's clone sees what the first pushed, and both can publish.
  const other = open(url);
  assert.equal((await other.stat("snap/a.sql", c))?.size, 2);
  await other.put("snap/d.sql", Readable.from([Buffer.from("d\n")]), c);
  await storage.put("snap/e.sql", Readable.from([Buffer.from("e\n")]), c);
  const after = execFileSync(
    "git",
    ["-c", "safe.directory=*", "-C", remote, "ls-tree", "-r", "--name-only", "main"],
    {
      encoding: "utf8",
    },
  );
  assert.deepEqual(after.trim().split("\n"), [
    "backups/snap/a.sql",
    "backups/snap/c.sql",
    "backups/snap/d.sql",
    "backups/snap/e.sql",
  ]);
});

test("git: backup, list, verify and restore from the CLI", { skip }, async () => {
  await cliRoundTrip(
    `type: git
url: ${bareRepository("e2e")()}
private_key_file: ${sshd!.clientKey}
known_hosts: ${sshd!.knownHosts}
work_dir: ${join(tempDir(), "clone")}`,
  );
});
