/**
 * SFTP (OpenSSH and any SFTP server) through `ssh2`: key or password login, the server's host key
 * checked against known_hosts or a pinned fingerprint, uploads with many writes in flight (a
 * write-and-wait stream runs at a few MB/s), written to a temporary name and renamed into place
 * (OpenSSH's rename never replaces an existing file), fsync'd where the server offers it.
 */
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { posix } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Client, SFTPWrapper } from "ssh2";
import { z } from "zod";
import { CairnError, NotFoundError, StorageError } from "../errors.ts";
import { defineStorage, type ObjectInfo, type Storage } from "../types.ts";
import { alreadyExists, checkedKey, loginFromUrl, TEMP_MARKER, tempKeyFor } from "./_shared.ts";

/** Bytes kept in flight per transfer: requests are pipelined up to this much. */
const IN_FLIGHT_BYTES = 2 * 1024 * 1024;

/**
 * The request size the server takes: OpenSSH announces up to 255 KiB through limits@openssh.com
 * (read by ssh2); others get the protocol's safe 32 KiB.
 */
function requestSize(
  sftp: SFTPWrapper,
  which: "_maxWriteLen" | "_maxReadLen",
): { size: number; inFlight: number } {
  const announced = (sftp as unknown as Record<string, number | undefined>)[which];
  const size = Math.max(32 * 1024, Math.min(announced ?? 32 * 1024, 256 * 1024));
  return { size, inFlight: Math.max(8, Math.ceil(IN_FLIGHT_BYTES / size)) };
}

const schema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(22),
  user: z.string().min(1),
  path: z.string().default(".").describe("folder on the server; relative to the login folder"),
  private_key_file: z.string().optional().describe("private key file (OpenSSH format)"),
  private_key: z.string().optional().describe("the private key itself, e.g. from ${file:…} or ${VAR}"),
  passphrase: z.string().optional().describe("passphrase of the private key"),
  password: z.string().optional().describe("password login, where keys are not offered"),
  known_hosts: z
    .string()
    .optional()
    .describe("known_hosts file to check the server's key against; default ~/.ssh/known_hosts"),
  host_key_fingerprint: z
    .string()
    .optional()
    .describe("pin the server's key instead: SHA256:… as printed by ssh-keygen -lf"),
});

type Options = z.output<typeof schema>;

/** Whether a known_hosts line's host field names this host (plain, [host]:port, or hashed). */
function hostMatches(field: string, host: string, port: number): boolean {
  const name = port === 22 ? host : `[${host}]:${port}`;
  return field.split(",").some((entry) => {
    if (entry.startsWith("|1|")) {
      const [, , salt, hash] = entry.split("|");
      return createHmac("sha1", Buffer.from(salt!, "base64")).update(name).digest("base64") === hash;
    }
    return entry === name;
  });
}

export function hostKeyAccepted(key: Buffer, options: Options, knownHostsText: string | undefined): boolean {
  if (options.host_key_fingerprint)
    return (
      `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}` ===
      options.host_key_fingerprint
    );
  if (knownHostsText === undefined) return false;
  const encoded = key.toString("base64");
  return knownHostsText.split("\n").some((line) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 3 || line.startsWith("#")) return false;
    const [hosts, , base64] = parts[0]!.startsWith("@") ? parts.slice(1) : parts;
    return hostMatches(hosts!, options.host, options.port) && base64 === encoded;
  });
}

/** Writes a stream to an open remote file with many requests in flight, in order of offset. */
class PipelinedWrite extends Writable {
  private readonly sftp: SFTPWrapper;
  private readonly handle: Buffer;
  private offset = 0;
  private inFlight = 0;
  private failure: Error | undefined;
  private waiting: (() => void) | undefined;

  constructor(sftp: SFTPWrapper, handle: Buffer) {
    super({ highWaterMark: 1024 * 1024 });
    this.sftp = sftp;
    this.handle = handle;
    lossOf(sftp).promise.catch((error: Error) => {
      this.failure ??= error;
      const wake = this.waiting;
      this.waiting = undefined;
      wake?.();
    });
  }

  private send(piece: Buffer): void {
    const at = this.offset;
    this.offset += piece.length;
    this.inFlight++;
    this.sftp.write(this.handle, piece, 0, piece.length, at, (error) => {
      this.inFlight--;
      if (error) this.failure ??= error;
      const wake = this.waiting;
      this.waiting = undefined;
      wake?.();
    });
  }

