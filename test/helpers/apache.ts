/**
 * A throwaway Apache httpd with mod_dav on 127.0.0.1: basic auth with one user, the DAV share at
 * /dav, its own config, pid and lock files in a temp folder; stopped after the test file.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, hasProgram, stopAtEnd, tempDir, waitForPort } from "./env.ts";

/** Why Apache tests cannot run here, or false when they can. */
export const apacheMissing = (): string | false =>
  hasProgram("/usr/sbin/apache2") ? false : "needs apache2 (.ci/system-deps installs it)";

export interface Apache {
  /** Base URL of the DAV share. */
  url: string;
  port: number;
  user: string;
  password: string;
}

const MODULES = [
  "mpm_event",
  "authn_core",
  "authn_file",
  "authz_core",
  "authz_user",
  "auth_basic",
  "alias",
  "dav",
  "dav_fs",
];

export async function startApacheDav(): Promise<Apache> {
  const dir = tempDir("cairn-apache-");
  chmodSync(dir, 0o755);
  const data = join(dir, "data");
  const locks = join(dir, "locks");
  for (const folder of [data, locks]) {
    mkdirSync(folder);
    chownSync(folder, 65534, 65534); // the server's children run as nobody
  }
  const user = "cairn";
  const password = "dav-secret-Pw1";
  const hash = execFileSync("openssl", ["passwd", "-apr1", password], { encoding: "utf8" }).trim();
  writeFileSync(join(dir, "htpasswd"), `${user}:${hash}\n`);
  const port = await freePort();
  writeFileSync(
    join(dir, "httpd.conf"),
    [
      `ServerRoot ${dir}`,
      `Listen 127.0.0.1:${port}`,
      "ServerName 127.0.0.1",
      ...MODULES.map((m) => `LoadModule ${m}_module /usr/lib/apache2/modules/mod_${m}.so`),
      "User nobody",
      "Group nogroup",
      `PidFile ${join(dir, "httpd.pid")}`,
      `ErrorLog ${join(dir, "error.log")}`,
      `DavLockDB ${join(locks, "DavLock")}`,
      `Alias /dav ${data}`,
      `<Directory ${data}>`,
      "  Dav On",
      "  AuthType Basic",
      "  AuthName cairn",
      `  AuthUserFile ${join(dir, "htpasswd")}`,
      "  Require valid-user",
      "</Directory>",
    ].join("\n"),
  );
  const server: ChildProcess = spawn("/usr/sbin/apache2", ["-f", join(dir, "httpd.conf"), "-DFOREGROUND"], {
    stdio: "ignore",
  });
  stopAtEnd(server);
  await waitForPort(port, server, "apache2");
  return { url: `http://127.0.0.1:${port}/dav`, port, user, password };
}
