import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import { type Artifact, type ArtifactRecord, defineSource, type PluginContext } from "../kit/contracts.ts";
import { RestoreError, SourceError, UsageError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { safeFileName } from "../kit/names.ts";
import { privateFile } from "../kit/secrets.ts";
import { EndMarkerCheck, through } from "../kit/streams.ts";
import {
  compareVersions,
  describeClients,
  type InstalledClient,
  installedCopies,
  probeVersions,
  versionedDirs,
} from "./_clients.ts";
import { type Command, containerSchema, inContainer } from "./_container.ts";
import { checkSelection, databaseSelection, wantedNames } from "./_databases.ts";
import { PgArchiveCheck } from "./_pg-archive.ts";
import { extractTar } from "./_tar.ts";

const INSTALL_HINT = "install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-client)";
const GLOBALS_COMPLETED = "PostgreSQL database cluster dump complete";

const schema = z
  .object({
    ...databaseSelection("every database that accepts connections (templates left out)"),
    globals: z
      .boolean()
      .optional()
      .describe(
        "also dump roles and tablespaces (pg_dumpall --globals-only) as their own artifact; default: on with databases: all",
      ),
    format: z
      .enum(["custom", "directory"])
      .default("custom")
      .describe("custom: one streamed archive; directory: pg_dump -Fd (parallel), staged in a temp folder"),
    jobs: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe("parallel pg_dump/pg_restore jobs (format: directory)"),
    host: z
      .string()
      .optional()
      .describe("host name or socket folder; default: libpq's default (local socket)"),
    port: z.number().int().min(1).max(65535).default(5432),
    user: z.string().optional().describe("role to connect as; default: libpq's default"),
    password: z.string().optional().describe("handed to pg_dump through a private 0600 passfile, never argv"),
    sslmode: z.enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]).optional(),
    bin_dir: z
      .string()
      .optional()
      .describe(
        "folder holding pg_dump/pg_restore/psql, e.g. /usr/lib/postgresql/16/bin; default: the best fit",
      ),
    container: containerSchema,
    dump_options: z
      .array(z.string())
      .default([])
      .describe("extra pg_dump arguments, e.g. [--exclude-table=logs]"),
    restore_options: z
      .array(z.string())
      .default([])
      .describe("extra pg_restore arguments, e.g. [--no-owner]"),
    maintenance_database: z
      .string()
      .default("postgres")
      .describe("database used to list databases, dump globals and create the restore target"),
  })
  .superRefine((o, ctx) => {
    checkSelection(o, ctx, { any: !!o.globals, names: "globals: true" });
    if (o.jobs > 1 && o.format !== "directory")
      ctx.addIssue({ code: "custom", path: ["jobs"], message: "parallel jobs need format: directory" });
    if (o.container && o.format === "directory")
      ctx.addIssue({
        code: "custom",
        path: ["format"],
        message:
          "format: directory writes into the container's file system; use format: custom with container",
      });
    if (o.container && o.bin_dir)
      ctx.addIssue({
        code: "custom",
        path: ["bin_dir"],
        message: "bin_dir is a host folder: leave it out with container",
      });
  });

type Options = z.output<typeof schema>;
type Tool = "pg_dump" | "pg_dumpall" | "pg_restore" | "psql";

/** Escapes a value for a libpq passfile line (`:` and `\` are special). */
function passfileField(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
}

