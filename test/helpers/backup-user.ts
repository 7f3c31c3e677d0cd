/**
 * An unprivileged login for SSH-based destination tests, whose shell is /bin/sh: as root, every
 * SSH session would pay for this machine's root .bashrc (pyenv, ~0.2 s of CPU per session), which
 * measures the machine, not cairn. Created once per machine (the tests run as root).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tempDir } from "./env.ts";
import type { Sshd } from "./sshd.ts";

export const BACKUP_USER = "cairn-rsync-test";

export function ensureBackupUser(): void {
  if (spawnSync("id", [BACKUP_USER]).status === 0) return;
  execFileSync("useradd", [
    "--system",
    "--shell",
    "/bin/sh",
    "--home-dir",
    "/nonexistent",
    "--no-create-home",
    "--password",
    "*",
    BACKUP_USER,
  ]);
}

/** Gives `dir` to the backup user. */
export function ownedByBackupUser(dir: string): string {
  execFileSync("chown", ["-R", `${BACKUP_USER}:`, dir]);
  return dir;
}

/** The sshd's folder becomes passable and its home the backup user's: sshd reads authorized_keys as the user. */
export function forBackupUser(sshd: Sshd): Sshd {
  ownedByBackupUser(sshd.home);
  chmodSync(dirname(sshd.home), 0o711);
  return { ...sshd, user: BACKUP_USER };
}

/** Gives the backup user this password (it has none otherwise: `*` logs in with nothing). */
export function setBackupUserPassword(password: string): void {
  execFileSync("chpasswd", { input: `${BACKUP_USER}:${password}\n` });
}

/** A known_hosts naming the same server on another port (a fault proxy in front of it). */
export function knownHostsForPort(sshd: Sshd, port: number): string {
  const known = join(tempDir(), "known_hosts");
  writeFileSync(known, readFileSync(sshd.knownHosts, "utf8").replace(`]:${sshd.port} `, `]:${port} `));
  return known;
}
