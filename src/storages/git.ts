import { createHash } from "node:crypto";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import { Batcher } from "../kit/batch.ts";
import { defineStorage, type ObjectInfo, type PluginContext, type Storage } from "../kit/contracts.ts";
import { CairnError, NotFoundError, StorageError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { silentLogger } from "../kit/logger.ts";
import { shellWord } from "../kit/shell.ts";
import { ByteCounter, through } from "../kit/streams.ts";
import { ensureGitlabProject } from "./_gitlab.ts";
import { alreadyExists, checkedKey, runTool, type ToolResult } from "./_shared.ts";
import { sshOptions } from "./_ssh.ts";

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
  gitlab_token: z
    .string()
    .optional()
    .describe(
      "a GitLab access token (api scope): the project is created through the GitLab API if it does not exist",
    ),
  gitlab_url: z
    .string()
    .url()
    .optional()
    .describe("the GitLab server's address; default https://<the url's host>"),
  gitlab_visibility: z
    .enum(["private", "internal", "public"])
    .default("private")
    .describe("visibility of a project cairn creates"),
});

type Options = z.output<typeof schema>;

interface Change {
  kind: "add" | "remove";
  path: string;
  /** The blob's id, for an add. */
  blob?: string;
}

export class GitStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 8 };
  readonly location: string;
  private readonly options: Options;
  private readonly clone: string;
  private readonly prefix: string;
  private ready: Promise<void> | undefined;
  /** Puts and deletes that arrive while a push runs go into the next commit together. */
  private readonly publishing = new Batcher<Change, undefined>(
    (batch) => this.commitAndPush(batch),
    1,
    Number.POSITIVE_INFINITY,
  );
  /** Paths being put right now: a second put of one of them fails at once. */
  private readonly inFlight = new Set<string>();

  constructor(options: Options) {
    this.options = options;
    this.prefix = options.path.replace(/^\/+|\/+$/g, "");
    this.location = `git ${options.url.replace(/\/\/[^@/]*@/, "//")} (${options.branch}${this.prefix ? `:${this.prefix}` : ""})`;
    const id = createHash("sha256").update(`${options.url}\n${options.branch}`).digest("hex").slice(0, 16);
    const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
    this.clone = options.work_dir ?? join(cache, "cairn", "git", id);
  }

  // ── git ─────────────────────────────────────────────────────────────────

  private gitEnv(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      GIT_DIR: this.clone,
      GIT_SSH_COMMAND: this.sshCommand(),
      GIT_TERMINAL_PROMPT: "0",
      LC_ALL: "C",
    };
  }

  private sshCommand(): string {
    return ["ssh", ...sshOptions(this.options)].map(shellWord).join(" ");
  }

  private git(
    args: string[],
    ctx?: PluginContext,
    extraEnv: Record<string, string> = {},
  ): Promise<ToolResult> {
    return runTool(
      "git",
      args,
      { signal: ctx?.signal, env: { ...this.gitEnv(), ...extraEnv } },
      () => new StorageError(`${this.location}: git is not installed`, { hint: "apt-get install git" }),
    );
  }

  private failed(action: string, result: ToolResult): StorageError {
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

  private async run(
    action: string,
    args: string[],
    ctx?: PluginContext,
    extraEnv: Record<string, string> = {},
  ): Promise<string> {
    const result = await this.git(args, ctx, extraEnv);
    if (result.code !== 0) throw this.failed(`${action} (git ${args[0]})`, result);
    return result.stdout.trim();
  }

  private get branchRef(): string {
    return `refs/heads/${this.options.branch}`;
  }

  /** The local repository, holding the remote branch's tip (the branch may not exist yet). */
  private prepare(ctx: PluginContext): Promise<void> {
    this.ready ??= (async () => {
      const { gitlab_token: token, gitlab_url: url, gitlab_visibility: visibility } = this.options;
      if (token && (await ensureGitlabProject(this.options.url, { token, url, visibility }, this.location)))
        ctx.logger.info(`created the GitLab project for ${this.location}`);
      if (!existsSync(join(this.clone, "HEAD"))) {
        mkdirSync(this.clone, { recursive: true });
        await this.run("setup of the local repository of", ["init", "-q", "--bare"], ctx);
      }
      const email = this.options.author_email ?? `cairn@${hostname()}`;
      await this.run("setup of", ["config", "user.name", this.options.author_name], ctx);
      await this.run("setup of", ["config", "user.email", email], ctx);
      // Artifacts are compressed or encrypted already (zstd is the default): zlib only burns CPU
      // on them. Level 0 stores; git's deltas, which do the work for plain dumps, are unaffected.
      await this.run("setup of", ["config", "core.compression", "0"], ctx);
      await this.fetch(ctx);
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  /** Sets the local branch to the remote's tip (only the tip: history may hold big objects). */
  private async fetch(ctx?: PluginContext): Promise<void> {
    const fetched = await this.git(
      ["fetch", "-q", "--depth", "1", this.options.url, `+${this.branchRef}:${this.branchRef}`],
      ctx,
    );
    if (fetched.code !== 0 && !/couldn't find remote ref/i.test(fetched.stderr))
      throw this.failed("fetch from", fetched);
  }

  private repoPath(key: string): string {
    checkedKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private async tip(): Promise<string | undefined> {
    const result = await this.git(["rev-parse", "-q", "--verify", `${this.branchRef}^{commit}`]);
    return result.code === 0 ? result.stdout.trim() : undefined;
  }

  /** `git ls-tree -l -z BRANCH …` entries as [type, size, path]; none while the branch has no commit. */
  private async tree(args: string[], ctx: PluginContext): Promise<[string, number, string][]> {
    const result = await this.git(["ls-tree", "-l", "-z", ...args], ctx);
    if (result.code !== 0) {
      if (!(await this.tip())) return [];
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

  /**
   * Commits the batch on top of the branch's tip (with a private index) and pushes it. Adds of
   * names the tip already has are left out and answered "already exists"; the others go on.
   */
  private async commitAndPush(batch: Change[]): Promise<(undefined | Error)[]> {
    for (let attempt = 1; ; attempt++) {
      const parent = await this.tip();
      const index = {
        GIT_INDEX_FILE: join(this.clone, "cairn-index"),
        GIT_WORK_TREE: join(this.clone, "no-work-tree"),
      };
      rmSync(index.GIT_INDEX_FILE, { force: true });
      if (parent) await this.run("commit in", ["read-tree", parent], undefined, index);
      const added = batch.filter((change) => change.kind === "add");
      const refused = new Set<Change>();
      if (parent && added.length) {
        // One process for the whole batch: which of these paths the tip already has.
        const { stdout } = await runProgram("git", ["cat-file", "--batch-check"], {
          stdin: Readable.from([added.map((change) => `${parent}:${change.path}\n`).join("")]),
          captureStdout: true,
          env: this.gitEnv(),
          signal: new AbortController().signal,
          logger: silentLogger,
        }).catch((error: unknown) => {
          throw new StorageError(`commit in ${this.location} failed: ${(error as Error).message}`);
        });
        const checks = stdout.split("\n");
        added.forEach((change, i) => {
          if (checks[i] !== undefined && !checks[i].endsWith(" missing")) refused.add(change);
        });
      }
      const answers = batch.map((change) =>
        refused.has(change) ? alreadyExists(`${this.location}/${change.path}`) : undefined,
      );
      const changes = batch.filter((change) => !refused.has(change));
      if (changes.length === 0) return answers;
      // One update-index for the batch; mode 0 removes an entry (no work tree needed, unlike --force-remove).
      const entries = changes.map((change) =>
        change.kind === "add"
          ? `100644 blob ${change.blob}\t${change.path}\0`
          : `0 ${"0".repeat(40)}\t${change.path}\0`,
      );
      await runProgram("git", ["update-index", "-z", "--index-info"], {
        stdin: Readable.from([entries.join("")]),
        env: { ...this.gitEnv(), ...index },
        signal: new AbortController().signal,
        logger: silentLogger,
      }).catch((error: unknown) => {
        throw new StorageError(`commit in ${this.location} failed: ${(error as Error).message}`);
      });
      const tree = await this.run("commit in", ["write-tree"], undefined, index);
      const adds = changes.filter((c) => c.kind === "add").length;
      const removes = changes.length - adds;
      const message = [adds ? `add ${adds}` : "", removes ? `remove ${removes}` : ""]
        .filter(Boolean)
        .join(", ");
      const commit = await this.run("commit in", [
        "commit-tree",
        tree,
        ...(parent ? ["-p", parent] : []),
        "-m",
        `cairn: ${message}`,
      ]);
      const pushed = await this.git(["push", "-q", this.options.url, `${commit}:${this.branchRef}`]);
      if (pushed.code === 0) {
        await this.run("commit in", ["update-ref", this.branchRef, commit]);
        return answers;
      }
      // Another host pushed first: build the same change on top of theirs and try again.
      if (attempt >= 3 || !/rejected|non-fast-forward|fetch first/i.test(pushed.stderr))
        throw this.failed("push to", pushed);
      await this.fetch();
    }
  }

  // ── the Storage contract ────────────────────────────────────────────────

  async put(key: string, body: Readable, ctx: PluginContext): Promise<ObjectInfo> {
    const path = this.repoPath(key);
    const where = `${this.location}/${key}`;
    if (this.inFlight.has(path)) {
      body.destroy();
      throw alreadyExists(where);
    }
    this.inFlight.add(path);
    try {
      await this.prepare(ctx);
      // A name the branch already has is refused when the commit is built (one check for the
      // whole group, not a git process per put).
      const counted = through(body, new ByteCounter());
      const { stdout } = await runProgram("git", ["hash-object", "-w", "--stdin"], {
        stdin: counted,
        captureStdout: true,
        env: this.gitEnv(),
        signal: ctx.signal,
        logger: ctx.logger,
      });
      await this.publishing.add({ kind: "add", path, blob: stdout.trim() });
      return { key, size: counted.bytes };
    } catch (error) {
      body.destroy();
      throw this.failure("upload to", key, error);
    } finally {
      this.inFlight.delete(path);
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
    return spawnOutput("git", ["cat-file", "blob", `${this.branchRef}:${this.repoPath(key)}`], {
      env: this.gitEnv(),
      signal: ctx.signal,
      logger: ctx.logger,
    });
  }

  async stat(key: string, ctx: PluginContext): Promise<ObjectInfo | undefined> {
    await this.prepare(ctx);
    const path = this.repoPath(key);
    const found = (await this.tree([this.branchRef, "--", path], ctx)).find(
      ([type, , name]) => type === "blob" && name === path,
    );
    return found ? { key, size: found[1] } : undefined;
  }

  async *list(prefix: string, ctx: PluginContext): AsyncIterable<ObjectInfo> {
    await this.prepare(ctx);
    const full = this.repoPath(prefix);
    const folder = full.includes("/") ? full.slice(0, full.lastIndexOf("/") + 1) : "";
    for (const [type, size, name] of await this.tree(
      ["-r", this.branchRef, ...(folder ? ["--", folder] : [])],
      ctx,
    ))
      if (type === "blob" && name.startsWith(full))
        yield { key: this.prefix ? name.slice(this.prefix.length + 1) : name, size };
  }

  async delete(key: string, ctx: PluginContext): Promise<void> {
    try {
      await this.prepare(ctx);
      if (!(await this.stat(key, ctx))) return;
      await this.publishing.add({ kind: "remove", path: this.repoPath(key) });
    } catch (error) {
      throw this.failure("delete of", key, error);
    }
  }
}

export const gitStorage = defineStorage({
  type: "git",
  description: "A git repository: objects committed and pushed (group commits); history keeps every version",
  schema,
  secrets: ["gitlab_token"],
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
