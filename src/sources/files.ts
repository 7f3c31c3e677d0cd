import { createReadStream, lstatSync, readFileSync } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { Readable, Writable } from "node:stream";
import picomatch from "picomatch";
import * as tar from "tar-stream";
import { z } from "zod";
import { SourceError } from "../errors.ts";
import { type Artifact, defineSource, type Logger } from "../types.ts";
import { extractTar, listTar } from "./_tar.ts";

const SMALL_FILE = 1024 * 1024;

type TarHeader = Partial<tar.Header> & { name: string };

const schema = z
  .object({
    paths: z
      .array(z.string().min(1))
      .min(1)
      .describe("files or folders; relative paths are relative to the config file"),
    include: z.array(z.string()).default([]).describe("globs: when given, only matching files are kept"),
    exclude: z.array(z.string()).default([]).describe("globs of files and folders to leave out"),
    skip_unreadable: z.boolean().default(false).describe("warn about unreadable files instead of failing"),
  })
  .refine((o) => new Set(o.paths.map((p) => basename(resolve(p)))).size === o.paths.length, {
    message: "paths must end in distinct names: each becomes a top-level folder of the archive",
  });

type Options = z.output<typeof schema>;

interface Walk {
  pack: tar.Pack;
  logger: Logger;
  options: Options;
  included: (path: string) => boolean;
  excluded: (path: string) => boolean;
  signal: AbortSignal;
}

function addEntry(pack: tar.Pack, header: TarHeader, body?: Buffer): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const done = (error?: Error | null) => (error ? reject(error) : resolvePromise());
    if (body) pack.entry(header, body, done);
    else pack.entry(header, done);
  });
}

/** Streams exactly `size` bytes: a file that shrank while read is padded (with a warning), one that grew is cut. */
async function addLargeFile(walk: Walk, header: TarHeader, path: string): Promise<void> {
  const size = header.size ?? 0;
  let written = 0;
  const entry = await new Promise<{ sink: Writable; done: Promise<void> }>((resolveEntry) => {
    let sinkRef: Writable | undefined;
    const done = new Promise<void>((res, rej) => {
      sinkRef = walk.pack.entry(header, (error) => (error ? rej(error) : res())) as unknown as Writable;
    });
    resolveEntry({ sink: sinkRef!, done });
  });
  const input: Readable = createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1024 * 1024 });
  for await (const chunk of input as AsyncIterable<Buffer>) {
    written += chunk.length;
    if (!entry.sink.write(chunk)) await new Promise((r) => entry.sink.once("drain", r));
  }
  if (written < size) {
    walk.logger.warn("file shrank while being read; padded with zeros", { path });
    entry.sink.write(Buffer.alloc(size - written));
  }
  entry.sink.end();
  await entry.done;
}

interface Node {
  path: string;
  archiveName: string;
  /** Path below the root it came from; "" for the root itself. */
  relative: string;
}

type Stats = import("node:fs").Stats;

/** What one path is, read ahead of its turn. Never rejects: failures are data, decided on in order. */
interface Inspected {
  skip?: boolean;
  stats?: Stats;
  error?: unknown;
  content?: Buffer;
  contentError?: unknown;
  link?: string;
}

async function inspect(walk: Walk, node: Node): Promise<Inspected> {
  const { path, relative, archiveName } = node;
  if (relative !== "" && (walk.excluded(relative) || walk.excluded(archiveName))) return { skip: true };
  let stats: Stats;
  try {
    stats = lstatSync(path);
  } catch (error) {
    return { error };
  }
  if (stats.isDirectory()) return { stats };
  const include = walk.options.include;
  if (relative !== "" && include.length > 0 && !walk.included(relative) && !walk.included(archiveName))
    return { skip: true };
  try {
    if (stats.isSymbolicLink()) return { stats, link: await readlink(path) };
    if (stats.isFile() && stats.size <= SMALL_FILE) return { stats, content: readFileSync(path) };
  } catch (contentError) {
    return { stats, contentError };
  }
  return { stats };
}

/**
 * Yields `fn(item)` in order while keeping up to `window` calls in flight: reading many small files
 * one after another waits on the disk (and the thread pool) for each; reading ahead hides that.
 */
async function* readAhead<T, R>(
  items: T[],
  fn: (item: T) => Promise<R>,
  window: number,
): AsyncIterable<[T, R]> {
  const inFlight: Promise<R>[] = [];
  let next = 0;
  for (let i = 0; i < items.length; i++) {
    while (next < items.length && inFlight.length < window) inFlight.push(fn(items[next++]!));
    yield [items[i]!, await inFlight.shift()!];
  }
}

