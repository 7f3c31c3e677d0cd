/**
 * `npm run bench`: cairn against the plain shell pipelines on the same data, in the same run.
 *
 *   PostgreSQL (~1 GB dump):  pg_dump -Fc -Z0 | zstd -3 | age -r …   vs   cairn backup (postgres source)
 *   Files (~1 GB mixed tree): tar -c | zstd -3 | age -r …            vs   cairn backup (files source)
 *   MySQL (~500 MB dump):     mariadb-dump --single-transaction … | zstd -3 | age -r …   vs   cairn backup (mysql source)
 *
 * Prints wall time and peak RSS, and the ratios cairn / pipeline (target: ≤ 1.15× wall, ≤ 200 MB RSS).
 * The data is generated once into .bench/ and the database cairn_bench, and reused by later runs.
 * Needs: pg_dump, pgbench, zstd, age, tar, /usr/bin/time, PostgreSQL on 127.0.0.1:5432 (user postgres).
 * Needs for MySQL: mariadb-dump and MariaDB on 127.0.0.1:3306 (user root, no password).
 * Environment: BENCH_RUNS (default 3), BENCH_SCALE (1 = ~1 GB each; 0.2 for a quick look),
 * BENCH_ONLY (comma-separated case names, e.g. MySQL).
 */
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { generateIdentity } from "../src/age/index.ts";

const ROOT = resolve(import.meta.dirname, "..");
const WORK = join(ROOT, ".bench");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const DATABASE = `cairn_bench_${String(SCALE).replace(".", "_")}`;
const PG = ["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"];
const MY = "-h 127.0.0.1 -P 3306 -u root";
const ONLY = process.env.BENCH_ONLY?.split(",").map((name) => name.trim().toLowerCase());
const wanted = (name: string) => !ONLY || ONLY.includes(name.toLowerCase());

function sh(command: string, options: { quiet?: boolean } = {}): string {
  const result = spawnSync("bash", ["-o", "pipefail", "-c", command], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.status !== 0) throw new Error(`failed (${result.status}): ${command}\n${result.stderr}`);
  if (!options.quiet && result.stderr.trim()) process.stderr.write(result.stderr);
  return result.stdout.trim();
}

