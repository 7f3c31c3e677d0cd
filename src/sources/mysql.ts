import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import { runProgram, spawnOutput } from "../core/exec.ts";
import { EndMarkerCheck, through } from "../core/streams.ts";
import { findProgram, searchPath } from "../core/which.ts";
import { RestoreError, SourceError, UsageError } from "../errors.ts";
import { type Artifact, defineSource, type PluginContext } from "../types.ts";

const INSTALL_HINT = "install the MariaDB or MySQL client (Debian/Ubuntu: apt-get install mariadb-client)";
const DUMP_COMPLETED = "-- Dump completed";

const schema = z.object({
  database: z.string().min(1).describe("database to back up"),
  host: z.string().optional().describe("host name; default: the client's default (local socket)"),
  port: z.number().int().min(1).max(65535).default(3306),
  socket: z.string().optional().describe("Unix socket path, instead of host and port"),
  user: z.string().optional().describe("user to connect as; default: the client's default"),
  password: z
    .string()
    .optional()
    .describe("handed to the client through a private 0600 defaults file, never argv"),
  lock_tables: z
    .enum(["auto", "always", "never"])
    .default("auto")
    .describe("auto: --single-transaction, or table locks when MyISAM tables are found"),
  bin_dir: z.string().optional().describe("folder holding mariadb-dump/mysqldump and mariadb/mysql"),
  dump_options: z
    .array(z.string())
    .default([])
    .describe("extra dump arguments, e.g. [--ignore-table=app.sessions]"),
});

type Options = z.output<typeof schema>;

/** Quotes a value for an option file (my.cnf syntax). */
function optionValue(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

class MySql {
  private readonly options: Options;
  private readonly ctx: PluginContext;
  private defaultsFile: string | undefined;

  constructor(options: Options, ctx: PluginContext) {
    this.options = options;
    this.ctx = ctx;
  }

  /** `mariadb-dump` / `mariadb` where installed, else `mysqldump` / `mysql`. */
  program(kind: "dump" | "client"): string {
    const names = kind === "dump" ? ["mariadb-dump", "mysqldump"] : ["mariadb", "mysql"];
    const path = searchPath(this.options.bin_dir);
    for (const name of names) {
      const found = findProgram(name, path);
      if (found) return found;
    }
    return names[0]!;
  }

  /** Connection settings and the password in a 0600 option file: it must be the first argument. */
  async connectionArgs(): Promise<string[]> {
    if (!this.defaultsFile) {
      const o = this.options;
      const lines = ["[client]"];
      if (o.host) lines.push(`host=${optionValue(o.host)}`);
      if (o.socket) lines.push(`socket=${optionValue(o.socket)}`);
      lines.push(`port=${o.port}`);
      if (o.user) lines.push(`user=${optionValue(o.user)}`);
      if (o.password !== undefined) lines.push(`password=${optionValue(o.password)}`);
      this.defaultsFile = join(this.ctx.workDir, "my.cnf");
      await writeFile(this.defaultsFile, `${lines.join("\n")}\n`, { mode: 0o600 });
    }
    return [`--defaults-extra-file=${this.defaultsFile}`];
  }

  exec() {
    return { signal: this.ctx.signal, logger: this.ctx.logger, installHint: INSTALL_HINT };
  }

  /** Runs SQL with the command-line client; values are passed as user variables, never spliced in. */
  async query(sql: string, database?: string): Promise<string> {
    const args = [
      ...(await this.connectionArgs()),
      "--batch",
      "--skip-column-names",
      "--default-character-set=utf8mb4",
    ];
    if (database) args.push(`--database=${database}`);
    const { stdout } = await runProgram(this.program("client"), args, {
      ...this.exec(),
      stdin: Readable.from([sql]),
      captureStdout: true,
    });
    return stdout.trim();
  }
}

/** A SQL string literal for MariaDB/MySQL (used for names read back as values). */
function literal(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A quoted identifier. */
function identifier(value: string): string {
  return `\`${value.replace(/`/g, "``")}\``;
}

