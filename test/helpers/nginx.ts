/**
 * A throwaway nginx on 127.0.0.1 that takes plain HTTP PUT and DELETE under /backups/ (the dav
 * module's `dav_methods`, no WebDAV listing) and lists folders with `autoindex_format json`,
 * behind basic auth; its config, pid, logs and temp files in a temp folder.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, stopAtEnd, tempDir, waitForPort } from "./env.ts";

export interface Nginx {
  /** Base URL of the PUT area. */
  url: string;
  port: number;
  user: string;
  password: string;
}

export async function startNginxPut(): Promise<Nginx> {
  const dir = tempDir("cairn-nginx-");
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  for (const folder of [join(data, "backups"), join(dir, "temp")]) {
    mkdirSync(folder, { recursive: true });
    chownSync(folder, 65534, 65534); // the workers run as nobody
  }
  const user = "cairn";
  const password = "put-secret-Pw5";
  const hash = execFileSync("openssl", ["passwd", "-apr1", password], { encoding: "utf8" }).trim();
  writeFileSync(join(dir, "htpasswd"), `${user}:${hash}\n`);
  chmodSync(join(dir, "htpasswd"), 0o644);
  const port = await freePort();
  const temp = join(dir, "temp");
  writeFileSync(
    join(dir, "nginx.conf"),
    `worker_processes 1;
daemon off;
user nobody nogroup;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")};
events {}
http {
  access_log off;
  client_body_temp_path ${temp}/body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location /backups/ {
      root ${data};
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw;
      autoindex on;
      autoindex_format json;
      auth_basic cairn;
      auth_basic_user_file ${join(dir, "htpasswd")};
    }
  }
}
`,
  );
  const server: ChildProcess = spawn("nginx", ["-c", join(dir, "nginx.conf"), "-p", dir], {
    stdio: "ignore",
  });
  stopAtEnd(server);
  await waitForPort(port, server, "nginx");
  return { url: `http://127.0.0.1:${port}/backups`, port, user, password };
}
