/**
 * Running a source's client tools inside a container (`docker exec` / `podman exec` / `kubectl
 * exec`) instead of on the host: the database's own image always has a client that fits it.
 * Secrets still never reach argv: docker and podman forward environment variables named with
 * `-e NAME` (the value travels in the environment); kubectl cannot, so it refuses a password.
 */
import { z } from "zod";
import { SourceError } from "../kit/errors.ts";

export const containerSchema = z
  .object({
    runtime: z.enum(["docker", "podman", "kubectl"]).default("docker"),
    name: z.string().min(1).describe("container name or id (for kubectl: the pod)"),
    namespace: z.string().optional().describe("kubectl: namespace of the pod"),
    container: z.string().optional().describe("kubectl: container in the pod"),
  })
  .optional()
  .describe("run the client tools inside this container with docker/podman/kubectl exec");

export type Container = z.output<typeof containerSchema>;

export interface Command {
  program: string;
  args: string[];
  env: Record<string, string | undefined>;
}

/**
 * Wraps `program args` to run in the container. `env` is what the program needs; `secret` names
 * the variables that must never be put on a command line.
 */
export function inContainer(
  container: NonNullable<Container>,
  command: Command,
  secret: readonly string[],
): Command {
  const set = Object.entries(command.env).filter(([, value]) => value !== undefined) as [string, string][];
  if (container.runtime === "kubectl") {
    const secrets = set.filter(([name]) => secret.includes(name)).map(([name]) => name);
    if (secrets.length > 0)
      throw new SourceError(
        `kubectl exec cannot pass ${secrets.join(", ")} without putting it on a command line`,
        {
          hint: "inside the pod, use local (peer/trust) authentication or a credentials file, and leave the password out of the cairn config",
        },
      );
    const args = ["exec", "-i"];
    if (container.namespace) args.push("-n", container.namespace);
    args.push(container.name);
    if (container.container) args.push("-c", container.container);
    args.push(
      "--",
      "env",
      ...set.map(([name, value]) => `${name}=${value}`),
      command.program,
      ...command.args,
    );
    return { program: "kubectl", args, env: {} };
  }
  return {
    program: container.runtime,
    args: [
      "exec",
      "-i",
      ...set.flatMap(([name]) => ["-e", name]),
      container.name,
      command.program,
      ...command.args,
    ],
    env: command.env,
  };
}
