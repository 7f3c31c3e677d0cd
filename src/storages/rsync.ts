/**
 * rsync over SSH to a remote folder — also where the login is restricted to rsync (`rrsync` in
 * authorized_keys, rsync.net, NAS "rsync accounts"): every operation is an rsync command, none
 * needs a shell on the server.
 *
 * rsync sends files, not streams: an object is written to the call's private work folder first,
 * then sent (rsync writes it under a temporary name on the server and renames it when whole), and
 * a read is fetched to the work folder before it is streamed. `split` bounds the space this needs.
 */
import { execFile, spawn } from "node:child_process";
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { Batcher } from "../kit/batch.ts";
import { defineStorage, type ObjectInfo, type PluginContext, type Storage } from "../kit/contracts.ts";
import { CairnError, NotFoundError, StorageError } from "../kit/errors.ts";
import { Semaphore } from "../kit/semaphore.ts";
import { shellWord } from "../kit/shell.ts";
import {
  alreadyExists,
  checkedKey,
  checkStoredSize,
  loginFromUrl,
  runTool,
  type ToolResult,
} from "./_shared.ts";
import { sshOptions } from "./_ssh.ts";

const schema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1),
  path: z
    .string()
    .default(".")
    .describe("folder on the server; relative to the login folder (or to the folder rrsync allows)"),
  private_key_file: z.string().optional().describe("private key file; default ssh's own (~/.ssh/id_*)"),
  known_hosts: z
    .string()
    .optional()
    .describe("known_hosts file the server's key must be in; default ~/.ssh/known_hosts"),
  rsync: z.string().default("rsync").describe("the local rsync program (3.2.4 or later)"),
  connections: z
    .number()
    .int()
    .min(1)
    .max(10)
    .default(4)
    .describe("rsync runs at once, sharing one SSH connection (sshd allows 10 sessions per connection)"),
});

type Options = z.output<typeof schema>;

/** rsync's own temporary names while it receives a file: `.NAME.XXXXXX`. */
const RSYNC_TEMP = /^\..+\.[A-Za-z0-9]{6}$/;

/** A line of `rsync --list-only`: permissions, size, date, time, name. */
const LISTING_LINE =
  /^([-dlcbps])[-rwxsStT]{9}\S*\s+(\d+)\s+(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d) (.*)$/;

/** rsync's exit code for "some files could not be transferred" — a missing source among them. */
const PARTIAL_TRANSFER = 23;

/** An object written to the call's work folder, waiting to be sent. */
interface Staged {
  key: string;
  stage: string;
  size: number;
  ctx: PluginContext;
}

/** Escapes an rsync filter pattern so a name matches only itself. */
const literalPattern = (name: string): string => name.replace(/[[\]*?\\]/g, "\\$&");