  private async room(limit: number): Promise<void> {
    while (this.inFlight > limit && !this.failure)
      await new Promise<void>((resolve) => (this.waiting = resolve));
    if (this.failure) throw this.failure;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    (async () => {
      const { size, inFlight } = requestSize(this.sftp, "_maxWriteLen");
      for (let at = 0; at < chunk.length; at += size) {
        await this.room(inFlight - 1);
        this.send(chunk.subarray(at, at + size));
      }
    })().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.room(0).then(() => callback(), callback);
  }

  get bytes(): number {
    return this.offset;
  }
}

/** Reads a remote file with many requests in flight (a read-and-wait stream runs at a few MB/s), in order. */
class PipelinedRead extends Readable {
  private readonly sftp: SFTPWrapper;
  private readonly handle: Buffer;
  private readonly size: number;
  private requested = 0;
  private emitted = 0;
  private inFlight = 0;
  private wanted = false;
  private readonly arrived = new Map<number, Buffer>();

  constructor(sftp: SFTPWrapper, handle: Buffer, size: number) {
    super({ highWaterMark: 1024 * 1024 });
    this.sftp = sftp;
    this.handle = handle;
    this.size = size;
    lossOf(sftp).promise.catch((error: Error) => this.destroy(error));
  }

  override _read(): void {
    this.wanted = true;
    this.flush();
  }

  private request(at: number, length: number): void {
    this.inFlight++;
    this.sftp.read(this.handle, Buffer.allocUnsafe(length), 0, length, at, (error, bytesRead, buffer) => {
      this.inFlight--;
      if (error) return this.destroy(error);
      if (bytesRead === 0) return this.destroy(new Error(`the file ended at ${at} of ${this.size} bytes`));
      this.arrived.set(at, buffer.subarray(0, bytesRead));
      // A server may answer with less than asked: ask again for the rest.
      if (bytesRead < length) this.request(at + bytesRead, length - bytesRead);
      this.flush();
    });
  }

  private flush(): void {
    if (this.destroyed) return;
    for (
      let chunk = this.arrived.get(this.emitted);
      chunk && this.wanted;
      chunk = this.arrived.get(this.emitted)
    ) {
      this.arrived.delete(this.emitted);
      this.emitted += chunk.length;
      this.wanted = this.push(chunk);
    }
    if (this.emitted >= this.size) {
      this.sftp.close(this.handle, () => {});
      this.push(null);
      return;
    }
    const { size, inFlight } = requestSize(this.sftp, "_maxReadLen");
    while (this.wanted && this.inFlight < inFlight && this.requested < this.size) {
      const length = Math.min(size, this.size - this.requested);
      this.request(this.requested, length);
      this.requested += length;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    request<void>(this.sftp, (cb) => this.sftp.close(this.handle, (e) => cb(e, undefined))).then(
      () => callback(error),
      () => callback(error),
    );
  }
}

/**
 * A channel's requests are answered or failed by ssh2 while the connection lives; a request sent
 * after it died is never answered. So every request races the connection's loss.
 */
const losses = new WeakMap<SFTPWrapper, { error?: Error; promise: Promise<never> }>();

function watchLoss(client: Client, sftp: SFTPWrapper): void {
  const loss: { error?: Error; promise: Promise<never> } = { promise: Promise.resolve() as never };
  loss.promise = new Promise<never>((_, reject) => {
    const lost = (error?: Error) => {
      loss.error ??= Object.assign(new Error(`the connection was lost${error ? `: ${error.message}` : ""}`), {
        code: "ECONNRESET",
      });
      reject(loss.error);
    };
    client.once("close", () => lost()).once("error", lost);
    sftp.once("close", () => lost());
  });
  loss.promise.catch(() => {});
  losses.set(sftp, loss);
}

function lossOf(sftp: SFTPWrapper): { error?: Error; promise: Promise<never> } {
  return losses.get(sftp) ?? { promise: new Promise<never>(() => {}) };
}

function request<T>(
  sftp: SFTPWrapper,
  fn: (cb: (error: Error | null | undefined, value: T) => void) => void,
): Promise<T> {
  const loss = lossOf(sftp);
  if (loss.error) return Promise.reject(loss.error);
  return Promise.race([
    new Promise<T>((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value)))),
    loss.promise,
  ]);
}

