/**
 * The SFTP protocol (version 3, as OpenSSH speaks it) over any pair of byte streams: the stdio of
 * OpenSSH's `ssh -s … sftp`, or an ssh2 channel. Requests are pipelined (each carries an id and
 * many may be in flight); every request pending when the streams end fails with a connection
 * error, so nothing waits for an answer that will never come.
 */
import type { Readable, Writable } from "node:stream";

const FXP = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  FSTAT: 8,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  STAT: 17,
  RENAME: 18,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;

const STATUS = { OK: 0, EOF: 1, NO_SUCH_FILE: 2 } as const;
const STATUS_NAMES = [
  "ok",
  "end of file",
  "no such file",
  "permission denied",
  "failure",
  "bad message",
  "no connection",
  "connection lost",
  "operation unsupported",
];

const OPEN_FLAGS = { READ: 0x01, WRITE: 0x02, CREATE: 0x08, EXCLUSIVE: 0x20 } as const;
const ATTR = { SIZE: 0x1, UIDGID: 0x2, PERMISSIONS: 0x4, ACMODTIME: 0x8, EXTENDED: 0x80000000 } as const;
const FILE_TYPE_MASK = 0o170000;

/** An SFTP status answer other than OK; `code` 2 is "no such file". */
export class SftpStatusError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message || STATUS_NAMES[code] || `status ${code}`);
    this.code = code;
  }
}

export function isNoSuchFile(error: unknown): boolean {
  return error instanceof SftpStatusError && error.code === STATUS.NO_SUCH_FILE;
}

export interface SftpAttributes {
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  isFile: boolean;
  isDirectory: boolean;
}

export interface SftpEntry {
  name: string;
  attributes: SftpAttributes;
}

