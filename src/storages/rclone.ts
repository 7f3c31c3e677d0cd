/**
 * rclone as the bridge to every backend it knows (Google Drive, OneDrive, Dropbox, Mega, pCloud,
 * B2, Box, …). cairn starts one `rclone serve webdav` for the remote, on 127.0.0.1 with a one-time
 * password (its hash in a private file, nothing secret on argv), and talks WebDAV to it: one rclone
 * process per run instead of one per object, streaming both ways. The remote's own credentials stay
 * in rclone's config.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import type { Readable } from "node:stream";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import { defineStorage, type ObjectInfo, type PluginContext, type Storage } from "../kit/contracts.ts";
import { StorageError } from "../kit/errors.ts";
import { shellWord } from "../kit/shell.ts";
import { joinKey } from "./_shared.ts";
import { WebDavStorage } from "./webdav.ts";

const INSTALL_HINT = "install rclone (apt-get install rclone, or https://rclone.org/install/)";
const schema = z.object({
  remote: z
    .string()
    .min(1)
    .regex(/:/, 'a remote is written NAME:path (e.g. "gdrive:backups"), or :TYPE,opt=…:path')
    .describe('the rclone remote and folder, e.g. "gdrive:backups" or ":sftp,host=nas:backups"'),
  config_file: z
    .string()
    .optional()
    .describe("rclone config file (default: rclone's own, ~/.config/rclone/rclone.conf)"),
  binary: z.string().default("rclone").describe("the rclone program"),
  flags: z
    .array(z.string().regex(/^--[a-z0-9-]+(=.*)?$/, "flags look like --name or --name=value"))
    .default([])
    .describe(
      "extra rclone flags for every call, e.g. [--tpslimit=10]; never put secrets here (argv is public)",
    ),
});

type Options = z.output<typeof schema>;

/** A running `rclone serve webdav` and the WebDAV client that talks to it. */
interface Server {
  child: ChildProcess;
  dav: WebDavStorage;
  dir: string;
}

export class RcloneStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 4 };
  readonly location: string;
  private readonly options: Options;
  private server: Promise<Server> | undefined;

  constructor(options: Options) {
    this.options = options;
    this.location = `rclone ${options.remote.replace(/\/+$/, "")}`;
  }

  private start(): Promise<Server> {
    this.server ??= new Promise<Server>((resolve, reject) => {
      const dir = mkdtempSync(join(tmpdir(), "cairn-rclone-"));
      const password = randomBytes(24).toString("base64url");
      const sha = createHash("sha1").update(password).digest("base64");
      writeFileSync(join(dir, "htpasswd"), `cairn:{SHA}${sha}\n`, { mode: 0o600 });
      const child = spawn(
        this.options.binary,
        [
          "serve",
          "webdav",
          this.options.remote,
          "--addr",
          "127.0.0.1:0",
          "--htpasswd",
          join(dir, "htpasswd"),
          ...this.options.flags,
        ],
        {
          stdio: ["ignore", "ignore", "pipe"],
          env: {
            ...process.env,
            ...(this.options.config_file ? { RCLONE_CONFIG: this.options.config_file } : {}),
          },
        },
      );
      let stderr = "";
      let dav: WebDavStorage | undefined;
      const fail = (why: string) => {
        rmSync(dir, { recursive: true, force: true });
        this.server = undefined;
        reject(new StorageError(`${this.location}: rclone ${why}`, { hint: stderrHint(stderr) }));
      };
      child.once("error", (error: NodeJS.ErrnoException) =>
        fail(
          error.code === "ENOENT"
            ? `is not installed (${INSTALL_HINT})`
            : `could not start: ${error.message}`,
        ),
      );
      child.once("exit", (code) => {
        if (this.server) this.server = undefined; // a later call starts it again
        fail(`exited with code ${code}: ${stderr.trim().split("\n").pop() ?? ""}`);
      });
      child.stderr!.on("data", (chunk: Buffer) => {
        stderr = (stderr + chunk.toString("utf8")).slice(-8192);
        const started = /WebDav Server started on (http:\/\/127\.0\.0\.1:\d+)\//.exec(stderr);
        if (started && !dav) {
          dav = new WebDavStorage(
            { url: started[1]!, user: "cairn", password, connections: 4 },
            this.location,
          );
          resolve({ child, dav, dir });
        }
      });
    });
    return this.server;
  }

  private async dav(): Promise<WebDavStorage> {
    return (await this.start()).dav;
  }

  handCommand(key: string, op: WriteOp): string {
    const remote = shellWord(joinKey(this.location.slice("rclone ".length), key));
    return op === "put" ? `rclone rcat ${remote}` : `rclone deletefile ${remote}`;
  }

  async put(key: string, body: Readable, _ctx: PluginContext): Promise<ObjectInfo> {
    const dav = await this.dav().catch((error: unknown) => {
      body.destroy();
      throw error;
    });
    return dav.put(key, body);
  }

  async get(key: string, _ctx: PluginContext): Promise<Readable> {
    return (await this.dav()).get(key);
  }

  async stat(key: string, _ctx: PluginContext): Promise<ObjectInfo | undefined> {
    return (await this.dav()).stat(key);
  }

  async *list(prefix: string, _ctx: PluginContext): AsyncIterable<ObjectInfo> {
    yield* (await this.dav()).list(prefix);
  }

  async delete(key: string, _ctx: PluginContext): Promise<void> {
    return (await this.dav()).delete(key);
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const running = await server?.catch(() => undefined);
    if (!running) return;
    await running.dav.close();
    running.child.removeAllListeners("exit");
    running.child.kill("SIGTERM");
    rmSync(running.dir, { recursive: true, force: true });
  }
}

function stderrHint(stderr: string): string {
  if (/didn't find section in config file|config file .* not found/i.test(stderr))
    return "configure the remote with `rclone config` (or set config_file)";
  return "run the same remote with `rclone lsd REMOTE` to see rclone's own error";
}

export const rcloneStorage = defineStorage({
  type: "rclone",
  description: "Any backend rclone knows (Google Drive, OneDrive, Dropbox, B2 …), through the rclone binary",
  schema,
  create: (options, env) =>
    new RcloneStorage({
      ...options,
      ...(options.config_file ? { config_file: posix.resolve(env.baseDir, options.config_file) } : {}),
    }),
});
