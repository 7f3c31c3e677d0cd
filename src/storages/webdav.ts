/**
 * WebDAV (Apache mod_dav, nginx, Nextcloud/ownCloud, most NAS boxes) over HTTP(S) with Node's own
 * client: streaming PUT to a temporary name, then MOVE with `Overwrite: F`, which the server
 * refuses if the name is taken, so an object appears whole and is never overwritten.
 */
import type { IncomingMessage } from "node:http";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import type { XMLParser } from "fast-xml-parser";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import { defineStorage, type ObjectInfo, type Storage } from "../kit/contracts.ts";
import { type CairnError, StorageError } from "../kit/errors.ts";
import { readPasswordFile } from "../kit/secrets.ts";
import { ByteCounter, through } from "../kit/streams.ts";
import {
  bodyOf,
  HttpClient,
  type HttpResponse,
  httpClientFields,
  readText,
  retryableStatus,
  transportFailure,
} from "./_http.ts";
import {
  alreadyExists,
  checkedKey,
  checkStoredSize,
  curlWrite,
  joinKey,
  TEMP_MARKER,
  tempKeyFor,
} from "./_shared.ts";

const schema = z.object({
  url: z
    .url()
    .describe("base URL of the folder, e.g. https://cloud.example.net/remote.php/dav/files/backup/cairn"),
  user: z.string().optional(),
  password: z.string().optional().describe("e.g. from ${file:…} or ${VAR} (an app password for Nextcloud)"),
  password_file: z.string().optional().describe("or a file holding it (for URLs on the command line)"),
  ...httpClientFields,
});

type Options = Omit<z.output<typeof schema>, "password_file">;

/** The XML parser, loaded on the first listing: cairn's start-up does not pay for it. */
let parser: Promise<XMLParser> | undefined;
const xmlParser = () =>
  (parser ??= import("fast-xml-parser").then(
    ({ XMLParser }) => new XMLParser({ removeNSPrefix: true, ignoreAttributes: true, parseTagValue: false }),
  ));

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

