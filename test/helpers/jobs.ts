/** Configs and fake tools for end-to-end tests. */

import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateIdentity } from "../../src/age/index.ts";
import { configFromObject } from "../../src/config/load.ts";
import type { Registry } from "../../src/registry.ts";
import { cairn, psql, tempDir } from "./env.ts";

export interface Workspace {
  dir: string;
  env: NodeJS.ProcessEnv;
  identity: string;
  recipient: string;
  keyFile: string;
}

export function workspace(dir: string): Workspace {
  const { identity, recipient } = generateIdentity();
  const keyFile = join(dir, "key.txt");
  writeFileSync(keyFile, `${identity}\n`, { mode: 0o600 });
  return { dir, env: { CAIRN_STATE_DIR: join(dir, "state") }, identity, recipient, keyFile };
}

/**
 * A bin folder for the postgres source's `bin_dir`: the real psql and pg_restore, and a pg_dump
 * wrapper whose body is given (it can call the real one as "$REAL_PG_DUMP"). Every call's argv is
 * appended to argv.log so tests can check that no secret is on a command line.
 */
export function fakePgBin(dir: string, pgDumpBody: string): string {
  const bin = join(dir, "bin");
  mkdirSync(bin, { recursive: true });
  const which = (name: string) =>
    execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
  for (const tool of ["psql", "pg_restore"]) {
    const wrapper = join(bin, tool);
    writeFileSync(
      wrapper,
      `#!/bin/sh\necho "${tool} $*" >> "${join(bin, "argv.log")}"\nexec "${which(tool)}" "$@"\n`,
    );
    chmodSync(wrapper, 0o755);
  }
  const pgDump = join(bin, "pg_dump");
  writeFileSync(
    pgDump,
    `#!/bin/sh\necho "pg_dump $*" >> "${join(bin, "argv.log")}"\nREAL_PG_DUMP="${which("pg_dump")}"\n[ "$1" = --version ] && exec "$REAL_PG_DUMP" --version\n${pgDumpBody}\n`,
  );
  chmodSync(pgDump, 0o755);
  return bin;
}

export function linkRealPgDump(bin: string): void {
  const real = execFileSync("sh", ["-c", "command -v pg_dump"], { encoding: "utf8" }).trim();
  symlinkSync(real, join(bin, "pg_dump"));
}

export function postgresJob(options: {
  database: string;
  recipient: string;
  binDir?: string;
  password?: string;
  extra?: string;
}): string {
  return `jobs:
  app:
    sources:
      db:
        type: postgres
        database: ${options.database}
        host: 127.0.0.1
        user: postgres
${options.binDir ? `        bin_dir: ${options.binDir}\n` : ""}${options.password ? `        password: '${options.password.replace(/'/g, "''")}'\n` : ""}    encryption: { age: { recipients: [${options.recipient}] } }
    destinations:
      local: { type: local, path: ./backups }
${options.extra ?? ""}`;
}

/** A one-job config: the source's options as YAML lines, encrypted to `recipient`, stored in ./backups. */
export function sourceJob(job: string, source: string, options: string, recipient: string): string {
  const lines = options
    .trim()
    .split("\n")
    .map((line) => `        ${line}`)
    .join("\n");
  return `jobs:
  ${job}:
    sources:
      ${source}:
${lines}
    encryption: { age: { recipients: [${recipient}] } }
    destinations:
      local: { type: local, path: ./backups }
`;
}

/**
 * A stand-in for the docker CLI (no docker daemon on these machines): it runs `exec -i [-e NAME]…
 * CONTAINER PROGRAM ARGS…` on this host, where the real database listens, refuses `-e NAME=value`
 * (a value on argv) and any other container name, and logs its argv to argv.log. `check` is shell
 * run before the program, e.g. to require a forwarded variable. Returns the folder to put on PATH.
 */
export function fakeDocker(dir: string, container: string, check = ""): string {
  const bin = join(dir, "docker-bin");
  mkdirSync(bin);
  writeFileSync(
    join(bin, "docker"),
    `#!/bin/sh
echo "docker $*" >> "${join(bin, "argv.log")}"
[ "$1" = exec ] || exit 64
shift
while [ "$1" = -i ] || [ "$1" = -e ]; do
  if [ "$1" = -e ]; then echo "$2" | grep -q = && exit 65; shift; fi
  shift
done
[ "$1" = ${container} ] || { echo "no such container: $1" >&2; exit 1; }
shift
${check}
exec "$@"
`,
  );
  chmodSync(join(bin, "docker"), 0o755);
  return bin;
}

/**
 * A workspace with a `site/` folder (one small file) and `cairn.yaml` holding `yaml`; `cli` runs
 * cairn there with the workspace's state folder.
 */
export function configured(yaml: string) {
  const ws = workspace(tempDir());
  mkdirSync(join(ws.dir, "site"));
  writeFileSync(join(ws.dir, "site/a.txt"), "a\n");
  writeFileSync(join(ws.dir, "cairn.yaml"), yaml);
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    cairn(args, { cwd: ws.dir, env: { ...ws.env, ...env } });
  return { ws, cli };
}

/**
 * A pg_dump wrapper body that streams a real dump of its database all but its last kilobyte, then
 * hangs: a dump caught in the middle of its output, which cairn's archive check cannot yet refuse.
 * Fill the database with `fillIncompressible` so the stream gets past the compressor's buffers.
 */
export function hangingPgDump(dir: string): string {
  const file = join(dir, "whole.dump");
  return `"$REAL_PG_DUMP" "$@" > "${file}" || exit 1\nhead -c $(( $(stat -c %s "${file}") - 1000 )) "${file}"\nexec sleep 60`;
}

/** A table of `megabytes` of random bytes (incompressible even as COPY's hex text). */
export function fillIncompressible(database: string, megabytes: number): void {
  psql(
    database,
    `CREATE TABLE noise (id int, data bytea);
     INSERT INTO noise SELECT g, decode(string_agg(lpad(to_hex((random() * 4294967295)::bigint), 8, '0'), ''), 'hex')
       FROM generate_series(1, ${megabytes}) g, generate_series(1, 262144) b GROUP BY g`,
  );
}

/** A workspace with job `notes`: one command source, encrypted to the workspace's key, in ./backups. */
export function notesJob(extra = "", text = "hello") {
  const ws = workspace(tempDir());
  writeFileSync(
    join(ws.dir, "cairn.yaml"),
    `jobs:
  notes:
    sources:
      text: { type: command, command: [echo, ${text}] }
    encryption: { age: { recipients: [${ws.recipient}] } }
${extra}    destinations:
      local: { type: local, path: ./backups }
`,
  );
  const cli = (args: string[]) => cairn(args, { cwd: ws.dir, env: ws.env });
  return { ws, cli };
}

/**
 * A folder with `data/a.txt` and a config (as an object, for the library) whose job `app` backs
 * it up unencrypted to `./backups`; `extra` adds job options (hooks, retention).
 */
/** Job `app` backing up ./data (one file) to ./backups; `extra` adds to or replaces the job's keys. */
export function localFilesJob(extra: Record<string, unknown> = {}, registry?: Registry) {
  const dir = tempDir();
  mkdirSync(join(dir, "data"));
  writeFileSync(join(dir, "data/a.txt"), "a\n");
  const config = configFromObject(
    {
      state_dir: "./state",
      jobs: {
        app: {
          sources: { files: { type: "files", paths: ["./data"] } },
          encryption: "none",
          destinations: { here: { type: "local", path: "./backups" } },
          ...extra,
        },
      },
    },
    { baseDir: dir, ...(registry ? { registry } : {}) },
  );
  return { dir, config };
}
