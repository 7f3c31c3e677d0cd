import { randomBytes } from "node:crypto";
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  rename,
  rmdir,
  stat,
  unlink,
} from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { type Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import { defineStorage, type ObjectInfo, type Storage } from "../kit/contracts.ts";
import { NotFoundError, StorageError } from "../kit/errors.ts";
import { shellWord } from "../kit/shell.ts";
import { alreadyExists, joinKey, TEMP_MARKER } from "./_shared.ts";

const REASONS: Record<string, string> = {
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "not permitted",
  ENOSPC: "no space left on the device",
  ENOTDIR: "a part of the path is a file, not a folder",
};

/**
 * `mkdir -p` that says why it failed: Node's recursive mkdir reports ENOENT for a folder it
 * cannot create on a read-only or forbidden file system; creating the first missing folder on
 * its own gives the real reason — or succeeds, when another process had removed a parent while
 * this one created the path: then the whole path is made once more.
 */
async function makeFolder(dir: string, attempts = 2): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    let missing = dir;
    while (dirname(missing) !== missing && !(await lstat(dirname(missing)).catch(() => undefined)))
      missing = dirname(missing);
    const real = await mkdir(missing, { mode: 0o700 }).then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e,
    );
    if (!real && attempts > 1) return makeFolder(dir, attempts - 1);
    const reason = real ?? (error as NodeJS.ErrnoException);
    const code = reason.code ?? "";
    throw new StorageError(`cannot create the folder ${dir}: ${REASONS[code] ?? reason.message} (${code})`, {
      cause: reason,
      hint:
        code === "EROFS"
          ? "the destination's disk is mounted read-only: remount it read-write or choose another path"
          : "check the destination path and its permissions",
    });
  }
}

/**
 * Creates the temporary file, and its folder first. Another process deleting the last object of
 * that folder removes the folder too (a lock folder, an emptied snapshot folder), maybe between
 * our mkdir and our open: then the folder is made again (found by the robustness run, two hosts).
 */
async function openInFolder(temp: string): Promise<FileHandle> {
  for (let attempt = 1; ; attempt++) {
    await makeFolder(dirname(temp));
    try {
      return await open(temp, "wx", 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || attempt >= 5) throw error;
    }
  }
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const SYNC_EVERY = 32 * 1024 * 1024;

/**
 * Writes a new file and makes it durable. Every 32 MiB it starts an fdatasync in the background,
 * so the disk writes back while the backup goes on and the final fsync has little left to do
 * (measured: a 160 MB object's closing fsync cost ~0.5 s on its own).
 */
class DurableFile extends Writable {
  private readonly handle: FileHandle;
  private unsynced = 0;
  private syncing: Promise<void> | undefined;

  constructor(handle: FileHandle) {
    super({ highWaterMark: 1024 * 1024 });
    this.handle = handle;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll(chunk).then(() => callback(), callback);
  }

  private async writeAll(chunk: Buffer): Promise<void> {
    for (let offset = 0; offset < chunk.length; ) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
    this.unsynced += chunk.length;
    if (this.unsynced >= SYNC_EVERY && !this.syncing) {
      this.unsynced = 0;
      this.syncing = this.handle.datasync().finally(() => {
        this.syncing = undefined;
      });
      this.syncing.catch(() => {}); // the final sync reports the error
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    (async () => {
      await this.syncing;
      await this.handle.sync();
    })().then(() => callback(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    );
  }
}

/** A folder on a local or mounted disk. Writes go to a temporary name, are fsynced, then linked into place. */
export class LocalStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 4 };
  readonly location: string;

  constructor(root: string) {
    this.location = resolve(root);
  }

  private pathOf(key: string): string {
    const path = resolve(this.location, key);
    if (
      key.startsWith("/") ||
      key.split("/").includes("..") ||
      (path !== this.location && !path.startsWith(this.location + sep))
    )
      throw new StorageError(`invalid key "${key}" for local storage`);
    return path;
  }

  handCommand(key: string, op: WriteOp): string {
    const where = shellWord(joinKey(this.location, key));
    return op === "put" ? `cat > ${where}` : `rm -f -- ${where}`;
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    const temp = join(dir, `.${TEMP_MARKER}${randomBytes(6).toString("hex")}`);
    let size = 0;
    try {
      // Opened before anyone reads the body: a "data" listener starts the flow at once.
      const file = new DurableFile(await openInFolder(temp));
      body.on("data", (chunk: Buffer) => {
        size += chunk.length;
      });
      await pipeline(body, file);
      try {
        // link() never replaces an existing file, unlike rename(): an old backup cannot be overwritten.
        await link(temp, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") throw alreadyExists(path);
        if (
          (error as NodeJS.ErrnoException).code !== "EPERM" &&
          (error as NodeJS.ErrnoException).code !== "ENOTSUP"
        )
          throw error;
        // Filesystems without hard links: check, then rename (a small race, documented).
        if (await this.stat(key)) throw alreadyExists(path);
        await rename(temp, path);
      }
      await unlink(temp).catch(() => {});
      await fsyncPath(dir);
    } catch (error) {
      await unlink(temp).catch(() => {});
      await rmdir(dir).catch(() => {}); // only if this left it empty
      if (error instanceof StorageError) throw error;
      throw new StorageError(`cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
    return { key, size };
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    try {
      const handle = await open(path, "r");
      return handle.createReadStream({ highWaterMark: 1024 * 1024 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT")
        throw new NotFoundError(`${path} does not exist`);
      throw new StorageError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const stats = await stat(this.pathOf(key));
      return stats.isFile() ? { key, size: stats.size, modified: stats.mtime } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw error;
    }
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.walk(prefix, false);
  }

  /** Temporary objects of uploads that never finished (runs killed mid-put): prune removes old ones. */
  listTemporary(prefix: string): AsyncIterable<ObjectInfo> {
    return this.walk(prefix, true);
  }

  private async *walk(prefix: string, temporary: boolean): AsyncIterable<ObjectInfo> {
    // Walk from the deepest folder the prefix names; filter the rest by string prefix.
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const start = this.pathOf(folder || ".");
    try {
      await lstat(start);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const entries = await readdir(start, { recursive: true, withFileTypes: true });
    for (const entry of entries) {
      if (!entry.isFile() || entry.name.startsWith(`.${TEMP_MARKER}`) !== temporary) continue;
      const full = join(entry.parentPath, entry.name);
      const key = relative(this.location, full).split(sep).join("/");
      if (!key.startsWith(prefix)) continue;
      const stats = await stat(full).catch(() => undefined);
      if (stats) yield { key, size: stats.size, modified: stats.mtime };
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await unlink(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    // The folder goes with its last object (a snapshot folder, once emptied); never the root.
    if (dirname(path) !== this.location) await rmdir(dirname(path)).catch(() => {});
  }
}

export const localStorage = defineStorage({
  type: "local",
  description: "A folder on a local or mounted disk; atomic, fsynced writes that never overwrite",
  schema: z.object({
    path: z.string().min(1).describe("root folder; relative paths are relative to the config file"),
  }),
  create: (options, env) => new LocalStorage(resolve(env.baseDir, options.path)),
});
