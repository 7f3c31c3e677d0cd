/**
 * FTP and FTPS through `basic-ftp`: explicit TLS by default (plain FTP only when asked for), the
 * server's certificate checked, a few connections kept open (one FTP connection does one thing at
 * a time), uploads to a temporary name renamed into place, downloads that end only once the server
 * has confirmed the whole transfer.
 */
import { readFileSync } from "node:fs";
import { posix } from "node:path";
import { PassThrough, type Readable, Writable } from "node:stream";
import { Client, FTPError } from "basic-ftp";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import { defineStorage, type ObjectInfo, type Storage } from "../kit/contracts.ts";
import { CairnError, NotFoundError, StorageError } from "../kit/errors.ts";
import { readPasswordFile } from "../kit/secrets.ts";
import { ByteCounter, through } from "../kit/streams.ts";
import {
  alreadyExists,
  certificateHint,
  checkedKey,
  checkStoredSize,
  curlWrite,
  joinKey,
  loginFromUrl,
  TEMP_MARKER,
  tempKeyFor,
} from "./_shared.ts";

const schema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional().describe("default 21 (990 with tls: implicit)"),
  user: z.string().min(1),
  password: z.string().optional().describe("the login's password, e.g. from ${file:…} or ${VAR}"),
  password_file: z.string().optional().describe("or a file holding it (for ftp:// URLs on the command line)"),
  path: z.string().default(".").describe("folder on the server; relative to the login folder"),
  tls: z
    .enum(["explicit", "implicit", "none"])
    .default("explicit")
    .describe(
      "explicit: AUTH TLS on the normal port (FTPS); implicit: TLS from the start (port 990); none: plain FTP, password in clear",
    ),
  ca_file: z
    .string()
    .optional()
    .describe("PEM file of the CA (or self-signed certificate) to trust for the server"),
  servername: z
    .string()
    .optional()
    .describe("name to check the server's certificate against (default: host)"),
  connections: z.number().int().min(1).max(16).default(2).describe("FTP connections kept open at most"),
});

type Options = Omit<z.output<typeof schema>, "password_file"> & { password: string };

/** FTP reply codes that say "try again later". */
const TRANSIENT_REPLIES = new Set([421, 425, 426, 450, 451, 452]);

/** A few logged-in clients, each doing one thing at a time. */
class Pool {
  private readonly idle: Client[] = [];
  private readonly waiting: { resolve: (client: Client) => void; reject: (error: unknown) => void }[] = [];
  private open = 0;
  private readonly size: number;
  private readonly connect: () => Promise<Client>;

  constructor(size: number, connect: () => Promise<Client>) {
    this.size = size;
    this.connect = connect;
  }

  private opened(): Promise<Client> {
    this.open++;
    return this.connect().catch((error: unknown) => {
      this.open--;
      throw error;
    });
  }