/** A conninfo `dbname='…'` so that names with `=` or spaces stay names. */
function dbnameConninfo(name: string): string {
  return `dbname='${name.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** The first `major[.minor]` in a tool's or server's version text, e.g. "15.20 (Debian …)" → "15.20". */
function versionIn(text: string): string | undefined {
  return /\d+(?:\.\d+)?/.exec(text)?.[0];
}

/** The version of the pg_dump that wrote an artifact, as the manifest recorded it. */
function dumpVersion(artifact: ArtifactRecord): string {
  return versionIn(String(artifact.meta.client ?? "")) ?? "0";
}

function major(version: string): number {
  return Number.parseInt(version, 10);
}

class Postgres {
  private readonly options: Options;
  private readonly ctx: PluginContext;
  private passfile: string | undefined;

  constructor(options: Options, ctx: PluginContext) {
    this.options = options;
    this.ctx = ctx;
  }

  /** libpq settings through the environment; the password in a 0600 passfile (in a container: PGPASSWORD, forwarded by name). */
  private async env(database: string): Promise<Record<string, string | undefined>> {
    const o = this.options;
    let secret: Record<string, string | undefined> = {};
    if (o.password !== undefined && o.container) secret = { PGPASSWORD: o.password };
    else if (o.password !== undefined) {
      if (!this.passfile) {
        this.passfile = await privateFile(this.ctx, "pgpass", `*:*:*:*:${passfileField(o.password)}\n`);
      }
      secret = { PGPASSFILE: this.passfile, PGPASSWORD: undefined };
    }
    return {
      PGHOST: o.host,
      PGPORT: String(o.port),
      PGUSER: o.user,
      PGDATABASE: database,
      PGSSLMODE: o.sslmode,
      PGAPPNAME: "cairn",
      PGCONNECT_TIMEOUT: "15",
      ...secret,
    };
  }

  /** The program, its arguments and environment, run in the container when one is configured. */
  async command(program: string, args: string[], database: string): Promise<Command> {
    const command = { program, args, env: await this.env(database) };
    return this.options.container ? inContainer(this.options.container, command, ["PGPASSWORD"]) : command;
  }

  exec() {
    return { signal: this.ctx.signal, logger: this.ctx.logger, installHint: INSTALL_HINT };
  }

  /** Where a tool is taken from when no version matters (psql): the configured folder, else PATH. */
  plain(name: Tool): string {
    return this.options.bin_dir ? join(this.options.bin_dir, name) : name;
  }

  async psql(
    sql: string,
    variables: Record<string, string>,
    database = this.options.maintenance_database,
  ): Promise<string> {
    const args = ["--no-psqlrc", "--no-align", "--tuples-only", "--no-password", "-v", "ON_ERROR_STOP=1"];
    for (const [key, value] of Object.entries(variables)) args.push("-v", `${key}=${value}`);
    const c = await this.command(this.plain("psql"), args, database);
    const { stdout } = await runProgram(c.program, c.args, {
      ...this.exec(),
      env: c.env,
      stdin: Readable.from([sql]),
      captureStdout: true,
    });
    return stdout.trim();
  }

  serverVersion(): Promise<string> {
    return this.psql("SHOW server_version", {});
  }

  /**
   * The client to use: the same major version as `minimum`, else the nearest newer one (an older
   * pg_dump refuses a newer server; an older pg_restore cannot read a newer archive). Fails before
   * anything runs, naming what was found and what to install. In a container, its own tool is used.
   */
  async client(name: Tool, reported: string, what: string): Promise<InstalledClient> {
    const minimum = versionIn(reported) ?? reported;
    if (this.options.container) {
      const c = await this.command(name, ["--version"], this.options.maintenance_database);
      const { stdout } = await runProgram(c.program, c.args, {
        ...this.exec(),
        env: c.env,
        captureStdout: true,
      });
      return { path: name, version: versionIn(stdout) ?? "unknown" };
    }
    const copies = installedCopies([name], this.options.bin_dir, versionedDirs("/usr/lib/postgresql", "bin"));
    const found = await probeVersions(
      copies,
      (line) => {
        const version = versionIn(line);
        return version ? { version } : undefined;
      },
      this.ctx,
    );
    const fit = found
      .filter((c) => major(c.version) >= major(minimum))
      .sort((a, b) => compareVersions(a.version, b.version))[0];
    if (fit) return fit;
    throw new SourceError(
      `${what} is version ${minimum}, and no ${name} of version ${major(minimum)} or newer is installed (found: ${describeClients(found)})`,
      {
        hint: `install postgresql-client-${major(minimum)} (Debian/Ubuntu), or point bin_dir at a newer client`,
      },
    );
  }

  /** The databases to dump, checked to exist before anything is dumped. */
  async databases(): Promise<string[]> {
    const o = this.options;
    const wanted = wantedNames(o);
    if (wanted) {
      const existing = new Set((await this.psql("SELECT datname FROM pg_database", {})).split("\n"));
      const missing = wanted.filter((name) => !existing.has(name));
      if (missing.length > 0)
        throw new SourceError(
          `database ${missing.map((n) => `"${n}"`).join(", ")} does not exist on the server`,
          {
            hint: `databases there: ${[...existing].filter((n) => !n.startsWith("template")).join(", ")}`,
          },
        );
      return wanted;
    }
    if (o.databases !== "all") return [];
    const all = (
      await this.psql(
        "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname",
        {},
      )
    )
      .split("\n")
      .filter(Boolean);
    return all.filter((name) => !o.exclude_databases.includes(name));
  }
}

/** Counts `already exists` errors (expected when globals meet a server that has the roles) and fails on any other. */
class GlobalsErrors {
  existing: string[] = [];
  other: string[] = [];
  readonly onStderrLine = (line: string) => {
    const error = /ERROR:\s+(.*)$/.exec(line)?.[1];
    if (!error) return;
    const exists = /^(?:role|tablespace) "(.+)" already exists$/.exec(error);
    if (exists) this.existing.push(exists[1]!);
    else this.other.push(error);
  };
}

/** The tables of a database the connected role may not SELECT from (pg_dump would fail on them). */
const UNREADABLE_TABLES = `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg_toast%' AND NOT has_table_privilege(c.oid, 'SELECT')
  ORDER BY 1`;

export const postgresSource = defineSource({
  type: "postgres",
  tools: [
    { names: ["pg_dump"], purpose: "PostgreSQL dumps", install: INSTALL_HINT },
    { names: ["pg_restore"], purpose: "PostgreSQL restores and verify", install: INSTALL_HINT },
    { names: ["psql"], purpose: "PostgreSQL queries", install: INSTALL_HINT },
  ],
  description:
    "PostgreSQL databases with pg_dump (one, a list or all; custom or parallel directory format) and roles/tablespaces with pg_dumpall --globals-only",
  schema,
  secrets: ["password"],
  create(options, env) {
    const several = options.databases !== undefined;
    const artifactName = (database: string) => {
      const base = several ? `${env.name}.${safeFileName(database)}` : env.name;
      return options.format === "directory" ? `${base}.pgdir.tar` : `${base}.pgdump`;
    };

    async function* backup(ctx: PluginContext): AsyncIterable<Artifact> {
      const pg = new Postgres(options, ctx);
      const serverVersion = await pg.serverVersion();
      const databases = await pg.databases();
      const globals = options.globals ?? options.databases === "all";
      const dump = await pg.client("pg_dump", serverVersion, "the PostgreSQL server");
      const dumpall = globals
        ? await pg.client("pg_dumpall", serverVersion, "the PostgreSQL server")
        : undefined;
      const common = { host: options.host ?? null, port: options.port, serverVersion };
      ctx.logger.debug("dumping PostgreSQL", {
        databases,
        globals,
        server: serverVersion,
        client: dump.path,
      });

      if (dumpall) {
        const c = await pg.command(
          dumpall.path,
          ["--globals-only", "--no-password"],
          options.maintenance_database,
        );
        const stream = spawnOutput(c.program, c.args, { ...pg.exec(), env: c.env });
        yield {
          name: `${env.name}.globals.sql`,
          stream: through(stream, globalsCheck()),
          meta: { kind: "globals", ...common, client: `pg_dumpall ${dumpall.version}` },
        };
      }

      for (const [index, database] of databases.entries()) {
        const meta = { database, ...common, format: options.format, client: `pg_dump ${dump.version}` };
        const base = ["--compress=0", "--no-password", ...options.dump_options];
        if (options.format === "custom") {
          const c = await pg.command(dump.path, ["--format=custom", ...base], database);
          const output = spawnOutput(c.program, c.args, { ...pg.exec(), env: c.env });
          yield {
            name: artifactName(database),
            stream: through(output, new PgArchiveCheck(`the dump of ${database}`)),
            meta,
          };
          continue;
        }
        // Directory format: pg_dump writes files in parallel, so it is staged, then streamed as a tar.
        const dir = join(ctx.workDir, `dump-${index}`);
        const c = await pg.command(
          dump.path,
          ["--format=directory", `--jobs=${options.jobs}`, `--file=${dir}`, ...base],
          database,
        );
        await runProgram(c.program, c.args, { ...pg.exec(), env: c.env });
        yield {
          name: artifactName(database),
          stream: spawnOutput("tar", ["-C", dir, "-cf", "-", "."], {
            ...pg.exec(),
            installHint: "install GNU tar",
          }),
          meta: { ...meta, jobs: options.jobs },
        };
        await rm(dir, { recursive: true, force: true });
      }
    }

    async function restoreGlobals(stream: Readable, ctx: PluginContext): Promise<string> {
      const pg = new Postgres(options, ctx);
      const errors = new GlobalsErrors();
      const c = await pg.command(
        pg.plain("psql"),
        ["--no-psqlrc", "--no-password", "-q", "-v", "ON_ERROR_STOP=0"],
        options.maintenance_database,
      );
      await runProgram(c.program, c.args, {
        ...pg.exec(),
        env: c.env,
        stdin: through(stream, globalsCheck()),
        onStderrLine: errors.onStderrLine,
      });
      if (errors.other.length > 0)
        throw new RestoreError(
          `restoring roles and tablespaces failed: ${errors.other.slice(0, 5).join("; ")}${errors.other.length > 5 ? ` (and ${errors.other.length - 5} more)` : ""}`,
          {
            hint: "statements before and after the failing ones were applied: globals are not transactional",
          },
        );
      const existing = errors.existing.length
        ? `; already there and updated in place: ${errors.existing.join(", ")}`
        : "";
      return `roles and tablespaces restored${existing}`;
    }

    /** An existing database that holds tables is merged into only when the user says so. */
    async function refuseToMerge(pg: Postgres, database: string, force: boolean): Promise<void> {
      const tables = await pg.psql(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
        {},
        database,
      );
      if (tables === "0" || force) return;
      throw new UsageError(
        `database ${database} exists and holds ${tables} table(s): the dump would merge into its data`,
        {
          hint: "choose a new name with --to-database, or pass --force to restore into it (one transaction: all or nothing)",
        },
      );
    }

    async function restoreDatabase(
      artifact: ArtifactRecord,
      stream: Readable,
      { database, force = false }: { database: string; force?: boolean | undefined },
      ctx: PluginContext,
    ): Promise<string> {
      const pg = new Postgres(options, ctx);
      const directory = artifact.meta.format === "directory";
      const serverVersion = await pg.serverVersion();
      const written = dumpVersion(artifact);
      const minimum = compareVersions(written, serverVersion) > 0 ? written : serverVersion;
      const restoreClient = await pg.client(
        "pg_restore",
        minimum,
        minimum === serverVersion ? "the PostgreSQL server" : "the dump (written by pg_dump)",
      );
      const exists =
        (await pg.psql("SELECT 1 FROM pg_database WHERE datname = :'db'", { db: database })) === "1";
      if (exists) await refuseToMerge(pg, database, force);
      const parallel = directory && options.jobs > 1;
      if (exists && parallel)
        throw new UsageError(
          `database ${database} exists, and a parallel restore cannot run in one transaction`,
          {
            hint: "restore into a new database name, or set jobs: 1",
          },
        );
      if (!exists) await pg.psql('CREATE DATABASE :"db"', { db: database });
      const args = [
        parallel ? `--jobs=${options.jobs}` : "--single-transaction",
        "--exit-on-error",
        "--no-password",
        ...options.restore_options,
        `--dbname=${dbnameConninfo(database)}`,
      ];
      try {
        if (directory) {
          const dir = join(ctx.workDir, "restore");
          await extractTar(stream, dir, ctx.logger);
          const c = await pg.command(restoreClient.path, [...args, dir], database);
          await runProgram(c.program, c.args, { ...pg.exec(), env: c.env });
        } else {
          const c = await pg.command(restoreClient.path, args, database);
          await runProgram(c.program, c.args, { ...pg.exec(), env: c.env, stdin: stream });
        }
      } catch (error) {
        // One transaction: an existing database is untouched; one we created goes away again.
        if (!exists)
          await pg
            .psql('DROP DATABASE IF EXISTS :"db" WITH (FORCE)', { db: database })
            .catch((dropError) =>
              ctx.logger.warn("could not drop the partly restored database", { database, error: dropError }),
            );
        throw error;
      }
      return `restored into ${exists ? "the existing" : "the new"} database ${database}`;
    }

    return {
      backup,

      async check(ctx) {
        const pg = new Postgres(options, ctx);
        const serverVersion = await pg.serverVersion();
        const databases = await pg.databases();
        const dump = await pg.client("pg_dump", serverVersion, "the PostgreSQL server");
        for (const database of databases) {
          const unreadable = await pg.psql(UNREADABLE_TABLES, {}, database);
          if (unreadable)
            throw new SourceError(
              `the role cannot read ${unreadable.split("\n").length} table(s) of ${database}: ${unreadable.split("\n").slice(0, 5).join(", ")}`,
              { hint: "GRANT SELECT on them (or pg_read_all_data) to the role cairn connects as" },
            );
        }
        return `PostgreSQL ${serverVersion}, ${databases.length} database(s) readable, pg_dump ${dump.version} (${dump.path})`;
      },

      async restore(artifact, stream, target, ctx) {
        if (artifact.meta.kind === "globals") return restoreGlobals(stream, ctx);
        if (!target.database)
          throw new UsageError("a PostgreSQL backup restores into a database: pass --to-database NAME");
        return restoreDatabase(artifact, stream, { database: target.database, force: target.force }, ctx);
      },

      async verify(artifact, stream, ctx) {
        if (artifact.meta.kind === "globals") {
          let statements = 0;
          for await (const chunk of through(stream, globalsCheck()) as AsyncIterable<Buffer>)
            statements += chunk.toString("latin1").split(";\n").length - 1;
          return `pg_dumpall --globals-only output, complete: ${statements} statements`;
        }
        const pg = new Postgres(options, ctx);
        const lister = await pg.client("pg_restore", dumpVersion(artifact), "the dump (written by pg_dump)");
        const check = new PgArchiveCheck(artifact.name);
        let input: Readable | undefined =
          artifact.meta.format === "directory" ? stream : through(stream, check);
        const listArgs = ["--list"];
        if (artifact.meta.format === "directory") {
          const dir = join(ctx.workDir, "verify");
          await extractTar(stream, dir, ctx.logger);
          listArgs.push(dir);
          input = undefined;
        }
        const c = await pg.command(lister.path, listArgs, options.maintenance_database);
        const { stdout } = await runProgram(c.program, c.args, {
          ...pg.exec(),
          env: c.env,
          ...(input ? { stdin: input, stdinMayCloseEarly: true } : {}),
          captureStdout: true,
        });
        const entries = stdout.split("\n").filter((line) => line.trim() && !line.startsWith(";")).length;
        if (entries === 0) throw new RestoreError("pg_restore --list found no entries in the dump");
        if (artifact.meta.format === "directory") return `pg_restore --list: ${entries} entries`;
        return `pg_restore --list: ${entries} entries, all ${check.summary.dataBlocks} data blocks complete`;
      },

      restoreCommand(artifact) {
        if (artifact.meta.kind === "globals") return { consume: "psql -X -d postgres" };
        if (artifact.meta.format === "directory")
          return {
            prepare: 'createdb NEWDB && DUMP="$(mktemp -d)"',
            consume:
              'tar -xf - -C "$DUMP" && pg_restore --exit-on-error --jobs=4 -d NEWDB "$DUMP" && rm -rf "$DUMP"',
          };
        return {
          prepare: "createdb NEWDB",
          consume: "pg_restore --single-transaction --exit-on-error -d NEWDB",
        };
      },
    };
  },
});

function globalsCheck(): EndMarkerCheck {
  return new EndMarkerCheck(
    GLOBALS_COMPLETED,
    () => new SourceError("the pg_dumpall output does not end with its completion line: it is cut short"),
  );
}
