import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { accessSync, constants, createReadStream, lstatSync, readFileSync } from "node:fs";
import { readdir, readlink } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { PassThrough, type Readable, type Writable } from "node:stream";
import picomatch from "picomatch";
import * as tar from "tar-stream";
import { z } from "zod";
import { type Artifact, defineSource, type Logger } from "../kit/contracts.ts";
import { SourceError, UsageError } from "../kit/errors.ts";
import { spawnProducer } from "../kit/exec.ts";
import { findProgram } from "../kit/which.ts";
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
    engine: z
      .enum(["auto", "tar", "builtin"])
      .default("auto")
      .describe("auto: GNU tar writes the archive when installed (faster), else cairn's own writer"),
  })
  .refine((o) => new Set(o.paths.map((p) => basename(resolve(p)))).size === o.paths.length, {
    message: "paths must end in distinct names: each becomes a top-level folder of the archive",
  });

type Options = z.output<typeof schema>;

/** Receives the walk's entries in archive order and writes them into an archive. */
interface ArchiveWriter {
  /** Whether small files' contents should be read during the walk (the built-in writer needs them). */
  readsContent: boolean;
  directory(node: Node, stats: Stats): Promise<void>;
  symlink(node: Node, stats: Stats, target: string): Promise<void>;
  file(node: Node, stats: Stats, content: Buffer | undefined): Promise<void>;
}

