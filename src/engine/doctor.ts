/**
 * `cairn doctor`: everything a backup depends on, checked without backing anything up — the
 * runtime, the tools, the config, every source (connects, can read, a client fits the server),
 * every destination (a probe object written, read back and deleted) and the key files — each
 * problem with what to do about it.
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { isSea } from "node:sea";
import { Readable } from "node:stream";
import { parseIdentityFile } from "../age/index.ts";
import type { Config } from "../config/load.ts";
import type { Logger, PluginContext, SourceTool } from "../kit/contracts.ts";
import { describeSystemError } from "../kit/errno.ts";
import { CairnError } from "../kit/errors.ts";
import { VERSION } from "../kit/version.ts";
import { findProgram } from "../kit/which.ts";
import { createRegistry, type Registry } from "../registry.ts";
import { closeDestinations, openDestinations, withContext } from "./context.ts";
import { refuseOpenKeyFile } from "./key-files.ts";
import { createSource } from "./plan.ts";

export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface Check {
  section: "cairn" | "tool" | "config" | "source" | "destination" | "key";
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

export interface DoctorOptions {
  /** The config, or the error that loading it gave (doctor reports it and checks the rest). */
  config: Config | Error;
  logger?: Logger;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/** Programs no source needs but cairn uses when they are there; the sources declare their own. */
const OPTIONAL_TOOLS: SourceTool[] = [
  {
    names: ["tar"],
    purpose: "faster file backups (GNU tar; cairn has its own writer)",
    install: "apt-get install tar",
  },
  { names: ["zstd"], purpose: "faster zstd (cairn has it built in)", install: "apt-get install zstd" },
  {
    names: ["age"],
    purpose: "restoring without cairn (cairn has age built in)",
    install: "apt-get install age",
  },
];

function versionOf(path: string, args: readonly string[] = ["--version"]): string {
  const name = path.split("/").pop()!;
  if (name === "doveadm") {
    const dovecot =
      findProgram("dovecot") ?? (existsSync("/usr/sbin/dovecot") ? "/usr/sbin/dovecot" : undefined);
    return dovecot ? `Dovecot ${versionOf(dovecot)}` : "version unknown";
  }
  const answer = spawnSync(path, [...args], { encoding: "utf8", timeout: 5000 });
  const line = `${answer.stdout ?? ""}${answer.stderr ?? ""}`.split("\n").find((l) => l.trim()) ?? "";
  return line.trim().slice(0, 80) || "version unknown";
}

function runtimeChecks(): Check[] {
  const runtime = isSea()
    ? `single executable ${process.execPath}`
    : `Node.js ${process.versions.node} (${process.execPath})`;
  return [{ section: "cairn", name: "cairn", status: "ok", detail: `${VERSION}, ${runtime}` }];
}

/** Every source type's tools (needed when the config uses the type), then the optional ones. */
function toolChecks(registry: Registry, types: Set<string>): Check[] {
  const declared = [...registry.sources.values()].flatMap((source) =>
    (source.tools ?? []).map((tool) => ({ tool, needed: types.has(source.type), optional: false })),
  );
  const optional = OPTIONAL_TOOLS.map((tool) => ({ tool, needed: false, optional: true }));
  return [...declared, ...optional].map(({ tool, needed, optional: always }) => {
    const found = tool.names.map((name) => findProgram(name)).find(Boolean);
    const name = tool.names.join(" | ");
    if (found)
      return {
        section: "tool",
        name,
        status: "ok",
        detail: `${found}: ${versionOf(found, tool.versionArgs)}`,
      } satisfies Check;
    return {
      section: "tool",
      name,
      status: needed ? "fail" : "skip",
      detail: needed ? `not found on PATH; needed for ${tool.purpose}` : `not installed (${tool.purpose})`,
      ...(needed || always ? { fix: tool.install } : {}),
    } satisfies Check;
  });
}

function failure(error: unknown): { detail: string; fix?: string } {
  const detail = describeSystemError(error) ?? (error instanceof Error ? error.message : String(error));
  const hint = error instanceof CairnError ? error.hint : undefined;
  return { detail: detail.split("\n")[0]!, ...(hint ? { fix: hint } : {}) };
}

async function sourceChecks(config: Config, ctx: PluginContext): Promise<Check[]> {
  const checks: Check[] = [];
  for (const [job, jobConfig] of Object.entries(config.jobs))
    for (const [name, options] of Object.entries(jobConfig.sources)) {
      const label = `${job}/${name} (${options.type})`;
      try {
        const source = createSource(config, { name, options });
        if (!source.check) {
          checks.push({
            section: "source",
            name: label,
            status: "skip",
            detail: "this source type has no check; its tools are listed above",
          });
          continue;
        }
        checks.push({ section: "source", name: label, status: "ok", detail: await source.check(ctx) });
      } catch (error) {
        checks.push({ section: "source", name: label, status: "fail", ...failure(error) });
      }
    }
  return checks;
}

