/**
 * SFTP (OpenSSH and any SFTP server). The SSH connection is OpenSSH's own `ssh` where it is
 * installed (as restic does: its C transport is 1.5× faster than one in JavaScript, and it honours
 * ~/.ssh/config, agents and ProxyJump), or the `ssh2` library (no program needed; the only way to
 * pin a host key fingerprint or use a key given inline). cairn speaks SFTP itself over either, with
 * many requests in flight; uploads go to a temporary name and are renamed into place (OpenSSH's
 * rename never replaces an existing file), fsync'd where the server offers it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { posix } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Client, ClientChannel } from "ssh2";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import { defineStorage, type ObjectInfo, type Storage } from "../kit/contracts.ts";
import { CairnError, NotFoundError, StorageError } from "../kit/errors.ts";
import { findProgram } from "../kit/which.ts";
import { isNoSuchFile, SftpSession } from "./_sftp-session.ts";
import {
  alreadyExists,
  checkedKey,
  curlWrite,
  joinKey,
  loginFromUrl,
  TEMP_MARKER,
  tempKeyFor,
} from "./_shared.ts";
import { askpass, offeredHostKey, sha256Fingerprint, sshFailure, sshOptions } from "./_ssh.ts";

/** Bytes kept in flight per transfer: requests are pipelined up to this much. */
const IN_FLIGHT_BYTES = 2 * 1024 * 1024;

function inFlightRequests(size: number): number {
  return Math.max(8, Math.ceil(IN_FLIGHT_BYTES / size));
}

const schema = z
  .object({
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
    transport: z
      .enum(["auto", "openssh", "ssh2"])
      .default("auto")
      .describe(
        "the SSH connection: OpenSSH's ssh program, or the ssh2 library; auto takes ssh when it is installed and neither private_key nor host_key_fingerprint is set",
      ),
  })
  .superRefine((options, ctx) => {
    for (const key of ["private_key", "host_key_fingerprint"] as const)
      if (options.transport === "openssh" && options[key] !== undefined)
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `OpenSSH's ssh cannot take ${key}: use ${key === "private_key" ? "private_key_file" : "known_hosts"}, or set transport: ssh2`,
        });
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
  if (options.host_key_fingerprint) return sha256Fingerprint(key) === options.host_key_fingerprint;
  if (knownHostsText === undefined) return false;
  const encoded = key.toString("base64");
  return knownHostsText.split("\n").some((line) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 3 || line.startsWith("#")) return false;
    const [hosts, , base64] = parts[0]!.startsWith("@") ? parts.slice(1) : parts;
    return hostMatches(hosts!, options.host, options.port) && base64 === encoded;
  });
}

/** Which SSH connection these options get (the schema refuses openssh with what only ssh2 takes). */
export function transportFor(
  options: Options,
  sshInstalled = findProgram("ssh") !== undefined,
): "openssh" | "ssh2" {
  if (options.transport !== "auto") return options.transport;
  const needsSsh2 = options.private_key !== undefined || options.host_key_fingerprint !== undefined;
  return sshInstalled && !needsSsh2 ? "openssh" : "ssh2";
}

/** Writes a stream to an open remote file with many requests in flight, in order of offset. */
class PipelinedWrite extends Writable {
  private readonly session: SftpSession;
  private readonly handle: Buffer;
  private offset = 0;
  private inFlight = 0;
  private failure: Error | undefined;
  private waiting: (() => void) | undefined;

  constructor(session: SftpSession, handle: Buffer) {
    super({ highWaterMark: 1024 * 1024 });
    this.session = session;
    this.handle = handle;
  }

  private wake(): void {
    const wake = this.waiting;
    this.waiting = undefined;
    wake?.();
  }

  private send(piece: Buffer): void {
    const at = this.offset;
    this.offset += piece.length;
    this.inFlight++;
    this.session.write(this.handle, at, piece).then(
      () => {
        this.inFlight--;
        this.wake();
      },
      (error: Error) => {
        this.inFlight--;
        this.failure ??= error;
        this.wake();
      },
    );
  }