/** Fails at the end unless the dump ends with mysqldump's own completion marker. */
function completionCheck(): EndMarkerCheck {
  return new EndMarkerCheck(
    DUMP_COMPLETED,
    () => new SourceError("the dump does not end with mysqldump's completion line: it is cut short"),
  );
}

export const mysqlSource = defineSource({
  type: "mysql",
  description: "One MariaDB or MySQL database with mariadb-dump/mysqldump (routines, triggers, events)",
  schema,
  secrets: ["password"],
  create(options, env) {
    return {
      async *backup(ctx): AsyncIterable<Artifact> {
        const db = new MySql(options, ctx);
        const version = await db.query("SELECT VERSION()");
        const myisam = Number(
          await db.query(
            `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ${literal(options.database)} AND engine = 'MyISAM'`,
          ),
        );
        const exists = await db.query(
          `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ${literal(options.database)}`,
        );
        if (exists !== "1")
          throw new SourceError(`database ${options.database} does not exist on the server`);
        const lock = options.lock_tables === "always" || (options.lock_tables === "auto" && myisam > 0);
        if (lock && options.lock_tables === "auto")
          ctx.logger.warn(
            `${myisam} MyISAM table(s) found: dumping with table locks instead of one transaction`,
            {
              database: options.database,
            },
          );
        const args = [
          ...(await db.connectionArgs()),
          lock ? "--lock-tables" : "--single-transaction",
          "--routines",
          "--triggers",
          "--events",
          "--hex-blob",
          "--default-character-set=utf8mb4",
          ...options.dump_options,
          "--",
          options.database,
        ];
        const dump = spawnOutput(db.program("dump"), args, db.exec());
        yield {
          name: `${env.name}.sql`,
          stream: through(dump, completionCheck()),
          meta: {
            database: options.database,
            serverVersion: version,
            consistency: lock ? "table locks" : "single transaction",
          },
        };
      },

      async restore(_artifact, stream, target, ctx) {
        const database = target.database;
        if (!database)
          throw new UsageError("a MySQL/MariaDB backup restores into a database: pass --to-database NAME");
        const db = new MySql(options, ctx);
        const tables = await db.query(
          `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ${literal(database)}`,
        );
        const exists =
          (await db.query(
            `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ${literal(database)}`,
          )) === "1";
        // MySQL cannot roll back DDL: restore only into a database that is new or empty.
        if (exists && tables !== "0")
          throw new RestoreError(`database ${database} exists and holds ${tables} table(s)`, {
            hint: "restore into a new database name; cairn never overwrites",
          });
        if (!exists) await db.query(`CREATE DATABASE ${identifier(database)} CHARACTER SET utf8mb4`);
        try {
          const args = [
            ...(await db.connectionArgs()),
            "--default-character-set=utf8mb4",
            `--database=${database}`,
          ];
          await runProgram(db.program("client"), args, { ...db.exec(), stdin: stream });
        } catch (error) {
          if (!exists)
            await db.query(`DROP DATABASE IF EXISTS ${identifier(database)}`).catch((dropError) =>
              ctx.logger.warn("could not drop the partly restored database", {
                database,
                error: dropError,
              }),
            );
          throw error;
        }
        return `restored into ${exists ? "the empty" : "the new"} database ${database}`;
      },

      async verify(_artifact, stream) {
        const check = through(stream, completionCheck());
        let bytes = 0;
        for await (const chunk of check as AsyncIterable<Buffer>) bytes += chunk.length;
        return `SQL dump of ${bytes} bytes, complete (ends with "${DUMP_COMPLETED}")`;
      },

      restoreCommand: () => ({
        prepare: "mariadb -e 'CREATE DATABASE NEWDB'",
        consume: "mariadb NEWDB",
      }),
    };
  },
});