/** Builds request bodies: SFTP's uint32, uint64 and length-prefixed strings. */
class Body {
  private readonly parts: Buffer[] = [];
  byte(value: number): this {
    this.parts.push(Buffer.from([value]));
    return this;
  }
  uint32(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value >>> 0);
    this.parts.push(b);
    return this;
  }
  uint64(value: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(BigInt(value));
    this.parts.push(b);
    return this;
  }
  string(value: string | Buffer): this {
    const bytes = typeof value === "string" ? Buffer.from(value, "utf8") : value;
    this.uint32(bytes.length);
    this.parts.push(bytes);
    return this;
  }
  raw(value: Buffer): this {
    this.parts.push(value);
    return this;
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Reads an answer's fields in order. */
class Reader {
  private readonly buffer: Buffer;
  private at = 0;
  constructor(buffer: Buffer) {
    this.buffer = buffer;
  }
  uint32(): number {
    const value = this.buffer.readUInt32BE(this.at);
    this.at += 4;
    return value;
  }
  uint64(): number {
    const value = Number(this.buffer.readBigUInt64BE(this.at));
    this.at += 8;
    return value;
  }
  blob(): Buffer {
    const length = this.uint32();
    const value = this.buffer.subarray(this.at, this.at + length);
    this.at += length;
    return value;
  }
  string(): string {
    return this.blob().toString("utf8");
  }
  get remaining(): number {
    return this.buffer.length - this.at;
  }
  attributes(): SftpAttributes {
    const flags = this.uint32();
    const size = flags & ATTR.SIZE ? this.uint64() : 0;
    if (flags & ATTR.UIDGID) this.at += 8;
    const permissions = flags & ATTR.PERMISSIONS ? this.uint32() : 0;
    let mtime = 0;
    if (flags & ATTR.ACMODTIME) {
      this.at += 4;
      mtime = this.uint32();
    }
    if (flags & ATTR.EXTENDED)
      for (let n = this.uint32(); n > 0; n--) {
        this.blob();
        this.blob();
      }
    const type = permissions & FILE_TYPE_MASK;
    return { size, mtime, isFile: type === 0o100000, isDirectory: type === 0o040000 };
  }
}

interface Pending {
  resolve: (answer: { type: number; body: Reader }) => void;
  reject: (error: Error) => void;
}

export class SftpSession {
  /** Largest WRITE and READ the server takes: OpenSSH announces them (limits@openssh.com). */
  maxWrite = 32 * 1024;
  maxRead = 32 * 1024;
  private readonly output: Writable;
  private readonly extensions = new Map<string, string>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private lost: Error | undefined;
  private readonly lossListeners = new Set<(error: Error) => void>();
  private chunks: Buffer[] = [];
  private buffered = 0;
  private version: Pending | undefined;

  /** `describeLoss` says why the streams ended (e.g. what ssh printed), for the error. */
  constructor(input: Readable, output: Writable, describeLoss: () => string | undefined) {
    this.output = output;
    const lose = (error?: Error) => {
      if (this.lost) return;
      const why = describeLoss() ?? error?.message;
      this.lost = Object.assign(new Error(`the connection was lost${why ? `: ${why}` : ""}`), {
        code: "ECONNRESET",
      });
      for (const waiter of [...this.pending.values(), ...(this.version ? [this.version] : [])])
        waiter.reject(this.lost);
      this.pending.clear();
      for (const listener of this.lossListeners) listener(this.lost);
    };
    input.on("data", (chunk: Buffer) => this.receive(chunk));
    input
      .once("end", () => lose())
      .once("close", () => lose())
      .once("error", lose);
    output.once("error", lose).once("close", () => lose());
  }

  /** Calls `listener` once if the connection is lost (at once if it already is). */
  onLoss(listener: (error: Error) => void): void {
    if (this.lost) listener(this.lost);
    else this.lossListeners.add(listener);
  }

  async init(): Promise<void> {
    const answer = await new Promise<{ type: number; body: Reader }>((resolve, reject) => {
      this.version = { resolve, reject };
      this.send(Buffer.from([0, 0, 0, 5, FXP.INIT, 0, 0, 0, 3]));
    });
    this.version = undefined;
    if (answer.type !== FXP.VERSION) throw new Error(`the server answered INIT with message ${answer.type}`);
    if (this.extensions.has("limits@openssh.com")) {
      const limits = await this.expect(FXP.EXTENDED_REPLY, this.extended("limits@openssh.com", new Body()));
      limits.uint64();
      const read = limits.uint64();
      const write = limits.uint64();
      // Capped at 256 KiB: larger requests gain nothing and hold more memory per request.
      if (read) this.maxRead = Math.min(read, 256 * 1024);
      if (write) this.maxWrite = Math.min(write, 256 * 1024);
    }
  }

  private send(packet: Buffer, data?: Buffer): void {
    if (this.lost) throw this.lost;
    if (!data) {
      this.output.write(packet);
      return;
    }
    this.output.cork();
    this.output.write(packet);
    this.output.write(data);
    process.nextTick(() => this.output.uncork());
  }

  /** Sends a request (`body` after the id) and waits for its answer. */
  private request(type: number, body: Body, data?: Buffer): Promise<{ type: number; body: Reader }> {
    if (this.lost) return Promise.reject(this.lost);
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    const payload = body.bytes();
    const length = 1 + 4 + payload.length + (data ? 4 + data.length : 0);
    // The data (up to 256 KiB) is written after this head as it is, not copied into it.
    const head = new Body().uint32(length).byte(type).uint32(id).raw(payload);
    if (data) head.uint32(data.length);
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.send(head.bytes(), data);
      } catch (error) {
        this.pending.delete(id);
        reject(error as Error);
      }
    });
  }

  private receive(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const first = this.chunks[0]!.length >= 4 ? this.chunks[0]! : Buffer.concat(this.chunks);
      const length = first.readUInt32BE(0);
      if (this.buffered < 4 + length) return;
      const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
      const packet = all.subarray(4, 4 + length);
      const rest = all.subarray(4 + length);
      this.chunks = rest.length ? [rest] : [];
      this.buffered = rest.length;
      this.dispatch(packet);
    }
  }

  private dispatch(packet: Buffer): void {
    const type = packet[0]!;
    const body = new Reader(packet.subarray(1));
    if (type === FXP.VERSION) {
      body.uint32();
      while (body.remaining >= 8) this.extensions.set(body.string(), body.string());
      this.version?.resolve({ type, body });
      return;
    }
    const id = body.uint32();
    const waiter = this.pending.get(id);
    if (!waiter) return;
    this.pending.delete(id);
    waiter.resolve({ type, body });
  }

  /** The answer's status code, OK or EOF; any other status is thrown. */
  private static status(answer: { type: number; body: Reader }): number {
    if (answer.type !== FXP.STATUS) throw new Error(`unexpected answer ${answer.type}`);
    const code = answer.body.uint32();
    const message = answer.body.string();
    if (code !== STATUS.OK && code !== STATUS.EOF) throw new SftpStatusError(code, message);
    return code;
  }

  private async expect(type: number, answer: Promise<{ type: number; body: Reader }>): Promise<Reader> {
    const got = await answer;
    if (got.type === type) return got.body;
    SftpSession.status(got);
    throw new Error(`the server answered with message ${got.type} where ${type} was expected`);
  }

  private async ok(answer: Promise<{ type: number; body: Reader }>): Promise<void> {
    const code = SftpSession.status(await answer);
    if (code !== STATUS.OK) throw new SftpStatusError(code, "");
  }

  supports(extension: string): boolean {
    return this.extensions.has(extension);
  }

  private extended(name: string, body: Body): Promise<{ type: number; body: Reader }> {
    return this.request(FXP.EXTENDED, new Body().string(name).raw(body.bytes()));
  }

  /** `create`: a new file, refused if the name is taken; otherwise opened for reading. */
  async open(path: string, how: "read" | "create", mode = 0o600): Promise<Buffer> {
    const flags =
      how === "read" ? OPEN_FLAGS.READ : OPEN_FLAGS.WRITE | OPEN_FLAGS.CREATE | OPEN_FLAGS.EXCLUSIVE;
    const body = new Body().string(path).uint32(flags);
    if (how === "read") body.uint32(0);
    else body.uint32(ATTR.PERMISSIONS).uint32(mode);
    return Buffer.from((await this.expect(FXP.HANDLE, this.request(FXP.OPEN, body))).blob());
  }

  close(handle: Buffer): Promise<void> {
    return this.ok(this.request(FXP.CLOSE, new Body().string(handle)));
  }

  write(handle: Buffer, offset: number, data: Buffer): Promise<void> {
    return this.ok(this.request(FXP.WRITE, new Body().string(handle).uint64(offset), data));
  }

  /** The bytes at `offset`, at most `length` of them; undefined at the end of the file. */
  async read(handle: Buffer, offset: number, length: number): Promise<Buffer | undefined> {
    const answer = await this.request(FXP.READ, new Body().string(handle).uint64(offset).uint32(length));
    if (answer.type === FXP.DATA) return answer.body.blob();
    SftpSession.status(answer);
    return undefined;
  }

  async stat(path: string): Promise<SftpAttributes> {
    return (await this.expect(FXP.ATTRS, this.request(FXP.STAT, new Body().string(path)))).attributes();
  }

  async fstat(handle: Buffer): Promise<SftpAttributes> {
    return (await this.expect(FXP.ATTRS, this.request(FXP.FSTAT, new Body().string(handle)))).attributes();
  }

  async readdir(path: string): Promise<SftpEntry[]> {
    const handle = Buffer.from(
      (await this.expect(FXP.HANDLE, this.request(FXP.OPENDIR, new Body().string(path)))).blob(),
    );
    const entries: SftpEntry[] = [];
    try {
      for (;;) {
        const answer = await this.request(FXP.READDIR, new Body().string(handle));
        if (answer.type !== FXP.NAME) {
          SftpSession.status(answer);
          break;
        }
        for (let n = answer.body.uint32(); n > 0; n--) {
          const name = answer.body.string();
          answer.body.string();
          const attributes = answer.body.attributes();
          if (name !== "." && name !== "..") entries.push({ name, attributes });
        }
      }
    } finally {
      await this.close(handle).catch(() => {});
    }
    return entries;
  }

  remove(path: string): Promise<void> {
    return this.ok(this.request(FXP.REMOVE, new Body().string(path)));
  }

  mkdir(path: string, mode = 0o700): Promise<void> {
    return this.ok(this.request(FXP.MKDIR, new Body().string(path).uint32(ATTR.PERMISSIONS).uint32(mode)));
  }

  /** SFTP v3 rename: OpenSSH refuses to replace an existing file, so this never overwrites. */
  rename(from: string, to: string): Promise<void> {
    return this.ok(this.request(FXP.RENAME, new Body().string(from).string(to)));
  }

  /** fsync@openssh.com where the server offers it; a no-op elsewhere. */
  async fsync(handle: Buffer): Promise<void> {
    if (this.supports("fsync@openssh.com"))
      await this.ok(this.extended("fsync@openssh.com", new Body().string(handle)));
  }
}