interface Walk {
  writer: ArchiveWriter;
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
async function addLargeFile(pack: tar.Pack, logger: Logger, header: TarHeader, path: string): Promise<void> {
  const size = header.size ?? 0;
  let written = 0;
  const entry = await new Promise<{ sink: Writable; done: Promise<void> }>((resolveEntry) => {
    let sinkRef: Writable | undefined;
    const done = new Promise<void>((res, rej) => {
      sinkRef = pack.entry(header, (error) => (error ? rej(error) : res())) as unknown as Writable;
    });
    resolveEntry({ sink: sinkRef!, done });
  });
  const input: Readable = createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1024 * 1024 });
  for await (const chunk of input as AsyncIterable<Buffer>) {
    written += chunk.length;
    if (!entry.sink.write(chunk)) await new Promise((r) => entry.sink.once("drain", r));
  }
  if (written < size) {
    logger.warn("file shrank while being read; padded with zeros", { path });
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
    if (stats.isFile() && walk.writer.readsContent && stats.size <= SMALL_FILE)
      return { stats, content: readFileSync(path) };
    // The tar program reads the file itself later: only make sure it can.
    if (stats.isFile() && !walk.writer.readsContent) accessSync(path, constants.R_OK);
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
    if (walk.options.include.length === 0 || relative === "") await walk.writer.directory(node, stats);
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
    await walk.writer.symlink(node, stats, inspected.link);
  } else if (stats.isFile()) {
    await walk.writer.file(node, stats, inspected.content);
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

function builtinWriter(pack: tar.Pack, logger: Logger): ArchiveWriter {
  const header = (node: Node, stats: Stats): TarHeader => ({
    name: node.archiveName,
    mode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
    mtime: stats.mtime,
  });
  return {
    readsContent: true,
    directory: (node, stats) =>
      addEntry(pack, { ...header(node, stats), name: `${node.archiveName}/`, type: "directory" }),
    symlink: (node, stats, target) =>
      addEntry(pack, { ...header(node, stats), type: "symlink", linkname: target }),
    async file(node, stats, content) {
      // The file may have changed between lstat and read: the header must match what is sent.
      if (content)
        return addEntry(pack, { ...header(node, stats), type: "file", size: content.length }, content);
      try {
        await addLargeFile(
          pack,
          logger,
          { ...header(node, stats), type: "file", size: stats.size },
          node.path,
        );
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
        logger.warn("file vanished during the backup", { path: node.path });
      }
    },
  };
}

/** Feeds the names to GNU tar (`--null --files-from=-`), which reads and archives the files itself. */
function nameListWriter(names: PassThrough): ArchiveWriter {
  const add = async (node: Node) => {
    if (!names.write(`${node.archiveName}\0`)) await once(names, "drain");
  };
  return { readsContent: false, directory: add, symlink: add, file: add };
}

/** GNU tar, if that is what `tar` is on this machine. */
function findGnuTar(): string | undefined {
  const path = findProgram("tar");
  if (!path) return undefined;
  const version = spawnSync(path, ["--version"], { encoding: "utf8" });
  return version.status === 0 && version.stdout.includes("GNU tar") ? path : undefined;
}

async function walkAll(walk: Walk, roots: string[]): Promise<void> {
  for (const root of roots) {
    const node = { path: root, archiveName: basename(root), relative: "" };
    await addPath(walk, node, await inspect(walk, node));
  }
}

export const filesSource = defineSource({
  type: "files",
  description: "Files and folders as one tar stream: modes, mtimes, owners, symlinks and empty folders kept",
  schema,
  create(options, env) {
    const roots = options.paths.map((p) => resolve(env.baseDir, p));
    const parents = new Set(roots.map((root) => dirname(root)));
    return {
      async check() {
        const unreadable = roots.filter((root) => {
          try {
            accessSync(root, constants.R_OK);
            return false;
          } catch {
            return true;
          }
        });
        if (unreadable.length > 0)
          throw new SourceError(`cannot read ${unreadable.join(", ")}`, {
            hint: "check that the paths exist and that the user cairn runs as may read them",
          });
        return `${roots.length} path(s) readable${findGnuTar() ? ", GNU tar" : ", built-in tar writer"}`;
      },

      async *backup(ctx): AsyncIterable<Artifact> {
        const walk = (writer: ArchiveWriter): Walk => ({
          writer,
          logger: ctx.logger,
          options,
          included: matcher(options.include),
          excluded: matcher(options.exclude),
          signal: ctx.signal,
        });
        // GNU tar archives the walk's list itself, so its output can go straight to the compressor.
        // It needs one folder to work from: roots in different folders use the built-in writer.
        const gnuTar = options.engine !== "builtin" && parents.size === 1 ? findGnuTar() : undefined;
        if (options.engine === "tar" && !gnuTar)
          throw new SourceError("engine: tar needs GNU tar on PATH and all paths in one folder", {
            hint: "install tar, or use engine: auto",
          });
        const meta = { format: "tar", paths: roots, writer: gnuTar ? "GNU tar" : "cairn" };
        if (gnuTar) {
          const names = new PassThrough();
          const args = ["--create", "--file=-", "--format=posix", "--totals", "--ignore-failed-read"];
          args.push("-C", [...parents][0]!, "--null", "--no-recursion", "--files-from=-");
          const program = spawnProducer(gnuTar, args, {
            input: names,
            okCodes: [0, 1], // 1: a file changed while it was read; the archive is still complete
            signal: ctx.signal,
            logger: ctx.logger,
          });
          const walking = walkAll(walk(nameListWriter(names)), roots).then(() => {
            names.end();
          });
          walking.catch((error: Error) => names.destroy(error));
          let total: number | undefined;
          const completion = Promise.all([walking, program.completion]).then(([, stderr]) => {
            for (const line of stderr.split("\n")) {
              const written = /^Total bytes written: (\d+)/.exec(line);
              if (written) total = Number(written[1]);
              else if (line.trim()) ctx.logger.warn(line.replace(/^tar: /, "tar: "));
            }
          });
          completion.catch(() => {});
          yield { name: `${env.name}.tar`, stream: program.stdout, meta, completion, rawSize: () => total };
          await completion;
          return;
        }
        const pack = tar.pack();
        const producer = walkAll(walk(builtinWriter(pack, ctx.logger)), roots).then(() => pack.finalize());
        producer.catch((error) => pack.destroy(error));
        yield { name: `${env.name}.tar`, stream: pack as unknown as Readable, meta, allowEmpty: false };
        await producer;
      },
      restore: (_artifact, stream, target, ctx) => {
        if (!target.dir) throw new UsageError("a files backup restores into a folder: pass --to-dir DIR");
        return extractTar(stream, target.dir, ctx.logger);
      },
      verify: (_artifact, stream) => listTar(stream),
      restoreCommand: () => ({ prepare: "mkdir -p DIR", consume: "tar -x -p -C DIR" }),
    };
  },
});