export class RsyncStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 4 };
  readonly location: string;
  private readonly options: Options;
  private readonly remote: string;
  private readonly sshArgs: string[];
  private readonly slots: Semaphore;
  /** Folder of the shared SSH connection's control socket, made on first use. */
  private controlDir: string | undefined;
  private master: Promise<void> | undefined;
  /** Puts and deletes that arrive while others run go together into one rsync. */
  private readonly sends: Batcher<Staged, ObjectInfo>;
  private readonly removals: Batcher<{ key: string; ctx: PluginContext }, undefined>;

  constructor(options: Options) {
    this.options = options;
    const base = options.path.replace(/\/+$/, "") || ".";
    this.remote = `${options.user}@${options.host}:${base}/`;
    this.location = `rsync ${options.port === 22 ? "" : `(port ${options.port}) `}${this.remote.replace(/\/$/, "")}`;
    this.slots = new Semaphore(options.connections);
    this.sends = new Batcher((batch) => this.send(batch), options.connections);
    this.removals = new Batcher((batch) => this.remove(batch), options.connections);
    this.sshArgs = sshOptions(options);
  }

  private controlPath(): string {
    this.controlDir ??= mkdtempSync(join(tmpdir(), "cairn-rsync-"));
    return join(this.controlDir, "%C");
  }

  /**
   * Every rsync of this destination shares one SSH connection (a ControlMaster started here, with
   * no pipes of ours, so rsync's own ssh ends when rsync does): a run makes one login, not one per
   * object — sshd drops logins that arrive faster than MaxStartups allows. If the master cannot
   * start, rsync's ssh connects on its own and reports why.
   */
  private startMaster(): Promise<void> {
    this.master ??= new Promise<void>((resolve) => {
      const args = [...this.sshArgs, "-o", "ControlMaster=yes", "-o", `ControlPath=${this.controlPath()}`];
      const child = spawn(
        "ssh",
        [...args, "-o", "ControlPersist=60", "-f", "-N", "-l", this.options.user, this.options.host],
        { stdio: "ignore" },
      );
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    return this.master;
  }

  private sshCommand(): string {
    return ["ssh", ...this.sshArgs, "-o", "ControlMaster=no", "-o", `ControlPath=${this.controlPath()}`]
      .map(shellWord)
      .join(" ");
  }

  /**
   * Runs rsync with the ssh transport. Remote names are escaped by rsync itself (its default since
   * 3.2.4); `-s` would be safer still, but rrsync refuses it.
   */
  private async rsync(args: string[], ctx: PluginContext): Promise<ToolResult> {
    const release = await this.slots.acquire(ctx.signal);
    try {
      await this.startMaster();
      const result = await this.runRsync(args, ctx);
      if (result.code === 255) this.master = undefined; // the connection failed: make a new one next time
      return result;
    } finally {
      release();
    }
  }

  private runRsync(args: string[], ctx: PluginContext): Promise<ToolResult> {
    return runTool(
      this.options.rsync,
      ["-e", this.sshCommand(), ...args],
      { signal: ctx.signal, env: { ...process.env, LC_ALL: "C" } },
      () =>
        new StorageError(`${this.location}: the program ${this.options.rsync} is not installed`, {
          hint: "install rsync (apt-get install rsync)",
        }),
    );
  }

  private failed(action: string, key: string, result: ToolResult): StorageError {
    const lines = result.stderr.trim().split("\n").filter(Boolean);
    const last = lines.slice(-3).join(" / ") || `rsync exited with ${result.code}`;
    const hint = /Host key verification failed|host key .* not|No .* host key is known/i.test(result.stderr)
      ? `add the server's key to known_hosts: ssh-keyscan -p ${this.options.port} ${this.options.host} >> ~/.ssh/known_hosts (check it first)`
      : /Permission denied/i.test(result.stderr)
        ? "check user and private_key_file, and that the key is in the server's authorized_keys"
        : undefined;
    return new StorageError(`${action} ${this.location}/${key} failed: ${last}`, {
      // 10/12/30/35: socket, protocol stream, timeout, daemon timeout; 255: ssh's connection failed.
      retryable: [10, 12, 30, 35, 255].includes(result.code) && !hint,
      ...(hint ? { hint } : {}),
    });
  }

  private failure(action: string, key: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    return new StorageError(`${action} ${this.location}/${key} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }

  /** `rsync --list-only` of one remote path; undefined when it does not exist. */
  private async listing(
    path: string,
    recursive: boolean,
    ctx: PluginContext,
  ): Promise<ObjectInfo[] | undefined> {
    const result = await this.rsync(
      ["--list-only", "-8", "--no-h", ...(recursive ? ["-r"] : []), `${this.remote}${path}`],
      ctx,
    );
    if (
      result.code === PARTIAL_TRANSFER &&
      /No such file or directory|change_dir.*failed/.test(result.stderr)
    )
      return undefined;
    if (result.code !== 0) throw this.failed("listing of", path || ".", result);
    const objects: ObjectInfo[] = [];
    for (const line of result.stdout.split("\n")) {
      const match = LISTING_LINE.exec(line);
      if (match?.[1] !== "-") continue;
      const [, , size, year, month, day, hour, minute, second, name = ""] = match;
      objects.push({
        key: name,
        size: Number(size),
        modified: new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}`),
      });
    }
    return objects;
  }

  async put(key: string, body: Readable, ctx: PluginContext): Promise<ObjectInfo> {
    checkedKey(key);
    try {
      // Laid out under the key's own folders, so --relative creates them on the server.
      const stage = join(ctx.workDir, "rsync-put");
      const local = join(stage, key);
      mkdirSync(posix.dirname(local), { recursive: true });
      const file = createWriteStream(local);
      await pipeline(body, file);
      return await this.sends.add({ key, stage, size: file.bytesWritten, ctx });
    } catch (error) {
      body.destroy();
      throw this.failure("upload to", key, error);
    }
  }

  /**
   * One rsync sends every staged object of a batch: --ignore-existing makes the server keep what it
   * has, and only a reported "<f" line says an object was sent (rsync checks each file it sends
   * against a checksum). If rsync fails, every object of the batch fails: some may have arrived,
   * but none is reported stored that might not be.
   */
  private async send(batch: Staged[]): Promise<(ObjectInfo | Error)[]> {
    // The same name twice in one batch: only the first is sent; the other is told it exists.
    const first = new Map<string, Staged>();
    for (const staged of batch) if (!first.has(staged.key)) first.set(staged.key, staged);
    const result = await this.rsync(
      [
        "--relative",
        "--ignore-existing",
        "-8",
        "--chmod=F600",
        "--out-format=%i %l %n",
        ...[...first.values()].map(({ stage, key }) => `${stage}/./${key}`),
        this.remote,
      ],
      batch[0]!.ctx,
    );
    const sent = new Map<string, number>();
    for (const line of result.stdout.split("\n")) {
      const match = /^<f\S* (\d+) (.+)$/.exec(line);
      if (match) sent.set(match[2]!, Number(match[1]));
    }
    return batch.map((staged) => {
      const { key, size } = staged;
      if (result.code !== 0) return this.failed("upload to", key, result);
      const where = `${this.location}/${key}`;
      if (!sent.has(key) || first.get(key) !== staged) return alreadyExists(where);
      try {
        checkStoredSize(where, sent.get(key), size);
      } catch (error) {
        return error as Error;
      }
      return { key, size };
    });
  }

  async get(key: string, ctx: PluginContext): Promise<Readable> {
    checkedKey(key);
    const local = join(ctx.workDir, "rsync-get", posix.basename(key));
    mkdirSync(posix.dirname(local), { recursive: true });
    let result: ToolResult;
    try {
      result = await this.rsync([`${this.remote}${key}`, local], ctx);
    } catch (error) {
      throw this.failure("download of", key, error);
    }
    if (result.code === PARTIAL_TRANSFER && /No such file or directory/.test(result.stderr))
      throw new NotFoundError(`${this.location}/${key} does not exist`);
    if (result.code !== 0) throw this.failed("download of", key, result);
    // Opened now: the work folder may be removed when this call returns, the open file stays readable.
    return createReadStream("", { fd: openSync(local, "r") });
  }

  async stat(key: string, ctx: PluginContext): Promise<ObjectInfo | undefined> {
    checkedKey(key);
    try {
      const found = (await this.listing(key, false, ctx))?.[0];
      return found ? { ...found, key } : undefined;
    } catch (error) {
      throw this.failure("stat of", key, error);
    }
  }

  async *list(prefix: string, ctx: PluginContext): AsyncIterable<ObjectInfo> {
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/") + 1) : "";
    let objects: ObjectInfo[] | undefined;
    try {
      objects = await this.listing(checkedKey(folder), true, ctx);
    } catch (error) {
      throw this.failure("listing of", folder, error);
    }
    for (const object of objects ?? []) {
      const key = `${folder}${object.key}`;
      if (key.startsWith(prefix) && !RSYNC_TEMP.test(posix.basename(key))) yield { ...object, key };
    }
  }

  /**
   * rsync deletes only by syncing a folder: an empty one, filtered down to this one name — one run,
   * no listing first. `--existing` keeps it from creating anything but the key's own folder, which
   * rsync makes when it is missing (then empty); a deeper missing folder means nothing to delete.
   */
  async delete(key: string, ctx: PluginContext): Promise<void> {
    checkedKey(key);
    try {
      await this.removals.add({ key, ctx });
    } catch (error) {
      throw this.failure("delete of", key, error);
    }
  }

  /** One rsync per folder deletes a batch's objects in it: an empty folder sent with --delete, only their names included. */
  private async remove(batch: { key: string; ctx: PluginContext }[]): Promise<(undefined | Error)[]> {
    const folders = new Map<string, string[]>();
    for (const { key } of batch) {
      const folder = posix.dirname(key) === "." ? "" : `${posix.dirname(key)}/`;
      const keys = folders.get(folder) ?? [];
      keys.push(key);
      folders.set(folder, keys);
    }
    const ctx = batch[0]!.ctx;
    const empty = join(ctx.workDir, "rsync-empty");
    mkdirSync(empty, { recursive: true });
    const outcome = new Map<string, Error | undefined>();
    for (const [folder, keys] of folders) {
      const result = await this.rsync(
        [
          "--recursive",
          "--delete",
          "--existing",
          ...keys.map((key) => `--include=/${literalPattern(posix.basename(key))}`),
          "--exclude=*",
          `${empty}/`,
          `${this.remote}${folder}`,
        ],
        ctx,
      );
      const gone = result.code === 11 && /mkdir .* failed: No such file or directory/.test(result.stderr);
      for (const key of keys)
        outcome.set(key, result.code === 0 || gone ? undefined : this.failed("delete of", key, result));
    }
    return batch.map(({ key }) => outcome.get(key));
  }

  async close(): Promise<void> {
    if (!this.controlDir) return;
    const control = join(this.controlDir, "%C");
    await new Promise((resolve) =>
      execFile(
        "ssh",
        [
          ...this.sshArgs,
          "-o",
          `ControlPath=${control}`,
          "-l",
          this.options.user,
          "-O",
          "exit",
          this.options.host,
        ],
        resolve,
      ),
    );
    rmSync(this.controlDir, { recursive: true, force: true });
    this.controlDir = undefined;
  }
}

export const rsyncStorage = defineStorage({
  type: "rsync",
  description:
    "rsync over SSH to a remote folder (works with rrsync-restricted keys); objects staged locally",
  schema,
  secrets: [],
  // rsync:// is the rsync daemon's own protocol; rsync+ssh:// says which transport this is.
  fromUrl: (url) => loginFromUrl(url),
  create: (options, env) =>
    new RsyncStorage({
      ...options,
      ...(options.private_key_file
        ? { private_key_file: posix.resolve(env.baseDir, options.private_key_file) }
        : {}),
      ...(options.known_hosts ? { known_hosts: posix.resolve(env.baseDir, options.known_hosts) } : {}),
    }),
});