  acquire(): Promise<Client> {
    for (let client = this.idle.pop(); client; client = this.idle.pop()) {
      if (!client.closed) return Promise.resolve(client);
      this.open--;
    }
    if (this.open < this.size) return this.opened();
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  release(client: Client, broken = false): void {
    const next = this.waiting.shift();
    if (broken || client.closed) {
      client.close();
      this.open--;
      if (next) this.opened().then(next.resolve, next.reject);
    } else if (next) next.resolve(client);
    else this.idle.push(client);
  }

  close(): void {
    for (const client of this.idle.splice(0)) client.close();
    this.open = 0;
  }
}

export class FtpStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 2 };
  readonly location: string;
  private readonly options: Options;
  private readonly pool: Pool;

  constructor(options: Options) {
    this.options = options;
    const scheme = options.tls === "none" ? "ftp" : "ftps";
    const port = options.port ?? (options.tls === "implicit" ? 990 : 21);
    this.location = `${scheme}://${options.user}@${options.host}${port === 21 ? "" : `:${port}`}/${options.path.replace(/^\/+/, "/")}`;
    this.pool = new Pool(options.connections, () => this.login(port));
  }

  private async login(port: number): Promise<Client> {
    const o = this.options;
    const client = new Client(30_000);
    try {
      await client.access({
        host: o.host,
        port,
        user: o.user,
        password: o.password,
        secure: o.tls === "none" ? false : o.tls === "implicit" ? "implicit" : true,
        secureOptions: {
          ...(o.ca_file ? { ca: readFileSync(o.ca_file) } : {}),
          ...(o.servername ? { servername: o.servername } : {}),
        },
      });
      return client;
    } catch (error) {
      client.close();
      throw error;
    }
  }

  private pathOf(key: string): string {
    return posix.join(this.options.path, checkedKey(key));
  }

  private failure(action: string, key: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    const message = (error as Error).message ?? String(error);
    const reply = error instanceof FTPError ? error.code : undefined;
    const hint = reply === 530 ? "check user and password" : certificateHint(message);
    return new StorageError(`${action} ${this.location}/${key} failed: ${message}`, {
      cause: error,
      retryable: reply !== undefined && TRANSIENT_REPLIES.has(reply),
      ...(hint ? { hint } : {}),
    });
  }

  /** Runs `fn` on a pooled connection; a connection that failed at the network level is dropped. */
  private async using<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    const client = await this.pool.acquire();
    try {
      const result = await fn(client);
      this.pool.release(client);
      return result;
    } catch (error) {
      this.pool.release(client, !(error instanceof FTPError));
      throw error;
    }
  }

  private async exists(client: Client, path: string): Promise<ObjectInfo | undefined> {
    try {
      const size = await client.size(path);
      const modified = await client.lastMod(path).catch(() => undefined);
      return { key: path, size, ...(modified ? { modified } : {}) };
    } catch (error) {
      if (error instanceof FTPError && error.code === 550) return undefined;
      throw error;
    }
  }

  handCommand(key: string, op: WriteOp): string {
    return curlWrite(joinKey(this.location, key), op);
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    const path = this.pathOf(key);
    const temp = this.pathOf(tempKeyFor(key));
    const upload = through(body, new ByteCounter());
    try {
      return await this.using(async (client) => {
        if (await this.exists(client, path)) throw alreadyExists(`${this.location}/${key}`);
        const dirs = posix.dirname(path).split("/");
        for (let i = 1; i <= dirs.length; i++) {
          const dir = dirs.slice(0, i).join("/");
          if (dir && dir !== ".") await client.sendIgnoringError(`MKD ${dir}`);
        }
        try {
          await client.uploadFrom(upload, temp);
          const stored = await client.size(temp);
          checkStoredSize(`${this.location}/${key}`, stored, upload.bytes);
          // RNTO replaces an existing file on most servers: look once more right before it.
          if (await this.exists(client, path)) throw alreadyExists(`${this.location}/${key}`);
          await client.rename(temp, path);
        } catch (error) {
          if (!client.closed) await client.remove(temp, true).catch(() => {});
          throw error;
        }
        return { key, size: upload.bytes };
      });
    } catch (error) {
      body.destroy();
      throw this.failure("upload to", key, error);
    }
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    const client = await this.pool.acquire().catch((error: unknown) => {
      throw this.failure("download of", key, error);
    });
    try {
      if (!(await this.exists(client, path))) {
        this.pool.release(client);
        throw new NotFoundError(`${this.location}/${key} does not exist`);
      }
    } catch (error) {
      if (error instanceof NotFoundError) throw error;
      this.pool.release(client, !(error instanceof FTPError));
      throw this.failure("download of", key, error);
    }
    // The data connection ending is not the end: only the server's 226 says the file came whole.
    const output = new PassThrough({ highWaterMark: 1024 * 1024 });
    const sink = new Writable({
      highWaterMark: 1024 * 1024,
      write(chunk: Buffer, _encoding, done) {
        if (output.write(chunk)) done();
        else output.once("drain", () => done());
      },
    });
    output.once("close", () => {
      if (!output.writableFinished) sink.destroy(new Error("the reader went away"));
    });
    client.downloadTo(sink, path).then(
      () => {
        this.pool.release(client);
        output.end();
      },
      (error: unknown) => {
        this.pool.release(client, true);
        output.destroy(this.failure("download of", key, error));
      },
    );
    return output;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const found = await this.using((client) => this.exists(client, this.pathOf(key)));
      return found && { ...found, key };
    } catch (error) {
      throw this.failure("stat of", key, error);
    }
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.walk(prefix, false);
  }

  /** Temporary objects of uploads that never finished (runs killed mid-put): prune removes old ones. */
  listTemporary(prefix: string): AsyncIterable<ObjectInfo> {
    return this.walk(prefix, true);
  }

  private async *walk(prefix: string, temporary: boolean): AsyncIterable<ObjectInfo> {
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const pending = [folder];
    for (let relative = pending.pop(); relative !== undefined; relative = pending.pop()) {
      const dir = this.pathOf(relative || ".");
      let entries: Awaited<ReturnType<Client["list"]>>;
      try {
        entries = await this.using((client) => client.list(dir));
      } catch (error) {
        if (error instanceof FTPError && error.code === 550) continue;
        throw this.failure("listing of", relative, error);
      }
      for (const entry of entries) {
        if (entry.name === "." || entry.name === "..") continue;
        const key = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory) pending.push(key);
        else if (entry.isFile && entry.name.startsWith(TEMP_MARKER) === temporary && key.startsWith(prefix))
          yield { key, size: entry.size, ...(entry.modifiedAt ? { modified: entry.modifiedAt } : {}) };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.using(async (client) => {
        try {
          await client.remove(this.pathOf(key));
        } catch (error) {
          if (!(error instanceof FTPError && error.code === 550)) throw error;
        }
      });
    } catch (error) {
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    this.pool.close();
  }
}

export const ftpStorage = defineStorage({
  type: "ftp",
  description:
    "An FTP server, with explicit TLS (FTPS) by default: pooled connections, uploads renamed into place",
  schema,
  secrets: ["password"],
  fromUrl: loginFromUrl,
  create: ({ password_file, password, ...options }, env) => {
    if (password === undefined && password_file === undefined)
      throw new StorageError(`destination ${env.name}: set password (or password_file)`);
    return new FtpStorage({
      ...options,
      password: password ?? readPasswordFile(password_file!, env.baseDir, env.name),
      ...(options.ca_file ? { ca_file: posix.resolve(env.baseDir, options.ca_file) } : {}),
    });
  },
});
