import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform, type TransformCallback } from "node:stream";
import { z } from "zod";
import { type Artifact, type ArtifactRecord, defineSource, type PluginContext } from "../kit/contracts.ts";
import { RestoreError, SourceError, UsageError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { safeFileName } from "../kit/names.ts";
import { privateFile } from "../kit/secrets.ts";
import { EndMarkerCheck, through } from "../kit/streams.ts";
import { findProgram, searchPath } from "../kit/which.ts";
import {
  compareVersions,
  describeClients,
  type InstalledClient,
  installedCopies,
  probeVersions,
} from "./_clients.ts";
import { type Command, containerSchema, inContainer } from "./_container.ts";
import { checkSelection, databaseSelection, wantedNames } from "./_databases.ts";
import { extractTar } from "./_tar.ts";

const INSTALL_HINT = "install the MariaDB or MySQL client (Debian/Ubuntu: apt-get install mariadb-client)";
const DUMP_COMPLETED = "-- Dump completed";
const USERS_COMPLETED = "-- cairn: users complete";
/** Schemas of the server itself, never dumped by `databases: all`. */
const SYSTEM_SCHEMAS = ["mysql", "information_schema", "performance_schema", "sys"];
/**
 * Accounts the server creates for itself, and its administrators (root, and Debian MariaDB's
 * `mysql`): they exist on every server, and replaying their grants or credentials onto another
 * one could lock its administrator out.
 */
const SYSTEM_ACCOUNTS = [
  "mariadb.sys",
  "mysql.sys",
  "mysql.session",
  "mysql.infoschema",
  "root",
  "mysql",
  "",
];

const schema = z
  .object({
    ...databaseSelection(
      "every database but the system schemas (mysql, sys, information_schema, performance_schema)",
    ),
    users: z
      .boolean()
      .default(false)
      .describe(
        "also back up accounts and their grants (SHOW CREATE USER / SHOW GRANTS) as their own artifact",
      ),
    binlogs: z
      .boolean()
      .default(false)
      .describe(
        "also copy the server's binary logs as their own artifact and record each dump's binlog position, for point-in-time recovery",
      ),
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
    bin_dir: z
      .string()
      .optional()
      .describe("folder holding mariadb-dump/mysqldump and mariadb/mysql; default: the best fit on PATH"),
    container: containerSchema,
    dump_options: z
      .array(z.string())
      .default([])
      .describe("extra dump arguments, e.g. [--ignore-table=app.sessions]"),
  })
  .superRefine((o, ctx) => {
    checkSelection(o, ctx, { any: o.users || o.binlogs, names: "users or binlogs" });
    if (o.container && o.bin_dir)
      ctx.addIssue({
        code: "custom",
        path: ["bin_dir"],
        message: "bin_dir is a host folder: leave it out with container",
      });
    if (o.container && o.binlogs)
      ctx.addIssue({
        code: "custom",
        path: ["binlogs"],
        message:
          "binlogs are copied with the host's mariadb-binlog: connect from the host instead of container",
      });
  });

type Options = z.output<typeof schema>;

/** Quotes a value for an option file (my.cnf syntax). */
function optionValue(value: string): string {
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}

/** A SQL string literal for MariaDB/MySQL (used for names read back as values). */
function literal(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A quoted identifier. */
function identifier(value: string): string {
  return `\`${value.replace(/`/g, "``")}\``;
}

/** `10.11.19-MariaDB-0+deb12u1` → mariadb 10.11.19; `8.0.36` → mysql 8.0.36. */
function parseServerVersion(reported: string): { flavor: "mariadb" | "mysql"; version: string } {
  return {
    flavor: /mariadb/i.test(reported) ? "mariadb" : "mysql",
    version: /\d+\.\d+(?:\.\d+)?/.exec(reported)?.[0] ?? "0",
  };
}

/** Reads `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, …`, `mariadb-dump from 11.4.2-MariaDB, …` and `mysqldump  Ver 8.0.36 for Linux`. */
function parseClientVersion(line: string): Omit<InstalledClient, "path"> | undefined {
  const version =
    /Distrib (\d+\.\d+\.\d+)/.exec(line)?.[1] ??
    /from (\d+\.\d+\.\d+)/.exec(line)?.[1] ??
    /Ver (\d+\.\d+\.\d+)/.exec(line)?.[1];
  return version ? { version, flavor: /mariadb/i.test(line) ? "mariadb" : "mysql" } : undefined;
}

