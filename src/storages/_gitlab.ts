/**
 * Creating the git destination's project through the GitLab REST API (v4) when it does not exist
 * yet: look the project up by its path, find its group or user namespace, create it there.
 */
import { StorageError } from "../kit/errors.ts";

export interface GitlabProjectOptions {
  /** The API's base, e.g. https://gitlab.example.net (the git remote's host by default). */
  url?: string | undefined;
  token: string;
  visibility: "private" | "internal" | "public";
}

/** The host and project path (`group/sub/name`) of a git remote, as GitLab names them. */
export function gitlabProjectOf(remote: string): { host: string; path: string } | undefined {
  const scp = /^(?:[^@/]+@)?([^:/]+):(?!\/\/)(.+)$/.exec(remote);
  let host: string;
  let path: string;
  if (/^[a-z+]+:\/\//i.test(remote)) {
    const url = new URL(remote);
    if (url.protocol === "file:") return undefined;
    host = url.hostname;
    path = decodeURIComponent(url.pathname);
  } else if (scp) {
    host = scp[1]!;
    path = scp[2]!;
  } else return undefined;
  path = path.replace(/^\/+|\/+$/g, "").replace(/\.git$/, "");
  return path.includes("/") ? { host, path } : undefined;
}

async function call(
  method: string,
  url: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(url, {
    method,
    headers: {
      "PRIVATE-TOKEN": token,
      accept: "application/json",
      ...(body ? { "content-type": "application/json" } : {}),
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { message: text.slice(0, 200) };
  }
  return { status: response.status, json };
}

function said(json: Record<string, unknown>): string {
  const message = json.message ?? json.error ?? json.error_description;
  return typeof message === "string" ? message : JSON.stringify(message ?? json);
}

/** Makes sure the remote's project exists on GitLab; returns whether it was created now. */
export async function ensureGitlabProject(
  remote: string,
  options: GitlabProjectOptions,
  where: string,
): Promise<boolean> {
  const project = gitlabProjectOf(remote);
  if (!project)
    throw new StorageError(`${where}: cannot tell the GitLab project from the url ${remote}`, {
      hint: "write the url as git@host:group/project.git, ssh://… or https://host/group/project.git",
    });
  const api = `${(options.url ?? `https://${project.host}`).replace(/\/+$/, "")}/api/v4`;
  const fail = (what: string, answer: { status: number; json: Record<string, unknown> }) =>
    new StorageError(`${where}: GitLab ${what} failed (HTTP ${answer.status}: ${said(answer.json)})`, {
      retryable: answer.status === 429 || answer.status >= 500,
      ...(answer.status === 401 || answer.status === 403
        ? { hint: "check gitlab_token: it needs the api scope and the right to create projects in the group" }
        : {}),
    });
  const reach = async (method: string, url: string, body?: unknown) =>
    call(method, url, options.token, body).catch((error: unknown) => {
      throw new StorageError(`${where}: cannot reach GitLab at ${api}: ${(error as Error).message}`, {
        retryable: true,
        cause: error,
      });
    });

  const found = await reach("GET", `${api}/projects/${encodeURIComponent(project.path)}`);
  if (found.status === 200) return false;
  if (found.status !== 404) throw fail(`lookup of project ${project.path}`, found);

  const slash = project.path.lastIndexOf("/");
  const namespacePath = project.path.slice(0, slash);
  const name = project.path.slice(slash + 1);
  const namespace = await reach("GET", `${api}/namespaces/${encodeURIComponent(namespacePath)}`);
  if (namespace.status === 404)
    throw new StorageError(
      `${where}: GitLab has no group or user ${namespacePath} (or the token cannot see it)`,
      {
        hint: "create the group first, or fix the url",
      },
    );
  if (namespace.status !== 200) throw fail(`lookup of namespace ${namespacePath}`, namespace);

  const created = await reach("POST", `${api}/projects`, {
    name,
    path: name,
    namespace_id: namespace.json.id,
    visibility: options.visibility,
    description: "Backups written by cairn",
  });
  if (created.status === 201) return true;
  // Another host created it between our lookup and now.
  if (created.status === 400 && /already been taken/.test(JSON.stringify(created.json))) return false;
  throw fail(`creation of project ${project.path}`, created);
}
