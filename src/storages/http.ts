/**
 * Plain HTTP: PUT to store, GET to read, HEAD to stat, DELETE to remove — nginx with `dav_methods
 * PUT DELETE`, a raw repository of Nexus or Artifactory, any upload endpoint. Listing, which plain
 * HTTP does not define, comes from nginx's JSON autoindex; without it the destination is
 * upload-only and says so when something needs a listing.
 */
import { posix } from "node:path";
import type { Readable } from "node:stream";
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
  infoFromHead,
  readText,
  retryableStatus,
  transportFailure,
} from "./_http.ts";
import { alreadyExists, checkedKey, checkStoredSize, curlWrite, joinKey } from "./_shared.ts";

const schema = z.object({
  url: z.url().describe("base URL objects are stored under, e.g. https://backup.example.net/cairn"),
  user: z.string().optional().describe("for HTTP basic authentication"),
  password: z.string().optional().describe("e.g. from ${file:…}"),
  password_file: z.string().optional().describe("or a file holding it (for URLs on the command line)"),
  token: z.string().optional().describe("or a bearer token (Authorization: Bearer …), e.g. from ${file:…}"),
  listing: z
    .enum(["autoindex", "none"])
    .default("autoindex")
    .describe(
      "how to list: nginx's `autoindex_format json` on the folders, or none (upload-only: no list, prune or restore by search)",
    ),
  ...httpClientFields,
});

type Options = Omit<z.output<typeof schema>, "password_file">;

interface AutoindexEntry {
  name: string;
  type: "file" | "directory" | string;
  mtime?: string;
  size?: number;
}

export class HttpStorage implements Storage {
  readonly capabilities = { atomicPut: false, maxConcurrency: 8 };
  readonly location: string;
  private readonly base: URL;
  private readonly http: HttpClient;
  private readonly authorization: string | undefined;
  private readonly listing: Options["listing"];

  constructor(options: Options) {
    this.base = new URL(options.url.endsWith("/") ? options.url : `${options.url}/`);
    this.base.username = "";
    this.base.password = "";
    this.location = this.base.href.replace(/\/$/, "");
    this.http = new HttpClient(options);
    this.listing = options.listing;
    this.authorization = options.token
      ? `Bearer ${options.token}`
      : options.user !== undefined
        ? `Basic ${Buffer.from(`${options.user}:${options.password ?? ""}`).toString("base64")}`
        : undefined;
  }

  private urlOf(key: string, folder = false): URL {
    const encoded = checkedKey(key).split("/").filter(Boolean).map(encodeURIComponent).join("/");
    return new URL(encoded + (folder && encoded ? "/" : ""), this.base);
  }

  private send(method: string, url: URL, headers: Record<string, string> = {}, body?: Readable) {
    return this.http.send(
      method,
      url,
      { ...(this.authorization ? { authorization: this.authorization } : {}), ...headers },
      body,
    );
  }

  private httpError(method: string, key: string, status: number): StorageError {
    const hint =
      status === 401 || status === 403
        ? "check user and password (or token), and that the server allows this method here"
        : status === 405 || status === 501
          ? `the server does not accept ${method} here (nginx: dav_methods PUT DELETE; create_full_put_path on)`
          : status === 413
            ? "the server refuses bodies this large (nginx: client_max_body_size 0)"
            : status === 507
              ? "the server is out of space or over quota"
              : undefined;
    return new StorageError(`${method} ${this.location}/${key}: HTTP ${status}`, {
      retryable: retryableStatus(status),
      ...(hint ? { hint } : {}),
    });
  }

  private failure(action: string, key: string, error: unknown): CairnError {
    return transportFailure(action, `${this.location}/${key}`, error);
  }

  handCommand(key: string, op: WriteOp): string {
    return curlWrite(joinKey(this.location, key), op);
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    const where = `${this.location}/${key}`;
    const upload = through(body, new ByteCounter());
    let sent = false;
    try {
      if (await this.stat(key)) throw alreadyExists(where);
      sent = true;
      // Servers that know If-None-Match refuse to replace; the others were asked by HEAD above.
      const response = await this.send(
        "PUT",
        this.urlOf(key),
        { "content-type": "application/octet-stream", "if-none-match": "*" },
        upload,
      );
      await readText(response);
      if (response.status === 412) {
        sent = false;
        throw alreadyExists(where);
      }
      if (response.status < 200 || response.status >= 300) throw this.httpError("PUT", key, response.status);
      checkStoredSize(where, (await this.stat(key))?.size, upload.bytes);
      return { key, size: upload.bytes };
    } catch (error) {
      body.destroy();
      // A server that does not write atomically may keep what arrived: remove it.
      if (sent) await this.delete(key).catch(() => {});
      throw this.failure("upload to", key, error);
    }
  }

  async get(key: string): Promise<Readable> {
    let response: HttpResponse;
    try {
      response = await this.send("GET", this.urlOf(key));
    } catch (error) {
      throw this.failure("download of", key, error);
    }
    return bodyOf(response, `${this.location}/${key}`, (status) => this.httpError("GET", key, status));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const response = await this.send("HEAD", this.urlOf(key));
      return infoFromHead(response, key, (status) => this.httpError("HEAD", key, status));
    } catch (error) {
      throw this.failure("stat of", key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (this.listing === "none")
      throw new StorageError(`${this.location} is upload-only (listing: none): it cannot list snapshots`, {
        hint: "list, restore and prune from another destination of the job, or serve nginx's autoindex_format json and set listing: autoindex",
      });
    const pending = [prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : ""];
    for (let folder = pending.pop(); folder !== undefined; folder = pending.pop()) {
      let entries: AutoindexEntry[];
      try {
        const response = await this.send("GET", this.urlOf(folder, true), { accept: "application/json" });
        const text = await readText(response);
        if (response.status === 404) continue;
        if (response.status !== 200) throw this.httpError("GET", `${folder}/`, response.status);
        try {
          entries = JSON.parse(text);
        } catch {
          throw new StorageError(`${this.location}/${folder}: the folder listing is not JSON`, {
            hint: "serve it with nginx's `autoindex on; autoindex_format json;`, or set listing: none",
          });
        }
      } catch (error) {
        throw this.failure("listing of", folder, error);
      }
      for (const entry of entries) {
        const key = folder ? `${folder}/${entry.name}` : entry.name;
        if (entry.type === "directory") pending.push(key);
        else if (key.startsWith(prefix))
          yield {
            key,
            size: entry.size ?? 0,
            ...(entry.mtime ? { modified: new Date(entry.mtime) } : {}),
          };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      const response = await this.send("DELETE", this.urlOf(key));
      response.body.resume();
      if (response.status === 404 || (response.status >= 200 && response.status < 300)) return;
      throw this.httpError("DELETE", key, response.status);
    } catch (error) {
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }
}

export const httpStorage = defineStorage({
  type: "http",
  description:
    "Plain HTTP PUT/GET/DELETE (nginx dav_methods, Nexus/Artifactory raw); lists via nginx autoindex",
  schema,
  secrets: ["password", "token"],
  fromUrl: (url) => {
    const target = new URL(url.href);
    const user = decodeURIComponent(target.username);
    target.username = "";
    target.search = "";
    return { url: target.href, ...(user ? { user } : {}) };
  },
  create: ({ password_file, ...options }, env) =>
    new HttpStorage({
      ...options,
      ...(password_file ? { password: readPasswordFile(password_file, env.baseDir, env.name) } : {}),
      ...(options.ca_file ? { ca_file: posix.resolve(env.baseDir, options.ca_file) } : {}),
    }),
});