class MySql {
  private readonly options: Options;
  private readonly ctx: PluginContext;
  private defaultsFile: string | undefined;

  constructor(options: Options, ctx: PluginContext) {
    this.options = options;
    this.ctx = ctx;
  }

  /** `mariadb` / `mysql` (or the binlog reader) from bin_dir or PATH, MariaDB's names first. */
  tool(names: string[]): string {
    if (this.options.container) return names[0]!;
    const path = searchPath(this.options.bin_dir);
    for (const name of names) {
      const found = findProgram(name, path);
      if (found) return found;
    }
    return names[0]!;
  }

  /**
   * Connection settings. On the host: a 0600 option file, which must be the first argument. In a
   * container: host, port and user as arguments and the password in MYSQL_PWD, forwarded by name.
   */
  async command(program: string, args: string[]): Promise<Command> {
    const o = this.options;
    if (o.container) {
      const connection = [
        ...(o.host ? [`--host=${o.host}`] : []),
        ...(o.socket ? [`--socket=${o.socket}`] : []),
        `--port=${o.port}`,
        ...(o.user ? [`--user=${o.user}`] : []),
      ];
      return inContainer(
        o.container,
        { program, args: [...connection, ...args], env: { MYSQL_PWD: o.password } },
        ["MYSQL_PWD"],
      );
    }
    if (!this.defaultsFile) {
      const lines = ["[client]"];
      if (o.host) lines.push(`host=${optionValue(o.host)}`);
      if (o.socket) lines.push(`socket=${optionValue(o.socket)}`);
      lines.push(`port=${o.port}`);
      if (o.user) lines.push(`user=${optionValue(o.user)}`);
      if (o.password !== undefined) lines.push(`password=${optionValue(o.password)}`);
      this.defaultsFile = await privateFile(this.ctx, "my.cnf", `${lines.join("\n")}\n`);
    }
    return { program, args: [`--defaults-extra-file=${this.defaultsFile}`, ...args], env: {} };
  }

  exec() {
    return { signal: this.ctx.signal, logger: this.ctx.logger, installHint: INSTALL_HINT };
  }

  /** Runs SQL with the command-line client; names read back are passed as literals, never spliced raw. */
  async query(sql: string, database?: string, raw = false): Promise<string> {
    const args = ["--batch", "--skip-column-names", "--default-character-set=utf8mb4"];
    if (raw) args.push("--raw");
    if (database) args.push(`--database=${database}`);
    const c = await this.command(this.tool(["mariadb", "mysql"]), args);
    const { stdout } = await runProgram(c.program, c.args, {
      ...this.exec(),
      env: c.env,
      stdin: Readable.from([sql]),
      captureStdout: true,
    });
    return raw ? stdout : stdout.trim();
  }

  /**
   * The dump client for this server: the same flavor (MariaDB or MySQL) and the same or a newer
   * version, the closest one first. Fails before dumping, naming what was found and what to install.
   */
  async dumpClient(server: { flavor: string; version: string }, reported: string): Promise<InstalledClient> {
    const container = this.options.container;
    if (container) {
      // The container's own client belongs to its server; only its name differs between images.
      for (const name of ["mariadb-dump", "mysqldump"]) {
        const c = inContainer(container, { program: name, args: ["--version"], env: {} }, []);
        const answer = await runProgram(c.program, c.args, { ...this.exec(), captureStdout: true }).catch(
          () => undefined,
        );
        const parsed = answer && parseClientVersion(answer.stdout);
        if (parsed) return { path: name, ...parsed };
      }
      throw new SourceError(`neither mariadb-dump nor mysqldump answers in container ${container.name}`);
    }
    const copies = installedCopies(["mariadb-dump", "mysqldump"], this.options.bin_dir, [
      "/usr/local/mysql/bin",
    ]);
    const found = await probeVersions(copies, parseClientVersion, this.ctx);
    const serverMinor = server.version.split(".").slice(0, 2).join(".");
    const fit = found
      .filter((c) => c.flavor === server.flavor && compareVersions(c.version, serverMinor) >= 0)
      .sort((a, b) => compareVersions(a.version, b.version))[0];
    if (fit) return fit;
    const hint =
      server.flavor === "mariadb"
        ? `install mariadb-client ${serverMinor} or newer (Debian/Ubuntu: apt-get install mariadb-client; newer versions from mariadb.org's repository), or point bin_dir at one`
        : `install the MySQL ${serverMinor} client or newer (mysql-community-client from MySQL's APT/YUM repository), or point bin_dir at one`;
    throw new SourceError(
      `the server is ${server.flavor === "mariadb" ? "MariaDB" : "MySQL"} ${reported}, and no ${server.flavor === "mariadb" ? "mariadb-dump" : "mysqldump"} of that flavor and version ${serverMinor} or newer is installed (found: ${describeClients(found.map((c) => ({ ...c, version: `${c.flavor} ${c.version}` })))})`,
      { hint },
    );
  }

