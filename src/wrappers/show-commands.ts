/**
 * Announces each put and delete (core/echo.ts) as the command that would do the same by hand —
 * `aws s3 cp - URL`, `curl -T - URL`, `rm -f PATH` … — before doing it.
 */

import type { Storage } from "../kit/contracts.ts";
import { announceWrite } from "../kit/echo.ts";
import { shellWord } from "../kit/shell.ts";
import { wrap } from "./wrap.ts";

/** The hand-made command for a write at `location/key`; the object's bytes come on stdin. */
export function writeCommand(location: string, key: string, op: "put" | "delete"): string {
  const where = `${location.replace(/\/+$/, "")}/${key}`;
  const q = shellWord;
  const put = op === "put";
  if (location.startsWith("/")) return put ? `cat > ${q(where)}` : `rm -f -- ${q(where)}`;
  const url = /^(\w+):\/\/([^/]*)(\/.*)?$/.exec(where);
  const [, scheme = "", host = "", path = "/"] = url ?? [];
  switch (scheme) {
    case "s3":
      return put ? `aws s3 cp - ${q(where)}` : `aws s3 rm ${q(where)}`;
    case "http":
    case "https":
      return put ? `curl -fT - ${q(where)}` : `curl -f -X DELETE ${q(where)}`;
    case "ftp":
    case "ftps":
    case "sftp": {
      const server = `${scheme === "ftps" ? "ftp" : scheme}://${host}/`;
      const tls = scheme === "ftps" ? "--ssl-reqd " : "";
      if (put) return `curl -f ${tls}-T - ${q(`${server}${path.replace(/^\//, "")}`)}`;
      return `curl -f ${tls}${q(server)} -Q ${q(scheme === "sftp" ? `rm ${path}` : `DELE ${path}`)}`;
    }
    case "azure": {
      const [container = "", ...name] = path.replace(/^\//, "").split("/");
      const blob = `--account-name ${q(host)} -c ${q(container)} -n ${q(name.join("/"))}`;
      return put ? `az storage blob upload ${blob} -f /dev/stdin` : `az storage blob delete ${blob}`;
    }
    case "swift": {
      const name = path.replace(/^\//, "");
      return put
        ? `swift upload ${q(host)} --object-name ${q(name)} -`
        : `swift delete ${q(host)} ${q(name)}`;
    }
  }
  if (location.startsWith("rclone ")) {
    const remote = `${location.slice(7).replace(/\/+$/, "")}/${key}`;
    return put ? `rclone rcat ${q(remote)}` : `rclone deletefile ${q(remote)}`;
  }
  return `# ${op} ${key} on ${location}`;
}

export function withShownCommands(storage: Storage): Storage {
  return wrap(storage, {
    async put(key, body, ctx) {
      await announceWrite(writeCommand(storage.location, key, "put"));
      return storage.put(key, body, ctx);
    },
    async delete(key, ctx) {
      await announceWrite(writeCommand(storage.location, key, "delete"));
      return storage.delete(key, ctx);
    },
  });
}
