/** Throwaway redis-server processes on 127.0.0.1, stopped after the test file. */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { after } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";

export interface RedisServer {
  port: number;
  cli(args: string[], input?: string | Buffer): string;
  stop(): Promise<void>;
}

export async function startRedis(options: {
  dir: string;
  dbfilename?: string;
  password?: string;
}): Promise<RedisServer> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const args = [
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      options.dir,
    ];
    if (options.dbfilename) args.push("--dbfilename", options.dbfilename);
    if (options.password) args.push("--requirepass", options.password);
    const child: ChildProcess = spawn("redis-server", args, { stdio: "ignore" });
    const env = { ...process.env, ...(options.password ? { REDISCLI_AUTH: options.password } : {}) };
    const cli = (cliArgs: string[], input?: string | Buffer) => {
      const r = spawnSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...cliArgs], {
        input,
        encoding: "utf8",
        env,
        maxBuffer: 64 * 1024 * 1024,
      });
      if (r.status !== 0) throw new Error(`redis-cli ${cliArgs.join(" ")}: ${r.stderr}`);
      return r.stdout;
    };
    for (let i = 0; i < 50; i++) {
      if (child.exitCode !== null) break;
      try {
        if (cli(["PING"]).trim() === "PONG") {
          const server = {
            port,
            cli,
            stop: async () => {
              child.kill("SIGKILL");
              await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
            },
          };
          after(() => server.stop());
          return server;
        }
      } catch {}
      await sleep(100);
    }
    child.kill("SIGKILL");
  }
  throw new Error("could not start redis-server on a free port");
}

/** Every Redis type, unicode keys, binary and large values, a TTL, a second database. */
export function fillRedis(server: RedisServer): void {
  const commands = [
    "SET plain hello",
    "SET ünïcødé:ключ значение",
    "HSET user:1 name Ada lang en",
    "RPUSH queue a b c d",
    "SADD tags x y z",
    "ZADD board 1 one 2 two 3.5 three",
    "XADD events * kind login",
    "SET session:1 s EX 3600",
    "SELECT 3",
    "SET in-db-3 yes",
  ];
  server.cli([], `${commands.join("\n")}\n`);
  server.cli(["-x", "SET", "binary"], Buffer.from([0, 255, 10, 13, 0]));
  server.cli(["-x", "SET", "big"], Buffer.alloc(2_000_000, "x"));
}

const READ: Record<string, string[]> = {
  string: ["GET"],
  hash: ["HGETALL"],
  list: ["LRANGE", "0", "-1"],
  set: ["SMEMBERS"],
  zset: ["ZRANGE", "0", "-1", "WITHSCORES"],
  stream: ["XRANGE", "-", "+"],
};

/** Every key of every database: its type, its value (members sorted where order means nothing) and whether it expires. */
export function redisContents(server: RedisServer): string[] {
  const out: string[] = [];
  for (const db of ["0", "3"]) {
    const keys = server.cli(["-n", db, "--scan"]).split("\n").filter(Boolean).sort();
    for (const key of keys) {
      const type = server.cli(["-n", db, "TYPE", key]).trim();
      const [command, ...args] = READ[type]!;
      let value = server.cli(["-n", db, "--no-raw", command!, key, ...args]).trim();
      // Sets and hashes have no order: compare their members (hash fields with their values) sorted.
      if (type === "set" || type === "hash") {
        const items = value.split("\n").map((line) => line.replace(/^\d+\) /, ""));
        const members =
          type === "hash" ? items.flatMap((v, i) => (i % 2 ? [] : [`${v}=${items[i + 1]}`])) : items;
        value = members.sort().join("\n");
      }
      const ttl = Number(server.cli(["-n", db, "TTL", key]).trim());
      out.push(
        `${db} ${type} ${key} ${value.length > 200 ? `${value.length}:${value.slice(0, 40)}` : value} ${ttl > 0 ? "expires" : ttl}`,
      );
    }
  }
  return out;
}
