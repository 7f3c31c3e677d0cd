import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { z } from "zod";
import { type Artifact, defineSource, type PluginContext } from "../kit/contracts.ts";
import { SourceError, UsageError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { through } from "../kit/streams.ts";
import { findProgram, searchPath } from "../kit/which.ts";

const INSTALL_HINT = "install the MongoDB Database Tools (mongodump, mongorestore) from MongoDB's packages";
/** A mongodump archive starts with this magic number (0x8199e26d, little-endian). */
const ARCHIVE_MAGIC = Buffer.from([0x6d, 0xe2, 0x99, 0x81]);

const schema = z.object({
  uri: z
    .string()
    .optional()
    .describe("mongodb:// or mongodb+srv:// URI; may hold the password (kept off argv)"),
  host: z.string().optional().describe("host, when no uri is given"),
  port: z.number().int().min(1).max(65535).optional(),
  user: z.string().optional(),
  password: z.string().optional().describe("handed to mongodump through a 0600 --config file, never argv"),
  auth_source: z.string().optional().describe("authentication database (authSource)"),
  database: z.string().optional().describe("only this database; default: all"),
  collection: z.string().optional().describe("only this collection (needs database)"),
  bin_dir: z.string().optional().describe("folder holding mongodump and mongorestore"),
  dump_options: z.array(z.string()).default([]),
  restore_options: z.array(z.string()).default([]),
});

type Options = z.output<typeof schema>;

function yamlString(value: string): string {
  return JSON.stringify(value); // a JSON string is a valid YAML double-quoted scalar
}

/** Connection arguments; the URI and password go into a 0600 YAML file (mongodump's --config). */
async function connection(options: Options, ctx: PluginContext): Promise<string[]> {
  const secrets: string[] = [];
  if (options.uri) secrets.push(`uri: ${yamlString(options.uri)}`);
  if (options.password !== undefined) secrets.push(`password: ${yamlString(options.password)}`);
  const args: string[] = [];
  if (secrets.length > 0) {
    const file = join(ctx.workDir, "mongo.yaml");
    await writeFile(file, `${secrets.join("\n")}\n`, { mode: 0o600 });
    args.push(`--config=${file}`);
  }
  if (options.host) args.push(`--host=${options.host}`);
  if (options.port) args.push(`--port=${options.port}`);
  if (options.user) args.push(`--username=${options.user}`);
  if (options.auth_source) args.push(`--authenticationDatabase=${options.auth_source}`);
  return args;
}

function program(options: Options, name: string): string {
  return findProgram(name, searchPath(options.bin_dir)) ?? name;
}

/** Fails unless the stream starts like a mongodump archive. */
class MagicCheck extends Transform {
  private head: Buffer = Buffer.alloc(0);
  private checked = false;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.checked) {
      this.head = Buffer.concat([this.head, chunk]).subarray(0, 4);
      if (this.head.length === 4) {
        this.checked = true;
        if (!this.head.equals(ARCHIVE_MAGIC)) {
          callback(new SourceError("not a mongodump archive"));
          return;
        }
      }
    }
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    callback(this.checked ? null : new SourceError("the mongodump archive is empty or cut short"));
  }
}

export const mongodbSource = defineSource({
  type: "mongodb",
  tools: [{ names: ["mongodump"], purpose: "MongoDB dumps", install: INSTALL_HINT }],
  description:
    "MongoDB with mongodump --archive (all databases, one, or one collection); restore with mongorestore",
  schema: schema.refine((o) => !o.collection || o.database, { message: "collection needs database" }),
  secrets: ["password", "uri"],
  create(options, env) {
    return {
      async *backup(ctx): AsyncIterable<Artifact> {
        const args = [...(await connection(options, ctx)), "--archive", "--quiet"];
        if (options.database) args.push(`--db=${options.database}`);
        if (options.collection) args.push(`--collection=${options.collection}`);
        args.push(...options.dump_options);
        const exec = { signal: ctx.signal, logger: ctx.logger, installHint: INSTALL_HINT };
        const dump = spawnOutput(program(options, "mongodump"), args, exec);
        yield {
          name: `${env.name}.archive`,
          stream: through(dump, new MagicCheck()),
          meta: {
            database: options.database ?? null,
            collection: options.collection ?? null,
            format: "mongodump archive",
          },
        };
      },

      async restore(artifact, stream, target, ctx) {
        const from = artifact.meta.database as string | null;
        if (!target.database)
          throw new UsageError("a MongoDB backup restores into a database: pass --to-database NAME");
        if (!from)
          throw new UsageError(
            "this backup holds several databases: restore it with mongorestore (see docs/sources/mongodb.md)",
          );
        const args = [
          ...(await connection(options, ctx)),
          "--archive",
          `--nsFrom=${from}.*`,
          `--nsTo=${target.database}.*`,
          "--stopOnError",
          ...options.restore_options,
        ];
        const checked = through(stream, new MagicCheck());
        await runProgram(program(options, "mongorestore"), args, {
          signal: ctx.signal,
          logger: ctx.logger,
          installHint: INSTALL_HINT,
          stdin: checked,
        });
        return `restored ${from} into the database ${target.database}`;
      },

      async verify(_artifact, stream) {
        let bytes = 0;
        const check = through(stream, new MagicCheck());
        for await (const chunk of check as AsyncIterable<Buffer>) bytes += chunk.length;
        return `mongodump archive of ${bytes} bytes`;
      },

      restoreCommand: (artifact) => ({
        consume: artifact.meta.database
          ? `mongorestore --archive --nsFrom='${artifact.meta.database}.*' --nsTo='NEWDB.*'`
          : "mongorestore --archive",
      }),
    };
  },
});
