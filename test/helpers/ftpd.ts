/**
 * A throwaway pure-ftpd on 127.0.0.1: one virtual user (no system account), explicit TLS offered
 * with a self-signed certificate made for the test (and plain FTP still allowed), stopped after
 * the test file.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, selfSignedCertificate, stopAtEnd, tempDir, waitForPort } from "./env.ts";

export interface Ftpd {
  port: number;
  user: string;
  password: string;
  /** The server's certificate, to trust as ca_file. */
  certificate: string;
  home: string;
}

const NOBODY = 65534;

export async function startFtpd(): Promise<Ftpd> {
  const dir = tempDir("cairn-ftpd-");
  chmodSync(dir, 0o755); // the virtual user (nobody) must reach its home
  const home = join(dir, "home");
  mkdirSync(home);
  chownSync(home, NOBODY, NOBODY);
  const password = "ftp-secret-Pw1";
  // pure-pw hashes with argon2id at a cost that makes every login take seconds here; a SHA-512
  // crypt hash is as real for the server and logs in at once.
  const hash = execFileSync("openssl", ["passwd", "-6", password], { encoding: "utf8" }).trim();
  writeFileSync(join(dir, "passwd"), `cairn:${hash}:${NOBODY}:${NOBODY}::${home}/./::::::::::::\n`);
  execFileSync("pure-pw", ["mkdb", join(dir, "passwd.pdb"), "-f", join(dir, "passwd")]);
  const { key, cert: certificate } = selfSignedCertificate(dir);
  writeFileSync(join(dir, "both.pem"), readFileSync(key, "utf8") + readFileSync(certificate, "utf8"));
  const port = await freePort();
  const passive = 30000 + Math.floor(Math.random() * 300) * 100;
  const server: ChildProcess = spawn(
    "pure-ftpd",
    [
      "-S",
      `127.0.0.1,${port}`,
      "-l",
      `puredb:${join(dir, "passwd.pdb")}`,
      "-E", // no anonymous logins
      "-H", // no reverse DNS
      "-Y",
      "1", // TLS offered, plain allowed
      "-2",
      join(dir, "both.pem"),
      "-p",
      `${passive}:${passive + 99}`,
      "-c",
      "100",
      "-C",
      "100",
    ],
    { stdio: "ignore" },
  );
  stopAtEnd(server);
  await waitForPort(port, server, "pure-ftpd");
  return { port, user: "cairn", password, certificate, home };
}