const NO_SUCH_FILE = 2;

function isMissing(error: unknown): boolean {
  return (error as { code?: number }).code === NO_SUCH_FILE;
}

export class SftpStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 4 };
  readonly location: string;
  private readonly options: Options;
  private connection: Promise<{ client: Client; sftp: SFTPWrapper }> | undefined;

  constructor(options: Options) {
    this.options = options;
    this.location = `sftp://${options.user}@${options.host}${options.port === 22 ? "" : `:${options.port}`}/${options.path.replace(/^\/+/, "/")}`;
  }

  private connect(): Promise<{ client: Client; sftp: SFTPWrapper }> {
    // ssh2 is loaded on first use: cairn's start-up does not pay for destinations it does not use.
    this.connection ??= import("ssh2").then(
      (ssh2) =>
        new Promise((resolve, reject) => {
          const o = this.options;
          let knownHosts: string | undefined;
          if (!o.host_key_fingerprint) {
            const file = o.known_hosts ?? posix.join(homedir(), ".ssh/known_hosts");
            try {
              knownHosts = readFileSync(file, "utf8");
            } catch {
              knownHosts = undefined;
            }
          }
          let rejectedKey: string | undefined;
          const client = new ssh2.Client();
          client
            // A dropped connection is not reused: the next call connects again.
            .on("close", () => {
              this.connection = undefined;
            })
            .on("ready", () => {
              // Request/response traffic: without TCP_NODELAY each small request can wait ~40 ms for
              // a delayed ACK (measured: 1100 deletes took 61 s).
              client.setNoDelay(true);
              client.sftp((error, sftp) => {
                if (error) return reject(error);
                watchLoss(client, sftp);
                resolve({ client, sftp });
              });
            })
            .on("error", (error) =>
              reject(
                rejectedKey
                  ? new StorageError(
                      `${this.location}: the server's host key ${rejectedKey} is not in known_hosts`,
                      {
                        hint: `check it, then add it (ssh-keyscan -p ${o.port} ${o.host} >> ~/.ssh/known_hosts) or set host_key_fingerprint`,
                      },
                    )
                  : error,
              ),
            )
            .connect({
              host: o.host,
              port: o.port,
              username: o.user,
              ...(o.private_key_file ? { privateKey: readFileSync(o.private_key_file) } : {}),
              ...(o.private_key ? { privateKey: o.private_key } : {}),
              ...(o.passphrase ? { passphrase: o.passphrase } : {}),
              ...(o.password ? { password: o.password } : {}),
              readyTimeout: 20_000,
              // AES-GCM runs in Node's native crypto; ssh2's chacha20-poly1305 needs an optional native
              // addon and is several times slower without it.
              algorithms: {
                cipher: [
                  "aes128-gcm@openssh.com",
                  "aes256-gcm@openssh.com",
                  "aes128-ctr",
                  "aes256-ctr",
                  "chacha20-poly1305@openssh.com",
                ],
              },
              hostVerifier: (key: Buffer) => {
                const ok = hostKeyAccepted(key, o, knownHosts);
                if (!ok)
                  rejectedKey = `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
                return ok;
              },
            });
        }),
    );
    this.connection.catch(() => {
      this.connection = undefined;
    });
    return this.connection;
  }

  private pathOf(key: string): string {
    return posix.join(this.options.path, checkedKey(key));
  }

  private failure(action: string, key: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    const message = (error as Error).message ?? String(error);
    const credentials = /authentication methods failed|All configured authentication/i.test(message);
    return new StorageError(`${action} ${this.location}/${key} failed: ${message}`, {
      cause: error,
      ...(credentials
        ? { hint: "check user, private_key_file/private_key (and passphrase) or password" }
        : {}),
    });
  }

  private async mkdirs(dir: string, sftp: SFTPWrapper): Promise<void> {
    const parts = dir.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const partial = parts.slice(0, i).join("/");
      if (!partial || partial === ".") continue;
      await request<void>(sftp, (cb) => sftp.mkdir(partial, (error) => cb(error, undefined))).catch(
        async (error) => {
          const exists = await request(sftp, (cb) => sftp.stat(partial, cb)).then(
            () => true,
            () => false,
          );
          if (!exists) throw error;
        },
      );
    }
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    const path = this.pathOf(key);
    const temp = this.pathOf(tempKeyFor(key));
    let sftp: SFTPWrapper;
    try {
      ({ sftp } = await this.connect());
      if (await this.stat(key)) throw alreadyExists(`${this.location}/${key}`);
      await this.mkdirs(posix.dirname(path), sftp);
    } catch (error) {
      body.destroy();
      throw this.failure("upload to", key, error);
    }
    let handle: Buffer | undefined;
    try {
      handle = await request<Buffer>(sftp, (cb) => sftp.open(temp, "wx", { mode: 0o600 }, cb));
      const writer = new PipelinedWrite(sftp, handle);
      await pipeline(body, writer);
      // fsync@openssh.com where offered: the bytes are on the server's disk before the rename.
      await request<void>(sftp, (cb) =>
        sftp.ext_openssh_fsync(handle!, (error) => cb(error, undefined)),
      ).catch(() => {});
      await request<void>(sftp, (cb) => sftp.close(handle!, (error) => cb(error, undefined)));
      handle = undefined;
      // OpenSSH's SFTP rename refuses to replace an existing file: never an overwrite.
      await request<void>(sftp, (cb) => sftp.rename(temp, path, (error) => cb(error, undefined)));
      return { key, size: writer.bytes };
    } catch (error) {
      if (handle)
        await request<void>(sftp, (cb) => sftp.close(handle!, (e) => cb(e, undefined))).catch(() => {});
      await request<void>(sftp, (cb) => sftp.unlink(temp, (e) => cb(e, undefined))).catch(() => {});
      throw this.failure("upload to", key, error);
    }
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    try {
      const { sftp } = await this.connect();
      const handle = await request<Buffer>(sftp, (cb) => sftp.open(path, "r", cb));
      const stats = await request<{ size: number }>(sftp, (cb) => sftp.fstat(handle, cb));
      return new PipelinedRead(sftp, handle, stats.size);
    } catch (error) {
      if (isMissing(error)) throw new NotFoundError(`${this.location}/${key} does not exist`);
      throw this.failure("download of", key, error);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const { sftp } = await this.connect();
      const stats = await request<{ size: number; mtime: number; isFile(): boolean }>(sftp, (cb) =>
        sftp.stat(this.pathOf(key), cb),
      );
      return stats.isFile() ? { key, size: stats.size, modified: new Date(stats.mtime * 1000) } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw this.failure("stat of", key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const { sftp } = await this.connect().catch((error: unknown) => {
      throw this.failure("listing of", prefix, error);
    });
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const walk = async function* (this: SftpStorage, relative: string): AsyncGenerator<ObjectInfo> {
      let entries: {
        filename: string;
        attrs: { size: number; mtime: number; isDirectory(): boolean; isFile(): boolean };
      }[];
      try {
        entries = await request(sftp, (cb) => sftp.readdir(this.pathOf(relative || "."), cb));
      } catch (error) {
        if (isMissing(error)) return;
        throw this.failure("listing of", relative, error);
      }
      for (const entry of entries) {
        const key = relative ? `${relative}/${entry.filename}` : entry.filename;
        if (entry.attrs.isDirectory()) yield* walk.call(this, key);
        else if (entry.attrs.isFile() && !entry.filename.startsWith(TEMP_MARKER) && key.startsWith(prefix))
          yield { key, size: entry.attrs.size, modified: new Date(entry.attrs.mtime * 1000) };
      }
    };
    yield* walk.call(this, folder);
  }

  async delete(key: string): Promise<void> {
    try {
      const { sftp } = await this.connect();
      await request<void>(sftp, (cb) => sftp.unlink(this.pathOf(key), (error) => cb(error, undefined)));
    } catch (error) {
      if (isMissing(error)) return;
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    if (connection) (await connection.catch(() => undefined))?.client.end();
  }
}

export const sftpStorage = defineStorage({
  type: "sftp",
  description: "An SFTP server (OpenSSH …): key or password login, host key checked, pipelined uploads",
  schema,
  secrets: ["password", "passphrase", "private_key"],
  // sftp://host/path is relative to the login folder; sftp://host//srv/path is absolute.
  fromUrl: loginFromUrl,
  create: (options, env) =>
    new SftpStorage({
      ...options,
      ...(options.private_key_file
        ? { private_key_file: posix.resolve(env.baseDir, options.private_key_file) }
        : {}),
      ...(options.known_hosts ? { known_hosts: posix.resolve(env.baseDir, options.known_hosts) } : {}),
    }),
});
