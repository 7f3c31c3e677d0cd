/** Small helpers several destinations share. */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { WriteOp } from "../kit/contracts.ts";
import { showCommand } from "../kit/echo.ts";
import { StorageError } from "../kit/errors.ts";
import { shellWord } from "../kit/shell.ts";

/** Prefix of the temporary names uploads are written under before they are renamed into place. */
export const TEMP_MARKER = ".cairn-tmp-";

/** A temporary name in the same folder as `key` (so the final rename stays within one folder). */
export function tempKeyFor(key: string): string {
  const dir = posix.dirname(key) === "." ? "" : `${posix.dirname(key)}/`;
  return `${dir}${TEMP_MARKER}${randomBytes(6).toString("hex")}`;
}

/** Refuses keys that could climb out of the destination's folder. */
/** `host`, `port`, `user` and `path` of a `scheme://user@host:port/path` URL (path relative to the login folder; `//abs` absolute). */
export function loginFromUrl(url: URL): Record<string, unknown> {
  return {
    host: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    user: decodeURIComponent(url.username),
    path: decodeURIComponent(url.pathname.replace(/^\//, "")) || ".",
  };
}

export function checkedKey(key: string): string {
  if (key.split("/").includes("..") || key.startsWith("/")) throw new StorageError(`invalid key "${key}"`);
  return key;
}

export function alreadyExists(where: string): StorageError {
  return new StorageError(`${where} already exists; cairn never overwrites a stored object`);
}

/** After an upload: the server must hold exactly the bytes that were sent. */
export function checkStoredSize(where: string, stored: number | undefined, sent: number): void {
  if (stored !== sent)
    throw new StorageError(`${where}: the server stored ${stored ?? "nothing"} of ${sent} bytes`);
}

/** What to do about a TLS certificate the client did not trust. */
export function certificateHint(message: string): string | undefined {
  return /certificate|self.signed|altnames/i.test(message)
    ? "the server's TLS certificate is not trusted: set ca_file (or fix the certificate)"
    : undefined;
}

export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program a destination drives (rsync, git) to its end and returns its exit code and
 * output; only a missing program (`missing()`) or an abort rejects. A death by signal counts as
 * exit code 1, so the caller reports it with the program's last output like any failure.
 */
export function runTool(
  program: string,
  args: string[],
  options: { signal?: AbortSignal | undefined; env: NodeJS.ProcessEnv },
  missing: () => StorageError,
): Promise<ToolResult> {
  showCommand(program, args);
  return new Promise((resolve, reject) => {
    execFile(
      program,
      args,
      {
        ...(options.signal ? { signal: options.signal } : {}),
        maxBuffer: 256 * 1024 * 1024,
        env: options.env,
      },
      (error, stdout, stderr) => {
        const code = (error as NodeJS.ErrnoException | null)?.code;
        if (code === "ENOENT") return reject(missing());
        if (error && typeof code !== "number" && !("code" in error && error.code === null))
          return reject(error);
        resolve({ code: typeof code === "number" ? code : error ? 1 : 0, stdout, stderr });
      },
    );
  });
}

/** `curl` doing a write at `where` (an http(s), ftp(s) or sftp URL), the bytes on stdin. */
export function curlWrite(where: string, op: WriteOp): string {
  const q = shellWord;
  const [, scheme = "", host = "", path = "/"] = /^(\w+):\/\/([^/]*)(\/.*)?$/.exec(where) ?? [];
  if (scheme === "http" || scheme === "https")
    return op === "put" ? `curl -fT - ${q(where)}` : `curl -f -X DELETE ${q(where)}`;
  const server = `${scheme === "ftps" ? "ftp" : scheme}://${host}/`;
  const tls = scheme === "ftps" ? "--ssl-reqd " : "";
  if (op === "put") return `curl -f ${tls}-T - ${q(`${server}${path.replace(/^\//, "")}`)}`;
  return `curl -f ${tls}${q(server)} -Q ${q(scheme === "sftp" ? `rm ${path}` : `DELE ${path}`)}`;
}

/** `location/key`, without doubled slashes. */
export const joinKey = (location: string, key: string): string => `${location.replace(/\/+$/, "")}/${key}`;
