/**
 * Safe tar extraction: nothing is written outside the target (no absolute names, no `..`, nothing
 * through a symlink from the archive), and the target appears only once the whole stream
 * authenticated and unpacked (it is built in a staging folder beside it, then renamed).
 */
import { constants, createWriteStream } from "node:fs";
import {
  chmod,
  type FileHandle,
  lchown,
  link,
  lstat,
  lutimes,
  mkdir,
  mkdtemp,
  open,
  readdir,
  rename,
  rm,
  rmdir,
  symlink,
} from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import type { Logger } from "../kit/contracts.ts";
import { RestoreError } from "../kit/errors.ts";

/** Splits an archive name into safe relative segments, or throws. */
export function safeSegments(name: string): string[] {
  if (name.startsWith("/") || /^[A-Za-z]:[\\/]/.test(name))
    throw new RestoreError(`archive entry "${name}" has an absolute path: refused`);
  const segments = name.split("/").filter((s) => s !== "" && s !== ".");
  if (segments.includes(".."))
    throw new RestoreError(`archive entry "${name}" climbs out with "..": refused`);
  if (segments.length === 0) throw new RestoreError(`archive entry "${name}" has an empty name: refused`);
  return segments;
}

/** The target must be missing or an empty folder: a restore never mixes with or overwrites existing files. */
export async function assertRestorable(target: string): Promise<boolean> {
  try {
    const stats = await lstat(target);
    if (!stats.isDirectory())
      throw new RestoreError(`${target} exists and is not a folder`, { hint: "choose a new folder" });
    if ((await readdir(target)).length > 0)
      throw new RestoreError(`${target} is not empty`, {
        hint: "restore into a new or empty folder; cairn never overwrites",
      });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

/** Creates a private staging folder next to `target` (same filesystem, so the final rename is atomic). */
export async function stagingFor(target: string): Promise<string> {
  await mkdir(dirname(target), { recursive: true });
  return mkdtemp(join(dirname(target), `.${basename(target)}.cairn-restore-`));
}

/** Moves a finished staging folder into place. */
export async function publish(staging: string, target: string): Promise<void> {
  await chmod(staging, 0o755);
  if (await assertRestorable(target)) await rmdir(target);
  await rename(staging, target);
}

/**
 * Writes a stream as one file into a new or empty folder, through a staging folder: the file
 * appears only once it is whole and `check` (e.g. an integrity check) accepted it.
 */
export async function restoreFile(
  stream: Readable,
  targetDir: string,
  fileName: string,
  check?: (path: string) => Promise<unknown>,
): Promise<string> {
  const dir = resolve(targetDir);
  await assertRestorable(dir);
  const staging = await stagingFor(dir);
  try {
    await pipeline(stream, createWriteStream(join(staging, fileName), { flags: "wx", mode: 0o600 }));
    await check?.(join(staging, fileName));
    await publish(staging, dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return join(dir, fileName);
}

export async function extractTar(stream: Readable, targetDir: string, logger: Logger): Promise<string> {
  const target = resolve(targetDir);
  await assertRestorable(target);
  const staging = await stagingFor(target);
  const isRoot = process.getuid?.() === 0;
  const symlinks = new Set<string>();
  /** Folders the archive made (relative name → where): a later entry may never replace one. */
  const folders = new Map<string, string>();
  const dirs: { path: string; mode: number; mtime: Date }[] = [];
  const counts = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };

  const place = (name: string): { path: string; relative: string } => {
    const segments = safeSegments(name);
    for (let i = 1; i < segments.length; i++) {
      const prefix = segments.slice(0, i).join("/");
      if (symlinks.has(prefix))
        throw new RestoreError(
          `archive entry "${name}" would be written through the symlink "${prefix}": refused`,
        );
    }
    const relative = segments.join("/");
    if (symlinks.has(relative))
      throw new RestoreError(`archive entry "${name}" would replace the symlink "${relative}": refused`);
    return { path: join(staging, ...segments), relative };
  };
  const notAFolder = (name: string, relative: string) => {
    if (folders.has(relative))
      throw new RestoreError(`archive entry "${name}" would replace the folder "${relative}": refused`);
  };

  const finishLink = async (path: string, header: tar.Header) => {
    if (isRoot && header.uid !== undefined && header.gid !== undefined)
      await lchown(path, header.uid, header.gid);
    const mtime = header.mtime ?? new Date();
    await lutimes(path, mtime, mtime);
  };
  /** Owner, mode and time through the open file itself: nothing can redirect them elsewhere. */
  const finishFile = async (file: FileHandle, header: tar.Header) => {
    if (isRoot && header.uid !== undefined && header.gid !== undefined)
      await file.chown(header.uid, header.gid);
    await file.chmod((header.mode ?? 0o644) & 0o7777);
    const mtime = header.mtime ?? new Date();
    await file.utimes(mtime, mtime);
  };

  const handle = async (header: tar.Header, entry: Readable) => {
    if (header.type === "directory" && /^(\.\/?)+$/.test(header.name)) {
      entry.resume(); // the archive's own root (`tar -C dir -cf - .` writes "./")
      return;
    }
    const { path, relative } = place(header.name);
    if (header.type !== "directory") notAFolder(header.name, relative);
    switch (header.type) {
      case "directory":
        await mkdir(path, { recursive: true, mode: 0o700 });
        folders.set(relative, path);
        dirs.push({ path, mode: (header.mode ?? 0o755) & 0o7777, mtime: header.mtime ?? new Date() });
        counts.dirs++;
        entry.resume();
        return;
      case "file":
      case "contiguous-file": {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        await rm(path, { force: true });
        const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
        const file = await open(path, flags, 0o600);
        try {
          for await (const chunk of entry as AsyncIterable<Buffer>) await file.write(chunk);
          await finishFile(file, header);
        } finally {
          await file.close();
        }
        counts.files++;
        counts.bytes += header.size ?? 0;
        return;
      }
      case "symlink":
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        await rm(path, { force: true, recursive: true });
        await symlink(header.linkname ?? "", path);
        await finishLink(path, header);
        symlinks.add(relative);
        counts.symlinks++;
        entry.resume();
        return;
      case "link": {
        const source = place(header.linkname ?? "");
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        await link(source.path, path);
        counts.files++;
        entry.resume();
        return;
      }
      default:
        logger.warn("skipping special archive entry", { name: header.name, type: header.type });
        entry.resume();
    }
  };

  try {
    const extract = tar.extract();
    extract.on("entry", (header, entry, next) => {
      entry.on("error", () => {}); // the pipeline below reports the cause
      handle(header, entry as unknown as Readable).then(
        () => next(),
        (error) => next(error),
      );
    });
    await pipeline(stream, extract as unknown as NodeJS.WritableStream);
    for (const dir of dirs.reverse()) await finishFolder(dir);
    await publish(staging, target);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  return `${counts.files} files, ${counts.dirs} folders, ${counts.symlinks} symlinks, ${counts.bytes} bytes of file data`;
}

/** A folder's mode and time, set through a handle that refuses to follow a symlink. */
async function finishFolder(dir: { path: string; mode: number; mtime: Date }): Promise<void> {
  const handle = await open(dir.path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await handle.chmod(dir.mode);
    await handle.utimes(dir.mtime, dir.mtime);
  } finally {
    await handle.close();
  }
}

/** Reads a whole tar stream and reports what it holds; errors if it is not a complete archive. */
export async function listTar(stream: Readable): Promise<string> {
  let entries = 0;
  let bytes = 0;
  const extract = tar.extract();
  extract.on("entry", (header, entry, next) => {
    entry.on("error", () => {}); // the pipeline below reports the cause
    entries++;
    bytes += header.size ?? 0;
    entry.on("end", () => next());
    entry.resume();
  });
  await pipeline(stream, extract as unknown as NodeJS.WritableStream);
  if (entries === 0) throw new RestoreError("the archive holds no entries");
  return `tar archive with ${entries} entries, ${bytes} bytes of file data`;
}
