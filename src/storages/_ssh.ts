/**
 * What the destinations that drive OpenSSH's `ssh` share (sftp, rsync, git): the options that make
 * it safe unattended (strict host key checking against a named known_hosts, no prompts, dead
 * connections noticed), a password or key passphrase handed over through SSH_ASKPASS (never argv),
 * and errors that say what to do.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";

export interface SshLogin {
  port?: number;
  known_hosts?: string;
  private_key_file?: string;
}

/** ssh options for an unattended login; `prompts`: let SSH_ASKPASS answer password prompts. */
export function sshOptions(login: SshLogin, prompts = false): string[] {
  return [
    ...(login.port === undefined ? [] : ["-p", String(login.port)]),
    "-o",
    `BatchMode=${prompts ? "no" : "yes"}`,
    ...(prompts ? ["-o", "NumberOfPasswordPrompts=1"] : []),
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${login.known_hosts ?? join(homedir(), ".ssh/known_hosts")}`,
    "-o",
    "ConnectTimeout=30",
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
    ...(login.private_key_file ? ["-o", "IdentitiesOnly=yes", "-i", login.private_key_file] : []),
  ];
}

/**
 * The environment that lets ssh read a password or key passphrase without a terminal: a small
 * SSH_ASKPASS script in a private folder prints it from the ssh process's own environment.
 * `remove` deletes the script's folder.
 */
export function askpass(secrets: { password?: string; passphrase?: string }): {
  env: Record<string, string>;
  remove: () => void;
} {
  const dir = mkdtempSync(join(tmpdir(), "cairn-askpass-"));
  const script = join(dir, "askpass");
  writeFileSync(
    script,
    [
      "#!/bin/sh",
      'case "$1" in',
      `  *assphrase*) printf '%s\\n' "$CAIRN_SSH_PASSPHRASE" ;;`,
      `  *) printf '%s\\n' "$CAIRN_SSH_PASSWORD" ;;`,
      "esac",
      "",
    ].join("\n"),
  );
  chmodSync(script, 0o700);
  return {
    env: {
      SSH_ASKPASS: script,
      SSH_ASKPASS_REQUIRE: "force",
      DISPLAY: process.env.DISPLAY ?? ":0",
      CAIRN_SSH_PASSWORD: secrets.password ?? "",
      CAIRN_SSH_PASSPHRASE: secrets.passphrase ?? "",
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function sha256Fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/**
 * The fingerprint of the key the server offers, for an error message after ssh refused it:
 * OpenSSH prints it when a known key changed, not when the host is unknown, so then it is asked
 * for with ssh-keyscan (only to name it; the connection was refused either way).
 */
export async function offeredHostKey(
  login: { host: string; port?: number },
  sshStderr: string,
): Promise<string | undefined> {
  const printed = /SHA256:[A-Za-z0-9+/]+/.exec(sshStderr)?.[0];
  if (printed) return printed;
  const type = /No (\w+) host key is known/.exec(sshStderr)?.[1]?.toLowerCase();
  const output = await new Promise<string>((resolve) =>
    execFile(
      "ssh-keyscan",
      ["-p", String(login.port ?? 22), ...(type ? ["-t", type] : []), "--", login.host],
      { timeout: 10_000 },
      (_error, stdout) => resolve(stdout ?? ""),
    ),
  );
  const base64 = output
    .split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((parts) => parts.length >= 3 && !parts[0]!.startsWith("#"))?.[2];
  return base64 ? sha256Fingerprint(Buffer.from(base64, "base64")) : undefined;
}

/** What ssh's last words mean, for a destination's error: which kind of failure, and its last lines. */
export function sshFailure(stderr: string): { kind: "host-key" | "login" | "connection"; message: string } {
  const lines = stderr
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("Warning: Permanently added"));
  const message = lines.slice(-3).join("; ") || "ssh ended without saying why";
  if (
    /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No \w+ host key is known/.test(
      stderr,
    )
  )
    return { kind: "host-key", message };
  if (/Permission denied|Too many authentication failures|incorrect passphrase|Load key .*: /i.test(stderr))
    return { kind: "login", message };
  return { kind: "connection", message };
}