  private async room(limit: number): Promise<void> {
    while (this.inFlight > limit && !this.failure)
      await new Promise<void>((resolve) => (this.waiting = resolve));
    if (this.failure) throw this.failure;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    (async () => {
      const size = this.session.maxWrite;
      const limit = inFlightRequests(size) - 1;
      for (let at = 0; at < chunk.length; at += size) {
        await this.room(limit);
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
  private readonly session: SftpSession;
  private readonly handle: Buffer;
  private readonly size: number;
  private requested = 0;
  private emitted = 0;
  private inFlight = 0;
  private wanted = false;
  private readonly arrived = new Map<number, Buffer>();

  constructor(session: SftpSession, handle: Buffer, size: number) {
    super({ highWaterMark: 1024 * 1024 });
    this.session = session;
    this.handle = handle;
    this.size = size;
  }

  override _read(): void {
    this.wanted = true;
    this.flush();
  }

  private request(at: number, length: number): void {
    this.inFlight++;
    this.session.read(this.handle, at, length).then(
      (data) => {
        this.inFlight--;
        if (!data?.length) return this.destroy(new Error(`the file ended at ${at} of ${this.size} bytes`));
        this.arrived.set(at, data);
        // A server may answer with less than asked: ask again for the rest.
        if (data.length < length) this.request(at + data.length, length - data.length);
        this.flush();
      },
      (error: Error) => this.destroy(error),
    );
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
      this.session.close(this.handle).catch(() => {});
      this.push(null);
      return;
    }
    const size = this.session.maxRead;
    while (this.wanted && this.inFlight < inFlightRequests(size) && this.requested < this.size) {
      const length = Math.min(size, this.size - this.requested);
      this.request(this.requested, length);
      this.requested += length;
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.emitted >= this.size) {
      callback(error);
      return;
    }
    this.session.close(this.handle).then(
      () => callback(error),
      () => callback(error),
    );
  }
}

interface Connection {
  session: SftpSession;
  end(): void;
}

export class SftpStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 4 };
  readonly location: string;
  readonly transport: "openssh" | "ssh2";
  private readonly options: Options;
  private connection: Promise<Connection> | undefined;

  constructor(options: Options) {
    this.options = options;
    this.transport = transportFor(options);
    this.location = `sftp://${options.user}@${options.host}${options.port === 22 ? "" : `:${options.port}`}/${options.path.replace(/^\/+/, "/")}`;
  }

  private async connect(): Promise<SftpSession> {
    if (!this.connection) {
      const connection = this.transport === "openssh" ? this.viaOpenSsh() : this.viaSsh2();
      this.connection = connection;
      // A lost or failed connection is not reused: the next call connects again.
      connection.then(
        ({ session }) =>
          session.onLoss(() => {
            if (this.connection === connection) this.connection = undefined;
          }),
        () => {
          if (this.connection === connection) this.connection = undefined;
        },
      );
    }
    return (await this.connection).session;
  }

  /** `ssh -s … sftp` with its stdio as the SFTP streams. */
  private async viaOpenSsh(): Promise<Connection> {
    const o = this.options;
    const prompts = o.password !== undefined || o.passphrase !== undefined;
    const helper = prompts ? askpass({ password: o.password, passphrase: o.passphrase }) : undefined;
    const child: ChildProcess = spawn(
      "ssh",
      // "--": a host that starts with "-" is a name, never an option.
      [...sshOptions(o, prompts), "-o", "Compression=no", "-T", "-s", "-l", o.user, "--", o.host, "sftp"],
      { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...helper?.env } },
    );
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4096);
    });
    let spawnError: NodeJS.ErrnoException | undefined;
    const exited = new Promise<void>((resolve) => {
      child.once("close", () => resolve());
      child.once("error", (error) => {
        spawnError = error;
        resolve();
      });
    });
    exited.then(() => helper?.remove());
    const session = new SftpSession(child.stdout!, child.stdin!, () => sshFailure(stderr).message);
    try {
      await session.init();
    } catch (error) {
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      child.kill();
      if (spawnError?.code === "ENOENT")
        throw new StorageError(`${this.location}: ssh (OpenSSH's client) is not installed`, {
          hint: "install openssh-client, or set transport: ssh2",
        });
      throw await this.loginFailure(stderr, error);
    }
    return {
      session,
      end: () => {
        child.stdin!.end();
        setTimeout(() => child.kill(), 5000).unref();
      },
    };
  }

  private unknownHostKey(fingerprint: string | undefined): StorageError {
    const { port, host } = this.options;
    return new StorageError(
      `${this.location}: the server's host key ${fingerprint ?? ""} is not in known_hosts`,
      {
        hint: `check it, then add it (ssh-keyscan -p ${port} ${host} >> ~/.ssh/known_hosts) or set host_key_fingerprint`,
      },
    );
  }

  private async loginFailure(stderr: string, error: unknown): Promise<Error> {
    const { kind, message } = sshFailure(stderr);
    const o = this.options;
    if (kind === "host-key") {
      return this.unknownHostKey(await offeredHostKey(o, stderr));
    }
    if (kind === "login")
      return new StorageError(`${this.location}: the login was refused: ${message}`, {
        hint: "check user, private_key_file (and passphrase) or password",
      });
    return error as Error;
  }

  /** The ssh2 library's connection, with an SFTP channel as the streams. */
  private async viaSsh2(): Promise<Connection> {
    // ssh2 is loaded on first use: cairn's start-up does not pay for destinations it does not use.
    const ssh2 = await import("ssh2");
    const o = this.options;
    let knownHosts: string | undefined;
    if (!o.host_key_fingerprint) {
      try {
        knownHosts = readFileSync(o.known_hosts ?? posix.join(homedir(), ".ssh/known_hosts"), "utf8");
      } catch {
        knownHosts = undefined;
      }
    }
    let rejectedKey: string | undefined;
    const client: Client = new ssh2.Client();
    const opened = new Promise<ClientChannel>((resolve, reject) => {
      client
        .on("ready", () => {
          // Request/response traffic: without TCP_NODELAY each small request can wait ~40 ms for
          // a delayed ACK (measured: 1100 deletes took 61 s).
          client.setNoDelay(true);
          client.subsys("sftp", (error, stream) => (error ? reject(error) : resolve(stream)));
        })
        .on("error", (error) => reject(rejectedKey ? this.unknownHostKey(rejectedKey) : error))
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
            if (!ok) rejectedKey = sha256Fingerprint(key);
            return ok;
          },
        });
    });
    const channel = await opened.catch((error: unknown) => {
      client.end();
      throw error;
    });
    // ssh2 does not always end a channel whose connection died: end it here, so requests fail.
    client.on("close", () => channel.destroy()).on("error", () => channel.destroy());
    const session = new SftpSession(channel, channel, () => undefined);
    try {
      await session.init();
    } catch (error) {
      client.end();
      throw error;
    }
    return { session, end: () => client.end() };
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

  private async mkdirs(dir: string, session: SftpSession): Promise<void> {
    const parts = dir.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const partial = parts.slice(0, i).join("/");
      if (!partial || partial === ".") continue;
      await session.mkdir(partial).catch(async (error) => {
        const exists = await session.stat(partial).then(
          (attributes) => attributes.isDirectory,
          () => false,
        );
        if (!exists) throw error;
      });
    }
  }

  handCommand(key: string, op: WriteOp): string {
    return curlWrite(joinKey(this.location, key), op);
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    const path = this.pathOf(key);
    const temp = this.pathOf(tempKeyFor(key));
    let session: SftpSession;
    try {
      session = await this.connect();
      if (await this.stat(key)) throw alreadyExists(`${this.location}/${key}`);
      await this.mkdirs(posix.dirname(path), session);
    } catch (error) {
      body.destroy();
      throw this.failure("upload to", key, error);
    }
    let handle: Buffer | undefined;
    try {
      handle = await session.open(temp, "create");
      const writer = new PipelinedWrite(session, handle);
      await pipeline(body, writer);
      // The bytes are on the server's disk before the rename makes them count.
      await session.fsync(handle);
      await session.close(handle);
      handle = undefined;
      await session.rename(temp, path);
      return { key, size: writer.bytes };
    } catch (error) {
      if (handle) await session.close(handle).catch(() => {});
      await session.remove(temp).catch(() => {});
      throw this.failure("upload to", key, error);
    }
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    try {
      const session = await this.connect();
      const handle = await session.open(path, "read");
      const { size } = await session.fstat(handle);
      return new PipelinedRead(session, handle, size);
    } catch (error) {
      if (isNoSuchFile(error)) throw new NotFoundError(`${this.location}/${key} does not exist`);
      throw this.failure("download of", key, error);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const session = await this.connect();
      const attributes = await session.stat(this.pathOf(key));
      return attributes.isFile
        ? { key, size: attributes.size, modified: new Date(attributes.mtime * 1000) }
        : undefined;
    } catch (error) {
      if (isNoSuchFile(error)) return undefined;
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
    const session = await this.connect().catch((error: unknown) => {
      throw this.failure("listing of", prefix, error);
    });
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const walk = async function* (this: SftpStorage, relative: string): AsyncGenerator<ObjectInfo> {
      let entries: Awaited<ReturnType<SftpSession["readdir"]>>;
      try {
        entries = await session.readdir(this.pathOf(relative || "."));
      } catch (error) {
        if (isNoSuchFile(error)) return;
        throw this.failure("listing of", relative, error);
      }
      for (const { name, attributes } of entries) {
        const key = relative ? `${relative}/${name}` : name;
        if (attributes.isDirectory) yield* walk.call(this, key);
        else if (attributes.isFile && name.startsWith(TEMP_MARKER) === temporary && key.startsWith(prefix))
          yield { key, size: attributes.size, modified: new Date(attributes.mtime * 1000) };
      }
    };
    yield* walk.call(this, folder);
  }

  async delete(key: string): Promise<void> {
    try {
      const session = await this.connect();
      await session.remove(this.pathOf(key));
    } catch (error) {
      if (isNoSuchFile(error)) return;
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = undefined;
    if (connection) (await connection.catch(() => undefined))?.end();
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
