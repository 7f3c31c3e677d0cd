import { existsSync, readdirSync, realpathSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import { runProgram, spawnOutput } from "../core/exec.ts";
import { findProgram } from "../core/which.ts";
import { RestoreError, SourceError, UsageError } from "../errors.ts";
import { type Artifact, defineSource, type PluginContext } from "../types.ts";

const INSTALL_HINT = "install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-client)";

const schema = z.object({
  database: z.string().min(1).describe("database to back up"),
  host: z.string().optional().describe("host name or socket folder; default: libpq's default (local socket)"),
  port: z.number().int().min(1).max(65535).default(5432),
  user: z.string().optional().describe("role to connect as; default: libpq's default"),
  password: z.string().optional().describe("handed to pg_dump through a private 0600 passfile, never argv"),
  sslmode: z.enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]).optional(),
  bin_dir: z
    .string()
    .optional()
    .describe("folder holding pg_dump/pg_restore/psql, e.g. /usr/lib/postgresql/16/bin"),
  dump_options: z
    .array(z.string())
    .default([])
    .describe("extra pg_dump arguments, e.g. [--exclude-table=logs]"),
  restore_options: z.array(z.string()).default([]).describe("extra pg_restore arguments, e.g. [--no-owner]"),
  maintenance_database: z.string().default("postgres").describe("database used to create the restore target"),
});

type Options = z.output<typeof schema>;

/** Escapes a value for a libpq passfile line (`:` and `\` are special). */
function passfileField(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
}

