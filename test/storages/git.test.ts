/** The git destination: a bare repository over SSH (OpenSSH's sshd on 127.0.0.1, an unprivileged login). */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { gitlabProjectOf } from "../../src/storages/_gitlab.ts";
import { gitStorage } from "../../src/storages/git.ts";
import { testContext } from "../../src/testing/index.ts";
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

const ctx = () => testContext();

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

test("git: a put of a name the branch has fails alone; the others of its group commit are pushed", {
  skip,
}, async () => {
  const url = bareRepository("refused-alone")();
  const storage = open(url);
  const c = ctx();
  await storage.put("snap/taken.sql", Readable.from([Buffer.from("original\n")]), c);
  const outcomes = await Promise.allSettled(
    ["taken", "new-1", "new-2"].map((name) =>
      storage.put(`snap/${name}.sql`, Readable.from([Buffer.from(`${name} again\n`)]), c),
    ),
  );
  assert.equal(outcomes[0]!.status, "rejected");
  assert.match(String((outcomes[0] as PromiseRejectedResult).reason), /already exists/);
  assert.deepEqual(
    outcomes.slice(1).map((o) => o.status),
    ["fulfilled", "fulfilled"],
  );
  const remote = join(sshd!.home, "refused-alone.git");
  const show = (path: string) =>
    execFileSync("git", ["-c", "safe.directory=*", "-C", remote, "show", `main:backups/${path}`], {
      encoding: "utf8",
    });
  assert.equal(show("snap/taken.sql"), "original\n");
  assert.equal(show("snap/new-1.sql"), "new-1 again\n");
  assert.equal(show("snap/new-2.sql"), "new-2 again\n");
  await storage.close?.();
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

/**
 * A stand-in for GitLab's REST API (v4) — the three calls cairn makes, answered as GitLab documents
 * them; creating a project makes the bare repository on the SSH server. No GitLab server can run
 * here: this proves cairn's side of the exchange and the push that follows, not GitLab itself.
 */
async function startGitlabApi(token: string) {
  const calls: { method: string; path: string; body: Record<string, unknown> }[] = [];
  const projects = new Set<string>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const path = decodeURIComponent(req.url ?? "");
      const body = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>)
        : {};
      calls.push({ method: req.method ?? "", path, body });
      const answer = (status: number, json: unknown) => {
        res.writeHead(status, { "content-type": "application/json" });
        res.end(JSON.stringify(json));
      };
      if (req.headers["private-token"] !== token) return answer(401, { message: "401 Unauthorized" });
      const project = /^\/api\/v4\/projects\/(.+)$/.exec(path)?.[1];
      if (req.method === "GET" && project)
        return projects.has(project)
          ? answer(200, { id: 1 })
          : answer(404, { message: "404 Project Not Found" });
      const namespace = /^\/api\/v4\/namespaces\/(.+)$/.exec(path)?.[1];
      if (req.method === "GET" && namespace) return answer(200, { id: 7, full_path: namespace });
      if (req.method === "POST" && path === "/api/v4/projects") {
        const full = `${sshd!.home.slice(1)}/${body.path}`;
        execFileSync("git", ["init", "-q", "--bare", "-b", "main", join(sshd!.home, `${body.path}.git`)]);
        ownedByBackupUser(join(sshd!.home, `${body.path}.git`));
        projects.add(full);
        return answer(201, { id: 2, path_with_namespace: full });
      }
      answer(404, { message: "404 Not Found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  after(() => server.close());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

test("git: gitlab_token creates a missing project through the GitLab API, then pushes to it", {
  skip,
}, async () => {
  const api = await startGitlabApi("glpat-right");
  const url = `ssh://${sshd!.user}@127.0.0.1:${sshd!.port}${sshd!.home}/made-by-cairn.git`;
  const settings = { gitlab_token: "glpat-right", gitlab_url: api.url };
  const storage = open(url, settings);
  await storage.put("snap/a.sql", Readable.from([Buffer.from("a\n")]), ctx());
  await storage.close?.();
  const created = api.calls.filter((call) => call.method === "POST");
  assert.equal(created.length, 1);
  assert.deepEqual(created[0]!.body, {
    name: "made-by-cairn",
    path: "made-by-cairn",
    namespace_id: 7,
    visibility: "private",
    description: "Backups written by cairn",
  });
  assert.ok(api.calls.some((call) => call.path === `/api/v4/namespaces/${sshd!.home.slice(1)}`));
  const tree = execFileSync(
    "git",
    [
      "-c",
      "safe.directory=*",
      "-C",
      join(sshd!.home, "made-by-cairn.git"),
      "ls-tree",
      "-r",
      "--name-only",
      "main",
    ],
    { encoding: "utf8" },
  );
  assert.deepEqual(tree.trim().split("\n"), ["backups/snap/a.sql"]);

  // The next run finds the project and creates nothing.
  const again = open(url, { ...settings, work_dir: join(tempDir(), "clone") });
  assert.deepEqual((await again.stat("snap/a.sql", ctx()))?.size, 2);
  await again.close?.();
  assert.equal(api.calls.filter((call) => call.method === "POST").length, 1);
});

test("git: a GitLab token refused fails naming the destination and the status, never the token", {
  skip,
}, async () => {
  const api = await startGitlabApi("glpat-right");
  const url = `ssh://${sshd!.user}@127.0.0.1:${sshd!.port}${sshd!.home}/never-made.git`;
  const storage = open(url, { gitlab_token: "glpat-wrong", gitlab_url: api.url });
  const error = await storage.put("x", Readable.from([Buffer.from("x")]), ctx()).then(
    () => undefined,
    (e: unknown) => e,
  );
  await storage.close?.();
  assert.ok(error instanceof StorageError, String(error));
  assert.match(error.message, /GitLab lookup of project .*never-made failed \(HTTP 401/);
  assert.match(error.hint ?? "", /gitlab_token/);
  assert.doesNotMatch(`${error.message} ${error.hint}`, /glpat/);
});

test("git: the GitLab project is read from every form of remote url", () => {
  assert.deepEqual(gitlabProjectOf("git@gitlab.example.net:ops/db/backups.git"), {
    host: "gitlab.example.net",
    path: "ops/db/backups",
  });
  assert.deepEqual(gitlabProjectOf("ssh://git@gitlab.example.net:2222/ops/backups.git"), {
    host: "gitlab.example.net",
    path: "ops/backups",
  });
  assert.deepEqual(gitlabProjectOf("https://gitlab.example.net/ops/backups"), {
    host: "gitlab.example.net",
    path: "ops/backups",
  });
  assert.equal(gitlabProjectOf("/srv/git/backups.git"), undefined);
  assert.equal(gitlabProjectOf("git@host:lonely.git"), undefined);
});