export class WebDavStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 4 };
  readonly location: string;
  private readonly base: URL;
  private readonly http: HttpClient;
  private readonly authorization: string | undefined;

  /** `location`: how errors name it, when it serves another destination (rclone). */
  constructor(options: Options, location?: string) {
    this.base = new URL(options.url.endsWith("/") ? options.url : `${options.url}/`);
    this.base.username = "";
    this.base.password = "";
    this.location = location ?? this.base.href.replace(/\/$/, "");
    this.http = new HttpClient(options);
    this.authorization =
      options.user === undefined
        ? undefined
        : `Basic ${Buffer.from(`${options.user}:${options.password ?? ""}`).toString("base64")}`;
  }

  private urlOf(key: string, collection = false): URL {
    const encoded = checkedKey(key)
      .split("/")
      .filter(Boolean)
      .map((part) => encodeURIComponent(part))
      .join("/");
    return new URL(encoded + (collection && encoded ? "/" : ""), this.base);
  }

  private send(
    method: string,
    url: URL,
    headers: Record<string, string> = {},
    body?: Readable | string,
  ): Promise<HttpResponse> {
    return this.http.send(
      method,
      url,
      { ...(this.authorization ? { authorization: this.authorization } : {}), ...headers },
      body,
    );
  }

  /** Sends and reads the (small) answer; throws on statuses outside `ok`. */
  private async call(
    method: string,
    url: URL,
    ok: number[],
    headers: Record<string, string> = {},
    body?: Readable | string,
  ): Promise<{ status: number; text: string; headers: IncomingMessage["headers"] }> {
    const res = await this.send(method, url, headers, body);
    const text = await readText(res);
    if (!ok.includes(res.status)) throw this.httpError(method, url, res.status);
    return { status: res.status, text, headers: res.headers };
  }

  private httpError(method: string, url: URL, status: number): StorageError {
    const where = decodeURIComponent(url.pathname);
    const hint =
      status === 401 || status === 403
        ? "check user and password (Nextcloud/ownCloud with 2FA need an app password)"
        : status === 507
          ? "the server is out of space or over quota"
          : undefined;
    return new StorageError(`${method} ${where} on ${this.location}: HTTP ${status}`, {
      retryable: retryableStatus(status),
      ...(hint ? { hint } : {}),
    });
  }

  private failure(action: string, key: string, error: unknown): CairnError {
    return transportFailure(action, `${this.location}/${key}`, error);
  }

  /** Collections made or being made: a snapshot's objects share their folders. */
  private readonly collections = new Map<string, Promise<void>>();

  private async makeCollections(key: string): Promise<void> {
    const parts = key.split("/").slice(0, -1);
    for (let i = 0; i <= parts.length; i++) {
      const folder = parts.slice(0, i).join("/");
      let made = this.collections.get(folder);
      if (!made) {
        made = this.makeCollection(folder);
        this.collections.set(folder, made);
        made.catch(() => this.collections.delete(folder));
      }
      await made;
    }
  }

  private async makeCollection(folder: string): Promise<void> {
    const url = this.urlOf(folder, true);
    // 405: it exists already. 409: its parent is missing, which for the base means a wrong url.
    const made = await this.call("MKCOL", url, [201, 405, 409]).catch(async (error: unknown) => {
      // Another writer may have made it a moment ago (Apache answers that race with 403).
      const there = await this.call("PROPFIND", url, [207], { depth: "0" }).catch(() => undefined);
      if (there) return there;
      throw error;
    });
    if (made.status === 409)
      throw new StorageError(
        `${this.location}: the folder above ${folder || "the base url"} does not exist`,
        {
          hint: "check url: cairn creates the folders below it, not the server's own path",
        },
      );
  }

  handCommand(key: string, op: WriteOp): string {
    return curlWrite(joinKey(this.location, key), op);
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    const temp = tempKeyFor(key);
    const upload = through(body, new ByteCounter());
    try {
      if (await this.stat(key)) throw alreadyExists(`${this.location}/${key}`);
      await this.makeCollections(key);
      try {
        await this.call(
          "PUT",
          this.urlOf(temp),
          [200, 201, 204],
          { "content-type": "application/octet-stream" },
          upload,
        );
        const stored = await this.stat(temp);
        checkStoredSize(`${this.location}/${key}`, stored?.size, upload.bytes);
        const moved = await this.call("MOVE", this.urlOf(temp), [201, 204, 412], {
          destination: this.urlOf(key).href,
          overwrite: "F",
        });
        if (moved.status === 412) throw alreadyExists(`${this.location}/${key}`);
      } catch (error) {
        await this.call("DELETE", this.urlOf(temp), [200, 204, 404]).catch(() => {});
        throw error;
      }
      return { key, size: upload.bytes };
    } catch (error) {
      body.destroy();
      throw this.failure("upload to", key, error);
    }
  }

  async get(key: string): Promise<Readable> {
    const url = this.urlOf(key);
    let res: HttpResponse;
    try {
      res = await this.send("GET", url);
    } catch (error) {
      throw this.failure("download of", key, error);
    }
    return bodyOf(res, `${this.location}/${key}`, (status) => this.httpError("GET", url, status));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const { status, headers } = await this.call("HEAD", this.urlOf(key), [200, 404]);
      if (status === 404) return undefined;
      return {
        key,
        size: Number(headers["content-length"] ?? 0),
        ...(headers["last-modified"] ? { modified: new Date(headers["last-modified"]) } : {}),
      };
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
      const url = this.urlOf(relative, true);
      let text: string;
      try {
        const answer = await this.call(
          "PROPFIND",
          url,
          [207, 404],
          { depth: "1", "content-type": "application/xml" },
          '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/><getcontentlength/><getlastmodified/></prop></propfind>',
        );
        if (answer.status === 404) continue;
        text = answer.text;
      } catch (error) {
        throw this.failure("listing of", relative, error);
      }
      const responses = asArray((await xmlParser()).parse(text)?.multistatus?.response) as Record<
        string,
        unknown
      >[];
      for (const response of responses) {
        const path = decodeURIComponent(new URL(String(response.href), this.base).pathname);
        const base = decodeURIComponent(this.base.pathname);
        if (!path.startsWith(base)) continue;
        const key = path.slice(base.length).replace(/\/$/, "");
        if (key === relative) continue; // the folder itself
        const props = asArray(response.propstat as Record<string, unknown>[]).find((p) =>
          String(p.status).includes(" 200 "),
        )?.prop as Record<string, unknown> | undefined;
        const isCollection =
          typeof props?.resourcetype === "object" &&
          props.resourcetype !== null &&
          "collection" in props.resourcetype;
        if (isCollection) pending.push(key);
        else if (posix.basename(key).startsWith(TEMP_MARKER) === temporary && key.startsWith(prefix))
          yield {
            key,
            size: Number(props?.getcontentlength ?? 0),
            ...(props?.getlastmodified ? { modified: new Date(String(props.getlastmodified)) } : {}),
          };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.call("DELETE", this.urlOf(key), [200, 204, 404]);
    } catch (error) {
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }
}

const webdavFromUrl = (url: URL) => {
  const scheme = url.protocol === "webdavs:" || url.protocol === "davs:" ? "https:" : "http:";
  const user = decodeURIComponent(url.username);
  const target = new URL(url.href.replace(/^[a-z]+:/, scheme));
  target.username = "";
  target.search = "";
  return { url: target.href, ...(user ? { user } : {}) };
};

export const webdavStorage = defineStorage({
  type: "webdav",
  description: "A WebDAV server (Apache, nginx, Nextcloud, NAS): streaming PUT, MOVE without overwrite",
  schema,
  secrets: ["password"],
  fromUrl: webdavFromUrl,
  create: ({ password_file, ...options }, env) =>
    new WebDavStorage({
      ...options,
      ...(password_file ? { password: readPasswordFile(password_file, env.baseDir, env.name) } : {}),
      ...(options.ca_file ? { ca_file: posix.resolve(env.baseDir, options.ca_file) } : {}),
    }),
});
