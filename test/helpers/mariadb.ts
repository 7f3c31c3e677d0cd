/** The real MariaDB on 127.0.0.1:3306 (root, no password on these machines). */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { after } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, stopAtEnd, uniqueName } from "./env.ts";

export const MARIADB = { host: "127.0.0.1", port: 3306, user: "root" };

export function mariadb(sql: string, database?: string): string {
  const args = [
    "-h",
    MARIADB.host,
    "-P",
    String(MARIADB.port),
    "-u",
    MARIADB.user,
    "--batch",
    "--skip-column-names",
  ];
  if (database) args.push(`--database=${database}`);
  const result = spawnSync("mariadb", args, { input: sql, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`mariadb failed: ${result.stderr}`);
  return result.stdout.trim();
}

export function createMariaDatabase(prefix = "cairn_test"): string {
  const name = uniqueName(prefix);
  mariadb(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4`);
  after(() => dropMariaDatabase(name));
  return name;
}

export function dropMariaDatabase(name: string): void {
  mariadb(`DROP DATABASE IF EXISTS \`${name}\``);
}

export function mariaDatabaseExists(name: string): boolean {
  return mariadb(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${name}'`) === "1";
}

/** Awkward content: unicode names, JSON, binary, large rows, MyISAM, a view, trigger, procedure, function, event. */
export function fillAwkwardMariaDatabase(database: string): void {
  mariadb(
    `
    CREATE TABLE \`ünïcødé tåble\` (id INT PRIMARY KEY AUTO_INCREMENT, doc JSON, bin LONGBLOB, note TEXT, at DATETIME(6)) CHARACTER SET utf8mb4;
    INSERT INTO \`ünïcødé tåble\` (doc, bin, note, at)
      SELECT JSON_OBJECT('n', seq, 'emoji', '🐬', 'list', JSON_ARRAY(seq, seq * 2)), UNHEX(CONCAT(MD5(seq), '00FF00', MD5(seq * 7))),
             CONCAT(REPEAT(CONCAT('línea ', seq), 3), '\\ttab\\nnewline'), TIMESTAMP('2026-01-01') + INTERVAL seq HOUR
      FROM seq_1_to_2000;
    INSERT INTO \`ünïcødé tåble\` (doc, bin, note) VALUES ('{}', X'00', NULL);
    CREATE TABLE big_rows (id INT PRIMARY KEY, payload LONGTEXT);
    INSERT INTO big_rows SELECT seq, REPEAT(MD5(seq), 20000) FROM seq_1_to_5;
    CREATE TABLE legacy (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=MyISAM;
    INSERT INTO legacy SELECT seq, CONCAT('v', seq) FROM seq_1_to_50;
    CREATE VIEW recent AS SELECT id, note FROM \`ünïcødé tåble\` WHERE id > 1990;
    CREATE TRIGGER touch_at BEFORE UPDATE ON \`ünïcødé tåble\` FOR EACH ROW SET NEW.at = NOW(6);
    DELIMITER //
    CREATE PROCEDURE count_rows(OUT n INT) BEGIN SELECT COUNT(*) INTO n FROM \`ünïcødé tåble\`; END //
    CREATE FUNCTION twice(x INT) RETURNS INT DETERMINISTIC RETURN x * 2 //
    DELIMITER ;
    CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM legacy WHERE id < 0;
    `,
    database,
  );
}

/** Everything a restore must bring back, as comparable text. */
export function mariaContents(database: string): Record<string, string> {
  const out: Record<string, string> = {};
  const tables = mariadb(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = '${database}' AND table_type = 'BASE TABLE' ORDER BY 1`,
  ).split("\n");
  for (const table of tables.filter(Boolean)) {
    const columns = mariadb(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = '${database}' AND table_name = '${table}' ORDER BY ordinal_position`,
    )
      .split("\n")
      .map((c) => `IFNULL(HEX(\`${c}\`), 'NULL')`)
      .join(", ");
    out[`rows ${table}`] = mariadb(
      `SET SESSION group_concat_max_len = 1000000000; SELECT MD5(GROUP_CONCAT(h ORDER BY h)), COUNT(*) FROM (SELECT MD5(CONCAT_WS(',', ${columns})) AS h FROM \`${table}\`) x`,
      database,
    );
  }
  out.views = mariadb(
    `SELECT table_name FROM information_schema.views WHERE table_schema = '${database}' ORDER BY 1`,
  );
  out.triggers = mariadb(
    `SELECT trigger_name, action_statement FROM information_schema.triggers WHERE trigger_schema = '${database}' ORDER BY 1`,
  );
  out.routines = mariadb(
    `SELECT routine_name, routine_type, routine_definition FROM information_schema.routines WHERE routine_schema = '${database}' ORDER BY 1`,
  );
  out.events = mariadb(
    `SELECT event_name, status FROM information_schema.events WHERE event_schema = '${database}' ORDER BY 1`,
  );
  out.engines = mariadb(
    `SELECT table_name, engine FROM information_schema.tables WHERE table_schema = '${database}' AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  return out;
}

/**
 * A throwaway MariaDB server (its own data folder, its own port) with binary logging on, stopped
 * after the test file: the shared server keeps log_bin off.
 */
export async function startMariaDbWithBinlog(
  dir: string,
): Promise<{ port: number; sql: (q: string, db?: string) => string }> {
  const data = join(dir, "mariadb-data");
  const install = spawnSync(
    "mariadb-install-db",
    [
      "--no-defaults",
      `--datadir=${data}`,
      "--user=root",
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
    ],
    { encoding: "utf8" },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr}`);
  const port = await freePort();
  const server = spawn(
    "mariadbd",
    [
      "--no-defaults",
      `--datadir=${data}`,
      "--user=root",
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--socket=${join(dir, "mariadb.sock")}`,
      `--log-bin=${join(data, "binlog")}`,
      "--server-id=7",
      "--skip-log-error",
    ],
    { stdio: "ignore" },
  );
  stopAtEnd(server);
  const sql = (query: string, database?: string) => {
    const args = ["-h", "127.0.0.1", "-P", String(port), "-u", "root", "--batch", "--skip-column-names"];
    if (database) args.push(`--database=${database}`);
    const result = spawnSync("mariadb", args, { input: query, encoding: "utf8" });
    if (result.status !== 0) throw new Error(`mariadb failed: ${result.stderr}`);
    return result.stdout.trim();
  };
  for (let i = 0; i < 100; i++) {
    try {
      sql("SELECT 1");
      return { port, sql };
    } catch {
      await sleep(100);
    }
  }
  throw new Error("the private MariaDB did not start");
}