/** A probe object written, read back, compared and deleted on every destination of every job. */
async function destinationChecks(config: Config, ctx: PluginContext): Promise<Check[]> {
  const checks: Check[] = [];
  for (const job of Object.keys(config.jobs)) {
    let destinations: Awaited<ReturnType<typeof openDestinations>> = [];
    try {
      destinations = await openDestinations(config, job);
    } catch (error) {
      checks.push({ section: "destination", name: `${job}/*`, status: "fail", ...failure(error) });
      continue;
    }
    for (const destination of destinations) {
      const label = `${job}/${destination.name} (${destination.storage.location})`;
      const key = `.cairn-doctor-${hostname()}-${randomBytes(4).toString("hex")}`;
      const probe = `cairn doctor probe ${new Date().toISOString()}\n`;
      try {
        await destination.storage.put(key, Readable.from([probe]), ctx);
        const chunks: Buffer[] = [];
        for await (const chunk of await destination.storage.get(key, ctx)) chunks.push(Buffer.from(chunk));
        const read = Buffer.concat(chunks).toString();
        await destination.storage.delete(key, ctx);
        if (read !== probe)
          throw new Error(
            `the probe object came back different (${read.length} bytes, ${probe.length} written)`,
          );
        checks.push({
          section: "destination",
          name: label,
          status: "ok",
          detail: "write, read back and delete of a probe object",
        });
      } catch (error) {
        await destination.storage.delete(key, ctx).catch(() => {});
        checks.push({ section: "destination", name: label, status: "fail", ...failure(error) });
      }
    }
    await closeDestinations(destinations);
  }
  return checks;
}

function keyCheck(name: string, file: string, what: string, parse?: (text: string) => string): Check {
  if (!existsSync(file))
    return {
      section: "key",
      name,
      status: "fail",
      detail: `${file} does not exist`,
      fix: "restore the file, or fix the path",
    };
  try {
    refuseOpenKeyFile(file, what);
    return {
      section: "key",
      name,
      status: "ok",
      detail: parse ? parse(readFileSync(file, "utf8")) : `${file}: mode 0600 or stricter`,
    };
  } catch (error) {
    return { section: "key", name, status: "fail", ...failure(error) };
  }
}

function encryptionCheck(config: Config, job: string): Check {
  const name = `${job} encryption`;
  const encryption = config.jobs[job]!.encryption as { recipients?: string[] } | undefined;
  if (encryption) {
    const how = encryption.recipients?.length
      ? `age, ${encryption.recipients.length} recipient(s)`
      : "age, passphrase";
    return { section: "key", name, status: "ok", detail: how };
  }
  // The config warns only when no `encryption: none` says it is meant.
  if (!config.warnings?.some((w) => w.startsWith(`job ${job} stores its backups UNENCRYPTED`)))
    return { section: "key", name, status: "ok", detail: "none, as the config says (encryption: none)" };
  return {
    section: "key",
    name,
    status: "warn",
    detail: "none: the backups are readable by whoever can read the destination",
    fix: "cairn keygen -o key.txt, and its recipient in encryption.age.recipients",
  };
}

function keyChecks(config: Config, env: NodeJS.ProcessEnv): Check[] {
  const checks: Check[] = [];
  for (const [job, jobConfig] of Object.entries(config.jobs)) {
    checks.push(encryptionCheck(config, job));
    const signing = jobConfig.signing as { key_file?: string } | undefined;
    if (signing?.key_file)
      checks.push(
        keyCheck(`${job} signing key`, resolve(config.baseDir, signing.key_file), "signing key file"),
      );
  }
  if (env.CAIRN_IDENTITY_FILE)
    checks.push(
      keyCheck("CAIRN_IDENTITY_FILE", env.CAIRN_IDENTITY_FILE, "identity file", (text) => {
        const keys = parseIdentityFile(text);
        if (keys.length === 0) throw new Error(`${env.CAIRN_IDENTITY_FILE} holds no age identity`);
        return `${env.CAIRN_IDENTITY_FILE}: ${keys.length} identity(ies), mode 0600 or stricter`;
      }),
    );
  return checks;
}

export async function doctor(options: DoctorOptions): Promise<Check[]> {
  const env = options.env ?? process.env;
  const config = options.config instanceof Error ? undefined : options.config;
  const types = new Set(
    Object.values(config?.jobs ?? {}).flatMap((job) => Object.values(job.sources).map((s) => s.type)),
  );
  const checks = [...runtimeChecks(), ...toolChecks(config?.registry ?? createRegistry(), types)];
  if (!config) {
    checks.push({ section: "config", name: "config", status: "fail", ...failure(options.config) });
    return checks;
  }
  checks.push({
    section: "config",
    name: "config",
    status: "ok",
    detail: `${config.file ?? "(given as an object)"}: ${Object.keys(config.jobs).length} job(s)`,
  });
  // The unencrypted-job warning is the key section's encryption row.
  for (const warning of (config.warnings ?? []).filter((w) => !w.includes("UNENCRYPTED")))
    checks.push({ section: "config", name: "config", status: "warn", detail: warning });
  return withContext(options, async (ctx) => [
    ...checks,
    ...(await sourceChecks(config, ctx)),
    ...(await destinationChecks(config, ctx)),
    ...keyChecks(config, env),
  ]);
}
