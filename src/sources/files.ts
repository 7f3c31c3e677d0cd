import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
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
  const input: Readable = createReadStream(path, { start: 0, end: size - 1, highWaterMark: 256 * 1024 });
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

async function addPath(walk: Walk, path: string, archiveName: string, relative: string): Promise<void> {
  if (walk.signal.aborted) throw walk.signal.reason;
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT" && relative !== "") {
      walk.logger.warn("file vanished during the backup", { path });
      return;
    }
    throw new SourceError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
  if (relative !== "" && (walk.excluded(relative) || walk.excluded(archiveName))) return;
  const header: TarHeader = {
    name: archiveName,
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    mtime: stats.mtime,
  };
  if (stats.isDirectory()) {
    let names: string[];
    try {
      names = (await readdir(path)).sort();
    } catch (error) {
      return unreadable(walk, path, error);
    }
    if (walk.options.include.length === 0 || relative === "")
      await addEntry(walk.pack, { ...header, name: `${archiveName}/`, type: "directory" });
    for (const name of names) {
      await addPath(
        walk,
        join(path, name),
        `${archiveName}/${name}`,
        relative ? `${relative}/${name}` : name,
      );
    }
    return;
  }
  if (
    relative !== "" &&
    walk.options.include.length > 0 &&
    !walk.included(relative) &&
    !walk.included(archiveName)
  )
    return;
  if (stats.isSymbolicLink()) {
    await addEntry(walk.pack, { ...header, type: "symlink", linkname: await readlink(path) });
  } else if (stats.isFile()) {
    const file = { ...header, type: "file" as const, size: stats.size };
    try {
      if (stats.size <= SMALL_FILE) await addEntry(walk.pack, file, await readFile(path));
      else await addLargeFile(walk, file, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") {
        walk.logger.warn("file vanished during the backup", { path });
        return;
      }
      if (stats.size <= SMALL_FILE) return unreadable(walk, path, error);
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
          for (const root of roots) await addPath(walk, root, basename(root), "");
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