  /** The databases to dump, checked to exist before anything is dumped. */
  async databases(): Promise<string[]> {
    const o = this.options;
    const existing = (
      await this.query("SELECT schema_name FROM information_schema.schemata ORDER BY 1")
    ).split("\n");
    const wanted = wantedNames(o);
    if (wanted) {
      const missing = wanted.filter((name) => !existing.includes(name));
      if (missing.length > 0)
        throw new SourceError(`database ${missing.join(", ")} does not exist on the server`, {
          hint: `databases there: ${existing.filter((n) => !SYSTEM_SCHEMAS.includes(n)).join(", ")}`,
        });
      return wanted;
    }
    if (o.databases !== "all") return [];
    return existing.filter((n) => n && !SYSTEM_SCHEMAS.includes(n) && !o.exclude_databases.includes(n));
  }

  /** CREATE USER … and GRANT … statements for every account but the server's own. */
  async usersSql(flavor: string): Promise<string> {
    const roles = flavor === "mariadb" ? " AND is_role = 'N'" : "";
    const accounts = (
      await this.query(
        `SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.user WHERE User NOT IN (${SYSTEM_ACCOUNTS.map(literal).join(", ")})${roles} ORDER BY User, Host`,
      )
    )
      .split("\n")
      .filter(Boolean);
    const statements = [
      "-- accounts and grants, written by cairn; safe to replay: existing accounts are kept",
    ];
    if (accounts.length > 0) {
      const sql = accounts.map((a) => `SHOW CREATE USER ${a}; SHOW GRANTS FOR ${a};`).join("\n");
      const lines = (await this.query(sql, undefined, true)).split("\n").filter(Boolean);
      // PROXY grants belong to the installation's authentication setup, not to the account.
      for (const line of lines.filter((l) => !/^GRANT PROXY ON /.test(l)))
        statements.push(`${line.replace(/^CREATE USER /, "CREATE USER IF NOT EXISTS ")};`);
    }
    statements.push(USERS_COMPLETED, "");
    return statements.join("\n");
  }
}

/** Fails at the end unless the dump ends with mysqldump's own completion marker. */
function completionCheck(): EndMarkerCheck {
  return new EndMarkerCheck(
    DUMP_COMPLETED,
    () => new SourceError("the dump does not end with mysqldump's completion line: it is cut short"),
  );
}

/** Reads the binlog position that `--master-data=2` writes near the top of a dump into `meta`. */
class BinlogPosition extends Transform {
  private head = "";
  private readonly meta: Record<string, unknown>;
  constructor(meta: Record<string, unknown>) {
    super();
    this.meta = meta;
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.head.length < 65536) {
      this.head += chunk.toString("latin1", 0, Math.min(chunk.length, 65536));
      const found = /(?:MASTER|SOURCE)_LOG_FILE='([^']+)',\s*(?:MASTER|SOURCE)_LOG_POS=(\d+)/.exec(this.head);
      if (found) {
        this.meta.binlogPosition = { file: found[1], position: Number(found[2]) };
        this.head = "x".repeat(65536);
      }
    }
    callback(null, chunk);
  }
}

