/**
 * A throwaway OpenSSH server on 127.0.0.1 (its own host key, config and port), serving SFTP to root
 * with a key made for the test; stopped after the test file.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, stopAtEnd, tempDir, waitForPort } from "./env.ts";

export interface Sshd {
  port: number;
  user: string;
  clientKey: string;
  knownHosts: string;
  /** The folder SFTP paths are relative to, on this machine. */
  home: string;
}

/**
 * `keyOptions`: options for the client key's authorized_keys line, e.g. `command="rrsync /srv"`.
 * `passwords`: password logins allowed too (for users that have one).
 */
export async function startSshd(keyOptions = "", { passwords = false } = {}): Promise<Sshd> {
  const dir = tempDir("cairn-sshd-");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "host_key")]);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "client_key")]);
  const clientKey = readFileSync(join(dir, "client_key.pub"), "utf8");
  writeFileSync(join(dir, "authorized_keys"), keyOptions ? `${keyOptions} ${clientKey}` : clientKey);
  const home = join(dir, "sftp-root");
  mkdirSync(home);
  mkdirSync("/run/sshd", { recursive: true });
  const port = await freePort();
  writeFileSync(
    join(dir, "sshd_config"),
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${join(dir, "host_key")}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PermitRootLogin prohibit-password",
      `PasswordAuthentication ${passwords ? "yes" : "no"}`,
      "StrictModes no",
      "UsePAM no",
      `Subsystem sftp internal-sftp -d ${home}`,
    ].join("\n"),
  );
  const server: ChildProcess = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], {
    stdio: "ignore",
  });
  stopAtEnd(server);
  await waitForPort(port, server, "sshd");
  const hostKey = readFileSync(join(dir, "host_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ");
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostKey}\n`);
  return { port, user: "root", clientKey: join(dir, "client_key"), knownHosts, home };
}
