import { createWriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { type Artifact, defineSource, type PluginContext } from "../kit/contracts.ts";
import { SourceError, UsageError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { through } from "../kit/streams.ts";
import { findProgram, searchPath } from "../kit/which.ts";
import { restoreFile } from "./_tar.ts";

const INSTALL_HINT = "install redis-cli (Debian/Ubuntu: apt-get install redis-tools)";
const EOF_MARK_LENGTH = 40;

const schema = z.object({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(1).max(65535).default(6379),
  user: z.string().optional().describe("ACL user (Redis 6+)"),
  password: z
    .string()
    .optional()
    .describe("handed to redis-cli through its environment (REDISCLI_AUTH), never argv"),
  bin_dir: z.string().optional().describe("folder holding redis-cli and redis-check-rdb"),
});

type Options = z.output<typeof schema>;

/**
 * redis-cli 7.0 writes the 40-byte end-of-transfer mark after the RDB when it streams to stdout
 * (`--rdb -`). A real RDB ends with 0xFF and an 8-byte checksum, so a tail of 40 hex characters
 * right after that cannot be data: it is dropped. Newer redis-cli versions send no mark, and
 * nothing is dropped.
 */
class StripEofMark extends Transform {
  private tail: Buffer = Buffer.alloc(0);
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const all = this.tail.length ? Buffer.concat([this.tail, chunk]) : chunk;
    const keep = EOF_MARK_LENGTH + 9;
    this.tail = all.subarray(Math.max(0, all.length - keep));
    callback(null, all.subarray(0, Math.max(0, all.length - keep)));
  }
  override _flush(callback: TransformCallback): void {
    const t = this.tail;
    const mark = t.subarray(t.length - EOF_MARK_LENGTH);
    const isMark =
      t.length === EOF_MARK_LENGTH + 9 && t[0] === 0xff && /^[0-9a-f]{40}$/.test(mark.toString("latin1"));
    callback(null, isMark ? t.subarray(0, t.length - EOF_MARK_LENGTH) : t);
  }
}

function program(options: Options, name: string): string {
  return findProgram(name, searchPath(options.bin_dir)) ?? name;
}

function connection(options: Options, ctx: PluginContext) {
  const args = [
    "-h",
    options.host,
    "-p",
    String(options.port),
    ...(options.user ? ["--user", options.user] : []),
  ];
  const env = { REDISCLI_AUTH: options.password };
  return { args, exec: { signal: ctx.signal, logger: ctx.logger, env, installHint: INSTALL_HINT } };
}

async function checkRdb(options: Options, file: string, ctx: PluginContext): Promise<string> {
  const checker = findProgram("redis-check-rdb", searchPath(options.bin_dir));
  if (!checker) return "RDB stored (redis-check-rdb not installed: contents not checked)";
  const { stdout } = await runProgram(checker, [file], {
    signal: ctx.signal,
    logger: ctx.logger,
    captureStdout: true,
  });
  const keys = /(\d+) keys read/.exec(stdout)?.[1];
  return `redis-check-rdb: OK${keys ? `, ${keys} keys` : ""}`;
}

export const redisSource = defineSource({
  type: "redis",
  tools: [{ names: ["redis-cli"], purpose: "Redis backups", install: INSTALL_HINT }],
  description: "A live Redis server's dataset as an RDB snapshot, taken by replication (redis-cli --rdb)",
  schema,
  secrets: ["password"],
  create(options, env) {
    return {
      async check(ctx) {
        const { args, exec } = connection(options, ctx);
        const { stdout } = await runProgram(program(options, "redis-cli"), [...args, "INFO", "server"], {
          ...exec,
          captureStdout: true,
        });
        const version = /redis_version:(\S+)/.exec(stdout)?.[1];
        if (!version)
          throw new SourceError(
            `redis-cli got no server INFO from ${options.host}:${options.port}: ${stdout.trim().slice(0, 200)}`,
          );
        return `Redis ${version} at ${options.host}:${options.port}`;
      },

      async *backup(ctx): AsyncIterable<Artifact> {
        const { args, exec } = connection(options, ctx);
        const cli = program(options, "redis-cli");
        const { stdout: info } = await runProgram(cli, [...args, "INFO", "server"], {
          ...exec,
          captureStdout: true,
        });
        const version = /redis_version:(\S+)/.exec(info)?.[1];
        if (!version)
          throw new SourceError(`no Redis server answers at ${options.host}:${options.port}: ${info.trim()}`);
        const { stdout: size } = await runProgram(cli, [...args, "DBSIZE"], { ...exec, captureStdout: true });
        const dump = spawnOutput(cli, [...args, "--rdb", "-"], exec);
        yield {
          name: `${env.name}.rdb`,
          stream: through(dump, new StripEofMark()),
          meta: {
            serverVersion: version,
            keysInDb0: Number(size.trim()) || 0,
            host: options.host,
            port: options.port,
          },
        };
      },

      async restore(_artifact, stream, target, ctx) {
        if (!target.dir)
          throw new UsageError(
            "a Redis backup restores as an RDB file: pass --to-dir DIR, then start redis-server on it",
          );
        const file = await restoreFile(stream, target.dir, "dump.rdb", (path) =>
          checkRdb(options, path, ctx),
        );
        return `wrote ${file}: start redis-server --dir ${dirname(file)} --dbfilename dump.rdb`;
      },

      async verify(_artifact, stream, ctx) {
        const file = join(ctx.workDir, "verify.rdb");
        await pipeline(stream, createWriteStream(file, { flags: "wx", mode: 0o600 }));
        return checkRdb(options, file, ctx);
      },

      restoreCommand: () => ({ prepare: "mkdir -p DIR", consume: "cat > DIR/dump.rdb" }),
    };
  },
});
