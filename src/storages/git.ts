/**
 * A git repository as a destination: objects are committed to a branch and pushed (over SSH,
 * HTTPS or a local path), so the remote's history keeps every version. With `compression: none`
 * and no encryption, git's delta compression stores each night's text dump as the difference to
 * the last one — what PolyArchiv's git backup points were for.
 *
 * A local clone is the working copy (kept under `work_dir` between runs). A put writes into it
 * and resolves only once a commit holding the object has been pushed; puts that arrive while a
 * push runs are committed and pushed together (group commit), so a snapshot of many parts does
 * not cost a push each. Reads come from the committed tree (`git cat-file`, `git ls-tree`).
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync, linkSync, mkdirSync, rmSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { spawnOutput } from "../core/exec.ts";
import { CairnError, NotFoundError, StorageError } from "../errors.ts";
import { defineStorage, type ObjectInfo, type PluginContext, type Storage } from "../types.ts";
import { alreadyExists, checkedKey, tempKeyFor } from "./_shared.ts";

const schema = z.object({
  url: z
    .string()
    .min(1)
    .describe(
      "the remote repository: ssh://git@host/group/backups.git, git@host:group/backups.git, https://…, or a path",
    ),
  branch: z.string().default("main").describe("branch the backups are committed to (created if missing)"),
  path: z.string().default("").describe("folder inside the repository"),
  work_dir: z
    .string()
    .optional()
    .describe("the local clone, kept between runs; default ~/.cache/cairn/git/<hash of url and branch>"),
  private_key_file: z.string().optional().describe("SSH private key for ssh remotes; default ssh's own"),
  known_hosts: z.string().optional().describe("known_hosts for ssh remotes; default ~/.ssh/known_hosts"),
  author_name: z.string().default("cairn"),
  author_email: z.string().optional().describe("default cairn@<this host's name>"),
});

type Options = z.output<typeof schema>;

interface Change {
  kind: "add" | "remove";
  path: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class GitStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 8 };
  readonly location: string;
  private readonly options: Options;
  private readonly clone: string;
  private readonly prefix: string;
  private ready: Promise<void> | undefined;
  private readonly queue: Change[] = [];
  private publishing = false;

  constructor(options: Options) {
    this.options = options;
    this.prefix = options.path.replace(/^\/+|\/+$/g, "");
    this.location = `git ${options.url.replace(/\/\/[^@/]*@/, "//")} (${options.branch}${this.prefix ? `:${this.prefix}` : ""})`;
    const id = createHash("sha256").update(`${options.url}\n${options.branch}`).digest("hex").slice(0, 16);
    const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
    this.clone = options.work_dir ?? join(cache, "cairn", "git", id);
  }

  // ── git ─────────────────────────────────────────────────────────────────

  private git(args: string[], ctx?: PluginContext, cwd = this.clone): Promise<GitResult> {
    const ssh = [
      "ssh",
      "-o",
      "BatchMode=yes",
      "-o",
      "StrictHostKeyChecking=yes",
      ...(this.options.known_hosts ? ["-o", `UserKnownHostsFile=${this.options.known_hosts}`] : []),
      ...(this.options.private_key_file
        ? ["-o", "IdentitiesOnly=yes", "-i", this.options.private_key_file]
        : []),
    ]
      .map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`))
      .join(" ");
    return new Promise((resolve, reject) => {
      execFile(
        "git",
        args,
        {
          cwd,
          ...(ctx ? { signal: ctx.signal } : {}),
          maxBuffer: 256 * 1024 * 1024,
          env: {
            ...process.env,
            GIT_SSH_COMMAND: ssh,
            GIT_TERMINAL_PROMPT: "0",
            LC_ALL: "C",
          },
        },
        (error, stdout, stderr) => {
          const code = (error as NodeJS.ErrnoException | null)?.code;
          if (code === "ENOENT")
            return reject(
              new StorageError(`${this.location}: git is not installed`, { hint: "apt-get install git" }),
            );
          if (error && typeof code !== "number") return reject(error);
          resolve({ code: typeof code === "number" ? code : 0, stdout, stderr });
        },
      );
    });
  }

  private failed(action: string, result: GitResult): StorageError {
    const message =
      result.stderr.trim().split("\n").slice(-3).join(" / ") || `git exited with ${result.code}`;
    const hint = /Host key verification failed/i.test(result.stderr)
      ? "add the server's key to known_hosts (ssh-keyscan, after checking it)"
      : /Permission denied|Authentication failed|could not read Username|403|401/i.test(result.stderr)
        ? "check the key (or the token in the URL's credential helper) and that it may push to this repository"
        : /not found|does not appear to be a git repository|does not exist/i.test(result.stderr)
          ? "create the repository first (an empty one is fine)"
          : undefined;
    return new StorageError(`${action} ${this.location} failed: ${message}`, {
      retryable:
        /Connection (reset|refused|closed)|timed out|unexpectedly|early EOF|Could not read from remote/i.test(
          result.stderr,
        ),
      ...(hint ? { hint } : {}),
    });
  }

  private async run(action: string, args: string[], ctx?: PluginContext): Promise<string> {
    const result = await this.git(args, ctx);
    if (result.code !== 0) throw this.failed(action, result);
    return result.stdout;
  }

  /** The clone, up to date with the remote branch (which may not exist yet). */
  private prepare(ctx: PluginContext): Promise<void> {
    this.ready ??= (async () => {
      if (!existsSync(join(this.clone, ".git"))) {
        mkdirSync(this.clone, { recursive: true });
        await this.run("init of the clone of", ["init", "-q", "-b", this.options.branch], ctx);
        await this.run("setup of", ["remote", "add", "origin", this.options.url], ctx);
      }
      const email = this.options.author_email ?? `cairn@${hostname()}`;
      await this.run("setup of", ["config", "user.name", this.options.author_name], ctx);
      await this.run("setup of", ["config", "user.email", email], ctx);
      // Backups are mostly compressed or encrypted already: zlib's fastest level costs the least
      // CPU, and for plain dumps git's deltas do the real work.
      await this.run("setup of", ["config", "core.compression", "1"], ctx);
      await this.run("setup of", ["remote", "set-url", "origin", this.options.url], ctx);
      await this.sync(ctx);
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /** Fetches the branch and makes the clone exactly the remote's (our pushes are all in it). */
  private async sync(ctx?: PluginContext): Promise<void> {
    // Only the tip: the clone needs the current tree, not the history (which may hold big objects).
    const fetched = await this.git(["fetch", "-q", "--depth", "1", "origin", this.options.branch], ctx);
    if (fetched.code === 0) {
      await this.run("checkout in", ["checkout", "-q", "-B", this.options.branch, "FETCH_HEAD"], ctx);
      await this.run("reset of", ["reset", "-q", "--hard", "FETCH_HEAD"], ctx);
    } else if (!/couldn't find remote ref/i.test(fetched.stderr)) throw this.failed("fetch from", fetched);
  }

  private repoPath(key: string): string {
    checkedKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private async hasCommits(): Promise<boolean> {
    return (await this.git(["rev-parse", "-q", "--verify", "HEAD"])).code === 0;
  }

  /** `git ls-tree -l -z HEAD …` entries as [type, size, path]; none while the branch has no commit. */
  private async tree(args: string[], ctx: PluginContext): Promise<[string, number, string][]> {
    const result = await this.git(["ls-tree", "-l", "-z", ...args], ctx);
    if (result.code !== 0) {
      if (!(await this.hasCommits())) return [];
      throw this.failed("listing of", result);
    }
    return result.stdout
      .split("\0")
      .filter(Boolean)
      .map((entry) => {
        const [meta = "", name = ""] = entry.split("\t");
        const [, type = "", , size] = meta.split(/\s+/);
        return [type, Number(size), name];
      });
  }

  // ── publishing: commit + push, in groups ────────────────────────────────

  private publish(kind: Change["kind"], path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, path, resolve, reject });
      if (!this.publishing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.publishing = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        await this.commitAndPush(batch);
        for (const change of batch) change.resolve();
      } catch (error) {
        // What was not pushed must not stay in the clone either.
        await this.sync().catch(() => {});
        for (const change of batch)
          if (change.kind === "add") rmSync(join(this.clone, change.path), { force: true });
        for (const change of batch) change.reject(error);
      }
    }
    this.publishing = false;
  }

  private async commitAndPush(batch: Change[]): Promise<void> {
    const added = batch.filter((c) => c.kind === "add").map((c) => c.path);
    const removed = batch.filter((c) => c.kind === "remove").map((c) => c.path);
    if (added.length) await this.run("staging in", ["add", "-f", "--", ...added]);
    if (removed.length)
      await this.run("staging in", ["rm", "-q", "--cached", "--ignore-unmatch", "--", ...removed]);
    for (const path of removed) rmSync(join(this.clone, path), { force: true });
    if ((await this.git(["diff", "--cached", "--quiet"])).code === 0 && (await this.hasCommits())) return;
    const message = `cairn: ${added.length ? `add ${added.length}` : ""}${added.length && removed.length ? ", " : ""}${removed.length ? `remove ${removed.length}` : ""}`;
    await this.run("commit in", ["commit", "-q", "--no-verify", "-m", message || "cairn"]);
    for (let attempt = 1; ; attempt++) {
      const pushed = await this.git(["push", "-q", "origin", `HEAD:refs/heads/${this.options.branch}`]);
      if (pushed.code === 0) return;
      // Another host pushed first: replay ours on top of theirs and try again.
      if (attempt >= 3 || !/rejected|non-fast-forward|fetch first/i.test(pushed.stderr))
        throw this.failed("push to", pushed);
      await this.run("fetch from", ["fetch", "-q", "--depth", "1", "origin", this.options.branch]);
      const rebased = await this.git(["rebase", "-q", "FETCH_HEAD"]);
      if (rebased.code !== 0) {
        await this.git(["rebase", "--abort"]);
        throw new StorageError(`${this.location}: another writer changed the same objects`, {
          hint: "two hosts wrote the same snapshot name; run again",
        });
      }
    }
  }

  // ── the Storage contract ────────────────────────────────────────────────

  async put(key: string, body: Readable, ctx: PluginContext): Promise<ObjectInfo> {
    const path = this.repoPath(key);
    const where = `${this.location}/${key}`;
    try {
      await this.prepare(ctx);
      if (await this.stat(key, ctx)) throw alreadyExists(where);
      const file = join(this.clone, path);
      const temp = join(this.clone, tempKeyFor(path));
      mkdirSync(posix.dirname(file), { recursive: true });
      const out = createWriteStream(temp);
      try {
        await pipeline(body, out);
        linkSync(temp, file); // fails if the name is taken, even by a put still in flight
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") throw alreadyExists(where);
        throw error;
      } finally {
        rmSync(temp, { force: true });
      }
      await this.publish("add", path);
      return { key, size: out.bytesWritten };
    } catch (error) {
      body.destroy();
      throw this.failure("upload to", key, error);
    }
  }

  private failure(action: string, key: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    return new StorageError(`${action} ${this.location}/${key} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }

  async get(key: string, ctx: PluginContext): Promise<Readable> {
    await this.prepare(ctx);
    if (!(await this.stat(key, ctx))) throw new NotFoundError(`${this.location}/${key} does not exist`);
    return spawnOutput("git", ["-C", this.clone, "cat-file", "blob", `HEAD:${this.repoPath(key)}`], ctx);
  }

  async stat(key: string, ctx: PluginContext): Promise<ObjectInfo | undefined> {
    await this.prepare(ctx);
    const path = this.repoPath(key);
    const found = (await this.tree(["HEAD", "--", path], ctx)).find(
      ([type, , name]) => type === "blob" && name === path,
    );
    return found ? { key, size: found[1] } : undefined;
  }

  async *list(prefix: string, ctx: PluginContext): AsyncIterable<ObjectInfo> {
    await this.prepare(ctx);
    const full = this.repoPath(prefix);
    const folder = full.includes("/") ? full.slice(0, full.lastIndexOf("/") + 1) : "";
    for (const [type, size, name] of await this.tree(["-r", "HEAD", ...(folder ? ["--", folder] : [])], ctx))
      if (type === "blob" && name.startsWith(full))
        yield { key: this.prefix ? name.slice(this.prefix.length + 1) : name, size };
  }

  async delete(key: string, ctx: PluginContext): Promise<void> {
    try {
      await this.prepare(ctx);
      if (!(await this.stat(key, ctx))) return;
      await this.publish("remove", this.repoPath(key));
    } catch (error) {
      throw this.failure("delete of", key, error);
    }
  }
}

export const gitStorage = defineStorage({
  type: "git",
  description: "A git repository: objects committed and pushed (group commits); history keeps every version",
  schema,
  secrets: [],
  create: (options, env) =>
    new GitStorage({
      ...options,
      ...(options.work_dir ? { work_dir: posix.resolve(env.baseDir, options.work_dir) } : {}),
      ...(options.private_key_file
        ? { private_key_file: posix.resolve(env.baseDir, options.private_key_file) }
        : {}),
      ...(options.known_hosts ? { known_hosts: posix.resolve(env.baseDir, options.known_hosts) } : {}),
    }),
});
