import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";

export interface InterpolationProblem {
  path: (string | number)[];
  message: string;
}

export interface InterpolationResult {
  value: unknown;
  problems: InterpolationProblem[];
  /** Values read from `${file:…}`: treated as secrets everywhere. */
  fileValues: string[];
}

const PATTERN = /\$\$\{|\$\{([^}]*)\}/g;

/**
 * Expands `${VAR}` and `${file:/path}` in every string of a parsed config; `$${` is a literal `${`.
 * A file's trailing newline is dropped, as `$(cat file)` would.
 */
export function interpolate(root: unknown, env: NodeJS.ProcessEnv, baseDir: string): InterpolationResult {
  const problems: InterpolationProblem[] = [];
  const fileValues: string[] = [];
  const expand = (text: string, path: (string | number)[]): string =>
    text.replace(PATTERN, (match, expr: string | undefined) => {
      if (match === "$${") return "${";
      const name = (expr ?? "").trim();
      if (name.startsWith("file:")) {
        const file = name.slice(5).trim();
        const full = isAbsolute(file) ? file : resolve(baseDir, file);
        try {
          const content = readFileSync(full, "utf8").replace(/\r?\n$/, "");
          fileValues.push(content);
          return content;
        } catch (error) {
          const reason =
            (error as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : "cannot be read";
          problems.push({ path, message: `secret file ${full} ${reason}` });
          return "";
        }
      }
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        problems.push({
          path,
          message: `"${match}" is not a valid reference: use \${NAME} or \${file:/path}`,
        });
        return "";
      }
      const value = env[name];
      if (value === undefined) {
        problems.push({ path, message: `environment variable ${name} is not set` });
        return "";
      }
      return value;
    });
  const walk = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value === "string") return expand(value, path);
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, i]));
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...path, k])]));
    }
    return value;
  };
  return { value: walk(root, []), problems, fileValues };
}
