/** Shared test plumbing: temp folders, the CLI as a user runs it, and the real PostgreSQL. */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { type AddressInfo, connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { after } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

export const ROOT = resolve(import.meta.dirname, "../..");
export const CLI = join(ROOT, "entry/cairn.js");

/** Servers started by the helpers; stopped, and waited for, before any temp folder is removed. */
const servers = new Set<ChildProcess>();

async function stopServers(): Promise<void> {
  await Promise.all([...servers].map(stopServer));
}

async function stopServer(server: ChildProcess): Promise<void> {
  servers.delete(server);
  if (server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((resolveExit) => server.once("exit", resolveExit));
  server.kill("SIGTERM");
  const killed = sleep(5000, undefined, { ref: false }).then(() => server.kill("SIGKILL"));
  await Promise.race([exited, killed]);
  await exited;
}

// Registered first, so it runs before the hooks that remove the folders these servers write in
// (a server still writing made `rm -r` fail with ENOTEMPTY in CI).
after(stopServers);

/** A temp folder removed after the test file. */
const tempDirs = new Set<string>();
// Scripts that use the helpers outside the test runner (the benches) end with process.exit, which
// runs no `after` hooks: their folders (gigabytes of uploads) are removed here instead.
process.once("exit", () => {
  for (const dir of tempDirs)
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // a server still writing as it stops: the folder stays, nothing else is affected
    }
});

export function tempDir(prefix = "cairn-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  after(() => {
    rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
    tempDirs.delete(dir);
  });
  return dir;
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cairn ARGS` (the TypeScript entry on this Node) and collects its output. */
export function cairn(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CliResult> {
  return run(process.execPath, [CLI, ...args], options);
}

export function run(
  program: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const spawnOptions: SpawnOptions = {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: "pipe",
    };
    const child = spawn(program, args, spawnOptions);
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
    // A program that exits without reading its input closes the pipe: that is not a test failure.
    child.stdin!.on("error", () => {});
    child.stdin!.end(options.input ?? "");
  });
}

// ── PostgreSQL (127.0.0.1:5432, user postgres, trust auth on these machines) ───────────

export const PG = { host: "127.0.0.1", port: 5432, user: "postgres" };

export function psql(database: string, sql: string): string {
  const result = spawnSync(
    "psql",
    [
      "-h",
      PG.host,
      "-p",
      String(PG.port),
      "-U",
      PG.user,
      "-d",
      database,
      "-X",
      "-qAt",
      "-v",
      "ON_ERROR_STOP=1",
    ],
    {
      input: sql,
      encoding: "utf8",
    },
  );
  if (result.status !== 0) throw new Error(`psql failed: ${result.stderr}`);
  return result.stdout.trim();
}

/** Creates a uniquely named database, dropped after the test file. */
export function createDatabase(prefix = "cairn_test"): string {
  const name = uniqueName(prefix);
  psql("postgres", `CREATE DATABASE "${name}"`);
  after(() => dropDatabase(name));
  return name;
}

export function dropDatabase(name: string): void {
  psql("postgres", `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

export function databaseExists(name: string): boolean {
  return psql("postgres", `SELECT count(*) FROM pg_database WHERE datname = '${name}'`) === "1";
}

/** Every user table's rows, in a stable order, as text: compare two databases with deepEqual. */
export function tableContents(database: string): Record<string, string> {
  const tables = psql(
    database,
    "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema') ORDER BY 1",
  )
    .split("\n")
    .filter(Boolean);
  const out: Record<string, string> = {};
  for (const table of tables)
    out[table] = psql(
      database,
      `SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) || ':' || count(*) FROM ${table} t`,
    );
  return out;
}

/** A database with awkward content: jsonb, bytea, arrays, unicode, a view, a trigger function, a large row. */
export function fillAwkwardDatabase(database: string): void {
  psql(
    database,
    `
    CREATE TABLE "Ünïcødé tåble" (id serial PRIMARY KEY, doc jsonb, blob bytea, tags text[], note text, at timestamptz);
    INSERT INTO "Ünïcødé tåble" (doc, blob, tags, note, at)
      SELECT jsonb_build_object('n', g, 'nested', jsonb_build_object('emoji', '🐘', 'list', jsonb_build_array(g, g * 2))),
             decode(md5(g::text) || md5((g * 7)::text), 'hex'),
             ARRAY['a' || g, 'ß', NULL],
             repeat('línea ' || g, 3) || E'\\ttab\\nnewline',
             '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 hour'
      FROM generate_series(1, 2000) g;
    INSERT INTO "Ünïcødé tåble" (doc, blob, tags, note) VALUES ('{}', '\\x00ff00'::bytea, '{}', NULL);
    CREATE TABLE big_rows (id int PRIMARY KEY, payload text);
    INSERT INTO big_rows SELECT g, repeat(md5(g::text), 20000) FROM generate_series(1, 5) g;
    CREATE VIEW recent AS SELECT id, note FROM "Ünïcødé tåble" WHERE id > 1990;
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.at := now(); RETURN NEW; END $$;
    CREATE TRIGGER touch_at BEFORE UPDATE ON "Ünïcødé tåble" FOR EACH ROW EXECUTE FUNCTION touch();
    `,
  );
}

export function hasProgram(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`]).status === 0;
}

/** Every file under `root` (relative path → content), for comparing folder trees. */
export function treeContents(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isSymbolicLink()) out[relative(root, path)] = `-> ${readlinkSync(path)}`;
      else out[relative(root, path)] = readFileSync(path, "utf8");
    }
  };
  walk(root);
  return out;
}

/** A TCP port that is free right now on 127.0.0.1 (the OS picks it, so it is outside other tests' choices). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

/** Waits until something accepts connections on 127.0.0.1:port; fails if `server` exits first. */
export async function waitForPort(port: number, server: ChildProcess, name: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const open = await new Promise<boolean>((resolveOpen) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.end();
        resolveOpen(true);
      });
      socket.on("error", () => resolveOpen(false));
    });
    if (open) return;
    if (server.exitCode !== null) throw new Error(`${name} exited with ${server.exitCode}`);
    await sleep(100);
  }
  throw new Error(`${name} did not listen on port ${port} within 20 s`);
}

/**
 * Stops a server the helpers started once the test file is done — or when the process exits
 * without running test hooks (a bench or a script calling process.exit), so none is left behind.
 */
export function stopAtEnd(server: ChildProcess): void {
  servers.add(server);
  process.once("exit", () => server.kill("SIGTERM"));
}

/** A self-signed certificate for 127.0.0.1 (key.pem, cert.pem in `dir`), for TLS test servers. */
export function selfSignedCertificate(dir: string): { key: string; cert: string } {
  const key = join(dir, "key.pem");
  const cert = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"],
      ...["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", cert],
    ],
    { stdio: "ignore" },
  );
  return { key, cert };
}