export const mysqlSource = defineSource({
  type: "mysql",
  tools: [
    { names: ["mariadb-dump", "mysqldump"], purpose: "MySQL/MariaDB dumps", install: INSTALL_HINT },
    { names: ["mariadb", "mysql"], purpose: "MySQL/MariaDB queries and restores", install: INSTALL_HINT },
  ],
  description:
    "MariaDB/MySQL databases with mariadb-dump/mysqldump (one, a list or all; routines, triggers, events), accounts and binary logs",
  schema,
  secrets: ["password"],
  create(options, env) {
    const several = options.databases !== undefined;

    async function* backup(ctx: PluginContext): AsyncIterable<Artifact> {
      const db = new MySql(options, ctx);
      const reported = await db.query("SELECT VERSION()");
      const server = parseServerVersion(reported);
      const databases = await db.databases();
      const dump = databases.length > 0 ? await db.dumpClient(server, reported) : undefined;
      if (options.binlogs) {
        const logBin = await db.query("SELECT @@log_bin");
        if (logBin !== "1")
          throw new SourceError("binlogs: true, but binary logging is off on the server", {
            hint: "start the server with log_bin (e.g. log_bin = mysql-bin in my.cnf), or set binlogs: false",
          });
      }

      if (options.users) {
        yield {
          name: `${env.name}.users.sql`,
          stream: Readable.from([Buffer.from(await db.usersSql(server.flavor))]),
          meta: { kind: "users", serverVersion: reported },
        };
      }

      for (const database of databases) {
        const myisam = Number(
          await db.query(
            `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ${literal(database)} AND engine = 'MyISAM'`,
          ),
        );
        const lock = options.lock_tables === "always" || (options.lock_tables === "auto" && myisam > 0);
        if (lock && options.lock_tables === "auto")
          ctx.logger.warn(
            `${myisam} MyISAM table(s) found: dumping with table locks instead of one transaction`,
            {
              database,
            },
          );
        const positionFlag =
          server.flavor === "mysql" && compareVersions(server.version, "8.0.26") >= 0
            ? "--source-data=2"
            : "--master-data=2";
        const c = await db.command(dump!.path, [
          lock ? "--lock-tables" : "--single-transaction",
          ...(options.binlogs ? [positionFlag] : []),
          "--routines",
          "--triggers",
          "--events",
          "--hex-blob",
          "--default-character-set=utf8mb4",
          ...options.dump_options,
          "--",
          database,
        ]);
        const meta: Record<string, unknown> = {
          database,
          serverVersion: reported,
          client: `${dump!.flavor ?? ""} ${dump!.version}`.trim(),
          consistency: lock ? "table locks" : "single transaction",
        };
        const name = several ? `${env.name}.${safeFileName(database)}.sql` : `${env.name}.sql`;
        // The bytes pass through cairn (unlike tar's, decision 007) for the completion-line check:
        // a dump that ends without it is cut short, whatever the exit status says.
        const checked = through(
          spawnOutput(c.program, c.args, { ...db.exec(), env: c.env }),
          completionCheck(),
        );
        yield { name, stream: options.binlogs ? through(checked, new BinlogPosition(meta)) : checked, meta };
      }

      if (options.binlogs) {
        // After the dumps, so the copied logs reach past every recorded position.
        const logs = (await db.query("SHOW BINARY LOGS")).split("\n").map((line) => line.split("\t")[0]!);
        const dir = join(ctx.workDir, "binlogs");
        const c = await db.command(db.tool(["mariadb-binlog", "mysqlbinlog"]), [
          "--read-from-remote-server",
          "--raw",
          "--to-last-log",
          `--result-file=${dir}/`,
          logs[0]!,
        ]);
        await mkdir(dir, { mode: 0o700 });
        await runProgram(c.program, c.args, { ...db.exec(), env: c.env });
        const files = (await readdir(dir)).sort();
        yield {
          name: `${env.name}.binlogs.tar`,
          stream: spawnOutput("tar", ["-C", dir, "-cf", "-", ...files], {
            ...db.exec(),
            installHint: "install GNU tar",
          }),
          meta: { kind: "binlogs", serverVersion: reported, files, first: files[0], last: files.at(-1) },
        };
        await rm(dir, { recursive: true, force: true });
      }
    }

    async function restoreDatabase(stream: Readable, database: string, ctx: PluginContext): Promise<string> {
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
        throw new UsageError(`database ${database} exists and holds ${tables} table(s)`, {
          hint: "choose a new name with --to-database: MySQL cannot roll a failed restore back, so cairn restores only into a new or empty database",
        });
      if (!exists) await db.query(`CREATE DATABASE ${identifier(database)} CHARACTER SET utf8mb4`);
      try {
        const c = await db.command(db.tool(["mariadb", "mysql"]), [
          "--default-character-set=utf8mb4",
          `--database=${database}`,
        ]);
        await runProgram(c.program, c.args, {
          ...db.exec(),
          env: c.env,
          stdin: through(stream, completionCheck()),
        });
      } catch (error) {
        if (!exists)
          await db
            .query(`DROP DATABASE IF EXISTS ${identifier(database)}`)
            .catch((dropError) =>
              ctx.logger.warn("could not drop the partly restored database", { database, error: dropError }),
            );
        throw error;
      }
      return `restored into ${exists ? "the empty" : "the new"} database ${database}`;
    }

    async function restoreUsers(stream: Readable, ctx: PluginContext): Promise<string> {
      const db = new MySql(options, ctx);
      const c = await db.command(db.tool(["mariadb", "mysql"]), ["--default-character-set=utf8mb4"]);
      await runProgram(c.program, c.args, { ...db.exec(), env: c.env, stdin: through(stream, usersCheck()) });
      return "accounts and grants restored (existing accounts kept their passwords; grants added)";
    }

    return {
      backup,

      async check(ctx) {
        const db = new MySql(options, ctx);
        const reported = await db.query("SELECT VERSION()");
        const databases = await db.databases();
        const dump =
          databases.length > 0 ? await db.dumpClient(parseServerVersion(reported), reported) : undefined;
        if (options.binlogs && (await db.query("SELECT @@log_bin")) !== "1")
          throw new SourceError("binlogs: true, but binary logging is off on the server", {
            hint: "start the server with log_bin (e.g. log_bin = mysql-bin in my.cnf), or set binlogs: false",
          });
        const grants = await db.query("SHOW GRANTS");
        if (databases.length > 0 && !/GRANT (ALL PRIVILEGES|.*\bSELECT\b)/.test(grants))
          throw new SourceError(`the account has no SELECT grant: ${grants.split("\n")[0]}`, {
            hint: "GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON *.* TO the backup account",
          });
        return `server ${reported}, ${databases.length} database(s)${dump ? `, ${dump.path} ${dump.version}` : ""}`;
      },

      async restore(artifact, stream, target, ctx) {
        if (artifact.meta.kind === "users") return restoreUsers(stream, ctx);
        if (artifact.meta.kind === "binlogs") {
          if (!target.dir)
            throw new UsageError("binary logs restore into a folder: pass --to-dir DIR, then replay them", {
              hint: "see docs/sources/mysql.md, point-in-time recovery",
            });
          return extractTar(stream, target.dir, ctx.logger);
        }
        if (!target.database)
          throw new UsageError("a MySQL/MariaDB backup restores into a database: pass --to-database NAME");
        return restoreDatabase(stream, target.database, ctx);
      },

      async verify(artifact, stream) {
        const kind = artifact.meta.kind;
        const check = kind === "users" ? usersCheck() : kind === "binlogs" ? undefined : completionCheck();
        let bytes = 0;
        for await (const chunk of (check ? through(stream, check) : stream) as AsyncIterable<Buffer>)
          bytes += chunk.length;
        if (kind === "binlogs") {
          if (bytes !== artifact.rawSize)
            throw new RestoreError(`binlog archive is ${bytes} bytes, not ${artifact.rawSize}`);
          return `binary logs ${String(artifact.meta.first)}…${String(artifact.meta.last)}, ${bytes} bytes`;
        }
        return kind === "users"
          ? `accounts and grants, ${bytes} bytes, complete`
          : `SQL dump of ${bytes} bytes, complete (ends with "${DUMP_COMPLETED}")`;
      },

      restoreCommand(artifact: ArtifactRecord) {
        if (artifact.meta.kind === "users") return { consume: "mariadb" };
        if (artifact.meta.kind === "binlogs")
          return { prepare: "mkdir binlogs", consume: "tar -xf - -C binlogs" };
        return { prepare: "mariadb -e 'CREATE DATABASE NEWDB'", consume: "mariadb NEWDB" };
      },
    };
  },
});

function usersCheck(): EndMarkerCheck {
  return new EndMarkerCheck(USERS_COMPLETED, () => new SourceError("the accounts file is cut short"));
}
