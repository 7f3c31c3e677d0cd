/** System errors in plain words: what ENOENT, EACCES, ECONNREFUSED … mean for the user. */
const PLAIN: Record<string, string> = {
  ENOENT: "no such file or folder",
  ENOTDIR: "a part of the path is a file, not a folder",
  EISDIR: "is a folder, where a file was expected",
  EEXIST: "already exists",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EROFS: "the file system is read-only",
  EMFILE: "too many open files (raise ulimit -n)",
  ENOTEMPTY: "the folder is not empty",
  ECONNREFUSED: "connection refused (is the server running, on this host and port?)",
  ECONNRESET: "the connection was reset by the other side",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host name not found (DNS)",
  EAI_AGAIN: "host name lookup failed for now (DNS)",
  EPIPE: "the other side closed the connection",
};

interface SystemError {
  code?: string;
  path?: string;
  dest?: string;
  address?: string;
  port?: number;
  hostname?: string;
  syscall?: string;
}

/** "cannot connect to 127.0.0.1:5999: connection refused (…)", or undefined for other errors. */
export function describeSystemError(error: unknown): string | undefined {
  const e = error as SystemError | undefined;
  const plain = e?.code ? PLAIN[e.code] : undefined;
  if (!plain) return undefined;
  const host = e?.hostname ?? e?.address;
  const where = host ? `${host}${e?.port ? `:${e.port}` : ""}` : (e?.path ?? "");
  const what = host ? `cannot connect to ${where}` : where;
  return `${what ? `${what}: ` : ""}${plain}`;
}

export function plainErrno(code: string | undefined): string {
  return (code && PLAIN[code]) ?? code ?? "unknown error";
}