/** A conninfo `dbname='…'` so that names with `=` or spaces stay names. */
function dbnameConninfo(name: string): string {
  return `dbname='${name.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** Every installed copy of a PostgreSQL client program: the configured folder only, or Debian's versioned folders and PATH. */
function candidates(name: string, binDir: string | undefined): string[] {
  if (binDir) return [join(binDir, name)];
  let versioned: string[] = [];
  try {
    versioned = readdirSync("/usr/lib/postgresql").map((v) => join("/usr/lib/postgresql", v, "bin", name));
  } catch {}
  const onPath = findProgram(name);
  const all = [...versioned, ...(onPath ? [onPath] : [])].filter((p) => existsSync(p));
  const seen = new Set<string>();
  return all.filter((p) => {
    const real = realpathSync(p);
    if (seen.has(real)) return false;
    seen.add(real);
    return true;
  });
}

/**
 * The client to use against a server: the same major version, else the nearest newer one (pg_dump
 * refuses older servers' successors, and an older pg_dump cannot dump a newer server). Fails
 * before anything is dumped, naming what was found and what to install.
 */
async function clientFor(
  name: "pg_dump" | "pg_restore",
  serverVersion: string,
  options: Options,
  ctx: PluginContext,
): Promise<{ path: string; version: string }> {
  const serverMajor = Number.parseInt(serverVersion, 10);
  const found: { path: string; version: string; major: number }[] = [];
  for (const path of candidates(name, options.bin_dir)) {
    try {
      const { stdout } = await runProgram(path, ["--version"], {
        signal: ctx.signal,
        logger: ctx.logger,
        captureStdout: true,
      });
      const version = /(\d+(?:\.\d+)?)/.exec(stdout)?.[1];
      if (version) found.push({ path, version, major: Number.parseInt(version, 10) });
    } catch {}
  }
  const fit = found.filter((c) => c.major >= serverMajor).sort((a, b) => a.major - b.major)[0];
  if (fit) return fit;
  const list = found.length ? found.map((c) => `${c.version} (${c.path})`).join(", ") : "none";
  throw new SourceError(
    `the PostgreSQL server is version ${serverVersion}, and no ${name} of version ${serverMajor} or newer is installed (found: ${list})`,
    { hint: `install postgresql-client-${serverMajor} (Debian/Ubuntu), or point bin_dir at a newer client` },
  );
}

class Postgres {
  private readonly options: Options;
  private readonly ctx: PluginContext;
  constructor(options: Options, ctx: PluginContext) {
    this.options = options;
    this.ctx = ctx;
  }

  program(name: "pg_restore" | "psql"): string {
    return this.options.bin_dir ? join(this.options.bin_dir, name) : name;
  }

  /** libpq settings through the environment; the password through a 0600 passfile in the private work dir. */
  async env(database: string): Promise<Record<string, string | undefined>> {
    const o = this.options;
    let passfile: string | undefined;
    if (o.password !== undefined) {
      passfile = join(this.ctx.workDir, "pgpass");
      await writeFile(passfile, `*:*:*:*:${passfileField(o.password)}\n`, { mode: 0o600 });
    }
    return {
      PGHOST: o.host,
      PGPORT: String(o.port),
      PGUSER: o.user,
      PGDATABASE: database,
      PGSSLMODE: o.sslmode,
      PGAPPNAME: "cairn",
      PGCONNECT_TIMEOUT: "15",
      ...(passfile ? { PGPASSFILE: passfile, PGPASSWORD: undefined } : {}),
    };
  }

  exec() {
    return { signal: this.ctx.signal, logger: this.ctx.logger, installHint: INSTALL_HINT };
  }

  async psql(sql: string, variables: Record<string, string>, database: string): Promise<string> {
    const args = ["--no-psqlrc", "--no-align", "--tuples-only", "--no-password", "-v", "ON_ERROR_STOP=1"];
    for (const [key, value] of Object.entries(variables)) args.push("-v", `${key}=${value}`);
    const { stdout } = await runProgram(this.program("psql"), args, {
      ...this.exec(),
      env: await this.env(database),
      stdin: Readable.from([sql]),
      captureStdout: true,
    });
    return stdout.trim();
  }
}

export const postgresSource = defineSource({
  type: "postgres",
  description: "One PostgreSQL database with pg_dump (custom format, uncompressed: cairn compresses)",
  schema,
  secrets: ["password"],
  create(options, env) {
    return {
      async *backup(ctx): AsyncIterable<Artifact> {
        const pg = new Postgres(options, ctx);
        const environment = await pg.env(options.database);
        const serverVersion = await pg.psql("SHOW server_version", {}, options.database);
        const client = await clientFor("pg_dump", serverVersion, options, ctx);
        ctx.logger.debug("dumping PostgreSQL database", {
          database: options.database,
          server: serverVersion,
        });
        const args = ["--format=custom", "--compress=0", "--no-password", ...options.dump_options];
        yield {
          name: `${env.name}.pgdump`,
          stream: spawnOutput(client.path, args, { ...pg.exec(), env: environment }),
          meta: {
            database: options.database,
            host: options.host ?? null,
            port: options.port,
            format: "custom",
            serverVersion,
            client: `pg_dump ${client.version}`,
          },
        };
      },

      async restore(_artifact, stream, target, ctx) {
        const database = target.database;
        if (!database)
          throw new UsageError("a PostgreSQL backup restores into a database: pass --to-database NAME");
        const pg = new Postgres(options, ctx);
        const maintenance = options.maintenance_database;
        const exists =
          (await pg.psql(
            "SELECT 1 FROM pg_database WHERE datname = :'db'",
            { db: database },
            maintenance,
          )) === "1";
        if (!exists) await pg.psql('CREATE DATABASE :"db"', { db: database }, maintenance);
        const args = [
          "--single-transaction",
          "--exit-on-error",
          "--no-password",
          ...options.restore_options,
          `--dbname=${dbnameConninfo(database)}`,
        ];
        try {
          await runProgram(pg.program("pg_restore"), args, {
            ...pg.exec(),
            env: await pg.env(database),
            stdin: stream,
          });
        } catch (error) {
          // One transaction: an existing database is untouched; one we created goes away again.
          if (!exists)
            await pg.psql('DROP DATABASE IF EXISTS :"db"', { db: database }, maintenance).catch((dropError) =>
              ctx.logger.warn("could not drop the partly restored database", {
                database,
                error: dropError,
              }),
            );
          throw error;
        }
        return `restored into ${exists ? "the existing" : "the new"} database ${database}`;
      },

      async verify(_artifact, stream, ctx) {
        const pg = new Postgres(options, ctx);
        const { stdout } = await runProgram(pg.program("pg_restore"), ["--list"], {
          ...pg.exec(),
          stdin: stream,
          stdinMayCloseEarly: true,
          captureStdout: true,
        });
        const entries = stdout.split("\n").filter((line) => line.trim() && !line.startsWith(";")).length;
        if (entries === 0) throw new RestoreError("pg_restore --list found no entries in the dump");
        return `pg_restore --list: ${entries} entries`;
      },

      restoreCommand: () => ({
        prepare: "createdb NEWDB",
        consume: "pg_restore --single-transaction --exit-on-error -d NEWDB",
      }),
    };
  },
});
