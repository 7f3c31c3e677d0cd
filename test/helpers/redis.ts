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