function requireTools(): void {
  const missing = ["pg_dump", "pgbench", "zstd", "age", "tar", "psql"].filter(
    (tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0,
  );
  if (!existsSync("/usr/bin/time")) missing.push("/usr/bin/time (package: time)");
  if (missing.length)
    throw new Error(
      `missing tools: ${missing.join(", ")} (apt-get install postgresql-client postgresql-contrib zstd age time)`,
    );
}

function psql(database: string, sql: string): string {
  return sh(`psql ${PG.join(" ")} -d ${database} -X -qAt -v ON_ERROR_STOP=1 <<'SQL'\n${sql}\nSQL`, {
    quiet: true,
  });
}

/** A database whose dump compresses like real data: pgbench tables, prose, hex text and random bytea. */
function ensureDatabase(): void {
  const exists = psql("postgres", `SELECT count(*) FROM pg_database WHERE datname = '${DATABASE}'`) === "1";
  if (exists && psql(DATABASE, "SELECT count(*) FROM pg_tables WHERE tablename = 'done'") === "1") return;
  console.error(`generating database ${DATABASE} (once; reused by later runs)…`);
  psql("postgres", `DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE}`);
  sh(`pgbench ${PG.join(" ")} -i -q -s ${Math.max(1, Math.round(20 * SCALE))} ${DATABASE}`, { quiet: true });
  const rows = (n: number) => Math.max(1, Math.round(n * SCALE));
  psql(
    DATABASE,
    `
    CREATE TABLE prose (id int PRIMARY KEY, body text);
    INSERT INTO prose SELECT g, (SELECT string_agg((ARRAY['backup','the','restore','of','data','and','a','database',
      'operator','trust','night','storage','ocean','stone','cairn','mountain','path','to','in','keeps'])[1 + floor(random() * 20)::int]
      || CASE WHEN random() < 0.1 THEN '.' ELSE '' END, ' ') FROM generate_series(1, 150 + (g % 7))) FROM generate_series(1, ${rows(400_000)}) g;
    CREATE TABLE hex (id int PRIMARY KEY, body text);
    INSERT INTO hex SELECT g, (SELECT string_agg(md5(random()::text || i), '') FROM generate_series(1, 30 + 0 * g) AS s(i)) FROM generate_series(1, ${rows(200_000)}) g;
    CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
    INSERT INTO blobs SELECT g, (SELECT decode(string_agg(md5(random()::text || i), ''), 'hex') FROM generate_series(1, 64 + 0 * g) AS s(i)) FROM generate_series(1, ${rows(150_000)}) g;
    CREATE TABLE done (at timestamptz DEFAULT now());
    INSERT INTO done DEFAULT VALUES;
    `,
  );
}

function mariadb(sql: string, database = ""): string {
  return sh(`mariadb ${MY} --batch --skip-column-names ${database} <<'SQL'\n${sql}\nSQL`, { quiet: true });
}

/** A MariaDB database of ~490 MB of dump: short rows, prose-like text, hex text and random blobs. */
function ensureMariaDatabase(): void {
  const done = mariadb(
    `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '${DATABASE}' AND table_name = 'done'`,
  );
  if (done === "1") return;
  console.error(`generating MariaDB database ${DATABASE} (once; reused by later runs)…`);
  const rows = (n: number) => Math.max(1, Math.round(n * SCALE));
  const word =
    "ELT(1 + FLOOR(RAND() * 12), 'backup','the','restore','of','data','operator','trust','stone','cairn','path','night','keeps')";
  mariadb(`DROP DATABASE IF EXISTS ${DATABASE}; CREATE DATABASE ${DATABASE} CHARACTER SET utf8mb4;
    USE ${DATABASE};
    CREATE TABLE accounts (id INT PRIMARY KEY, balance INT, name VARCHAR(40), created DATETIME) ENGINE=InnoDB;
    INSERT INTO accounts SELECT seq, FLOOR(RAND() * 1000000), CONCAT('user', seq), NOW() - INTERVAL seq MINUTE FROM seq_1_to_${rows(2_000_000)};
    CREATE TABLE prose (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB;
    INSERT INTO prose SELECT seq, CONCAT_WS(' ', ${Array.from({ length: 40 }, () => word).join(", ")}) FROM seq_1_to_${rows(400_000)};
    CREATE TABLE hex (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB;
    INSERT INTO hex SELECT seq, CONCAT(${Array.from({ length: 20 }, () => "MD5(RAND())").join(", ")}) FROM seq_1_to_${rows(150_000)};
    CREATE TABLE blobs (id INT PRIMARY KEY, data LONGBLOB) ENGINE=InnoDB;
    INSERT INTO blobs SELECT seq, UNHEX(CONCAT(${Array.from({ length: 32 }, () => "MD5(RAND())").join(", ")})) FROM seq_1_to_${rows(120_000)};
    CREATE TABLE done (at DATETIME);
    INSERT INTO done VALUES (NOW());`);
}

/** A tree of mixed files: 20k small text/JSON files, big logs, and 30 % incompressible data. */
function ensureTree(): string {
  const tree = join(WORK, `tree-${SCALE}`);
  if (existsSync(join(tree, ".done"))) return tree;
  console.error(`generating ${tree} (once)…`);
  rmSync(tree, { recursive: true, force: true });
  const words = "the backup of a database is only as good as its restore and operators know it well".split(
    " ",
  );
  let seed = 42;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const text = (bytes: number) => {
    const parts: string[] = [];
    let size = 0;
    while (size < bytes) {
      const line = `${new Date(1_700_000_000_000 + rand()).toISOString()} ${words[rand() % words.length]} id=${rand() % 100000} ${words[rand() % words.length]} ${words[rand() % words.length]}\n`;
      parts.push(line);
      size += line.length;
    }
    return parts.join("");
  };
  const small = Math.round(20_000 * SCALE);
  for (let i = 0; i < small; i++) {
    const dir = join(tree, "small", String(i % 200));
    if (i < 200) mkdirSync(dir, { recursive: true });
    const body =
      i % 2
        ? JSON.stringify({ id: i, tags: words.slice(0, rand() % 10), text: text(2000 + (rand() % 8000)) })
        : text(2000 + (rand() % 14000));
    writeFileSync(join(dir, `f${i}.${i % 2 ? "json" : "txt"}`), body);
  }
  mkdirSync(join(tree, "logs"));
  for (let i = 0; i < Math.round(10 * SCALE); i++)
    writeFileSync(join(tree, "logs", `app${i}.log`), text(50 * 1024 * 1024));
  mkdirSync(join(tree, "media"));
  for (let i = 0; i < Math.round(30 * SCALE); i++)
    writeFileSync(join(tree, "media", `v${i}.bin`), randomBytes(10 * 1024 * 1024));
  writeFileSync(join(tree, ".done"), "");
  return tree;
}

interface Measure {
  seconds: number;
  rssMB: number;
}

/** Wall time and peak RSS (GNU time's %M: the largest process of the command). */
function measure(command: string): Measure {
  const out = sh(
    `/usr/bin/time -f '__TIME__ %e %M' bash -o pipefail -c ${JSON.stringify(command)} 2>&1 >/dev/null | grep __TIME__`,
  );
  const [, seconds, kb] = out.split(/\s+/);
  return { seconds: Number(seconds), rssMB: Number(kb) / 1024 };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function main(): void {
  requireTools();
  mkdirSync(WORK, { recursive: true });
  if (wanted("PostgreSQL")) ensureDatabase();
  const tree = wanted("Files") ? ensureTree() : "";
  if (wanted("MySQL")) ensureMariaDatabase();
  const { identity, recipient } = generateIdentity();
  const out = join(WORK, "out");
  const config = join(WORK, "cairn.yaml");
  writeFileSync(
    config,
    `state_dir: ${join(WORK, "state")}
jobs:
  pg:
    sources: { db: { type: postgres, database: ${DATABASE}, host: 127.0.0.1, user: postgres } }
    compression: { type: zstd, level: 3 }
    encryption: { age: { recipients: [${recipient}] } }
    destinations: { local: { type: local, path: ${out} } }
  my:
    sources: { db: { type: mysql, database: ${DATABASE}, host: 127.0.0.1, port: 3306, user: root } }
    compression: { type: zstd, level: 3 }
    encryption: { age: { recipients: [${recipient}] } }
    destinations: { local: { type: local, path: ${out} } }
  tree:
    sources: { tree: { type: files, paths: [${tree || "."}] } }
    compression: { type: zstd, level: 3 }
    encryption: { age: { recipients: [${recipient}] } }
    destinations: { local: { type: local, path: ${out} } }
`,
  );
  const cli = join(ROOT, "entry/cairn.js");
  const cairn = (job: string) => `${process.execPath} ${cli} backup ${job} -q -c ${config}`;
  const cases = [
    {
      name: "PostgreSQL",
      pipeline: `pg_dump ${PG.join(" ")} -Fc -Z0 ${DATABASE} | zstd -3 -q | age -r ${recipient} > ${out}/pipeline.age`,
      cairn: cairn("pg"),
    },
    {
      name: "Files",
      pipeline: `tar -C ${tree} -c . | zstd -3 -q | age -r ${recipient} > ${out}/pipeline.age`,
      cairn: cairn("tree"),
    },
    {
      name: "MySQL",
      pipeline: `mariadb-dump ${MY} --single-transaction --routines --triggers --events --hex-blob --default-character-set=utf8mb4 ${DATABASE} | zstd -3 -q | age -r ${recipient} > ${out}/pipeline.age`,
      cairn: cairn("my"),
    },
  ].filter((c) => wanted(c.name));
  const size = (job: string) => Number(sh(`du -sb ${out}/${job} | cut -f1`));
  const rows: string[] = [];
  for (const c of cases) {
    const pipeline: Measure[] = [];
    const ours: Measure[] = [];
    let stored = 0;
    let baseline = 0;
    for (let i = 0; i < RUNS; i++) {
      rmSync(out, { recursive: true, force: true });
      mkdirSync(out, { recursive: true });
      pipeline.push(measure(c.pipeline));
      baseline = Number(sh(`stat -c %s ${out}/pipeline.age`));
      ours.push(measure(c.cairn));
      stored = size({ Files: "tree", PostgreSQL: "pg", MySQL: "my" }[c.name]!);
      console.error(
        `${c.name} run ${i + 1}: pipeline ${pipeline.at(-1)!.seconds}s, cairn ${ours.at(-1)!.seconds}s`,
      );
    }
    const p = median(pipeline.map((m) => m.seconds));
    const o = median(ours.map((m) => m.seconds));
    rows.push(
      `| ${c.name} | ${(baseline / 1e6).toFixed(0)} MB | ${p.toFixed(2)} s | ${o.toFixed(2)} s | **${(o / p).toFixed(2)}×** | ${median(ours.map((m) => m.rssMB)).toFixed(0)} MB | ${(stored / 1e6).toFixed(0)} MB |`,
    );
  }
  rmSync(out, { recursive: true, force: true });
  console.log(
    `\ncairn ${sh(`${process.execPath} ${cli} --version`)}, node ${process.version}, ${RUNS} runs (median), scale ${SCALE}, identity ${createHash("sha256").update(identity).digest("hex").slice(0, 8)}`,
  );
  console.log(
    "| data | pipeline output | pipeline wall | cairn wall | ratio | cairn peak RSS | cairn stored |",
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const row of rows) console.log(row);
}

main();