const READ_AHEAD = 16;

async function addPath(walk: Walk, node: Node, inspected: Inspected): Promise<void> {
  if (walk.signal.aborted) throw walk.signal.reason;
  const { path, archiveName, relative } = node;
  if (inspected.skip) return;
  if (!inspected.stats) {
    const error = inspected.error as NodeJS.ErrnoException;
    if (error.code === "ENOENT" && relative !== "") {
      walk.logger.warn("file vanished during the backup", { path });
      return;
    }
    throw new SourceError(`cannot read ${path}: ${error.message}`, { cause: error });
  }
  const stats = inspected.stats;
  const header: TarHeader = {
    name: archiveName,
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    mtime: stats.mtime,
  };
  if (inspected.contentError) {
    if ((inspected.contentError as NodeJS.ErrnoException).code === "ENOENT") {
      walk.logger.warn("file vanished during the backup", { path });
      return;
    }
    return unreadable(walk, path, inspected.contentError);
  }
  if (stats.isDirectory()) {
    let names: string[];
    try {
      names = (await readdir(path)).sort();
    } catch (error) {
      return unreadable(walk, path, error);
    }
    if (walk.options.include.length === 0 || relative === "")
      await addEntry(walk.pack, { ...header, name: `${archiveName}/`, type: "directory" });
    const children = names.map((name) => ({
      path: join(path, name),
      archiveName: `${archiveName}/${name}`,
      relative: relative ? `${relative}/${name}` : name,
    }));
    for await (const [child, info] of readAhead(children, (c) => inspect(walk, c), READ_AHEAD))
      await addPath(walk, child, info);
    return;
  }
  if (inspected.link !== undefined) {
    await addEntry(walk.pack, { ...header, type: "symlink", linkname: inspected.link });
  } else if (stats.isFile()) {
    const file = { ...header, type: "file" as const, size: stats.size };
    if (inspected.content) {
      // The file may have changed between lstat and read: the header must match what we send.
      await addEntry(walk.pack, { ...file, size: inspected.content.length }, inspected.content);
      return;
    }
    try {
      await addLargeFile(walk, file, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        walk.logger.warn("file vanished during the backup", { path });
        return;
      }
      throw error;
    }
  } else {
    walk.logger.warn("skipping special file (socket, FIFO or device)", { path });
  }
}

function unreadable(walk: Walk, path: string, error: unknown): void {
  const message = `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  if (!walk.options.skip_unreadable)
    throw new SourceError(message, {
      hint: "fix the permissions, exclude it, or set skip_unreadable: true",
      cause: error,
    });
  walk.logger.warn(message);
}

function matcher(globs: string[]): (relative: string) => boolean {
  if (globs.length === 0) return () => false;
  const match = picomatch(globs, { dot: true });
  return (relative) => match(relative);
}

export const filesSource = defineSource({
  type: "files",
  description: "Files and folders as one tar stream: modes, mtimes, owners, symlinks and empty folders kept",
  schema,
  create(options, env) {
    const roots = options.paths.map((p) => resolve(env.baseDir, p));
    return {
      async *backup(ctx): AsyncIterable<Artifact> {
        const pack = tar.pack();
        const walk: Walk = {
          pack,
          logger: ctx.logger,
          options,
          included: matcher(options.include),
          excluded: matcher(options.exclude),
          signal: ctx.signal,
        };
        const producer = (async () => {
          for (const root of roots) {
            const node = { path: root, archiveName: basename(root), relative: "" };
            await addPath(walk, node, await inspect(walk, node));
          }
          pack.finalize();
        })();
        producer.catch((error) => pack.destroy(error));
        yield {
          name: `${env.name}.tar`,
          stream: pack as unknown as Readable,
          meta: { format: "tar", paths: roots },
          allowEmpty: false,
        };
        await producer;
      },
      restore: (_artifact, stream, target, ctx) => {
        if (!target.dir) throw new SourceError("a files backup restores into a folder: pass --to-dir DIR");
        return extractTar(stream, target.dir, ctx.logger);
      },
      verify: (_artifact, stream) => listTar(stream),
      restoreCommand: () => ({ prepare: "mkdir -p DIR", consume: "tar -x -p -C DIR" }),
    };
  },
});
