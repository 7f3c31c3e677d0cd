/**
 * OpenStack Swift (and Swift-based services such as SoftLayer/IBM object storage) over its HTTP API,
 * with Keystone v3 or v1 (tempauth/swauth) authentication.
 *
 * An object is one PUT when it is small, else a Static Large Object: segments of `segment_size` in a
 * segment container, then a manifest. Every PUT of the final name carries `If-None-Match: *`, so
 * Swift itself refuses to overwrite, and an object is visible only once whole (the manifest is
 * written last). Each segment's MD5 is checked against the ETag Swift computed.
 */
import { createHash, type Hash, randomBytes } from "node:crypto";
import { posix } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import { defineStorage, type ObjectInfo, type Storage } from "../kit/contracts.ts";
import { type CairnError, StorageError } from "../kit/errors.ts";
import { sizeField } from "../kit/schema.ts";
import { readPasswordFile } from "../kit/secrets.ts";
import { shellWord } from "../kit/shell.ts";
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
import { alreadyExists, checkedKey, checkStoredSize, joinKey } from "./_shared.ts";

const MiB = 1024 * 1024;

const schema = z.object({
  auth_url: z
    .url()
    .optional()
    .describe("Keystone v3 URL (…/v3) or v1 auth URL (…/auth/v1.0); default $OS_AUTH_URL or $ST_AUTH"),
  user: z.string().optional().describe("user name; default $OS_USERNAME or $ST_USER"),
  password: z
    .string()
    .optional()
    .describe("password (v3) or API key (v1), e.g. from ${file:…}; default $OS_PASSWORD or $ST_KEY"),
  password_file: z.string().optional().describe("or a file holding it (for URLs on the command line)"),
  project: z.string().optional().describe("v3: project (tenant) name; default $OS_PROJECT_NAME"),
  user_domain: z.string().default("Default").describe("v3: domain of the user"),
  project_domain: z.string().default("Default").describe("v3: domain of the project"),
  region: z.string().optional().describe("v3: region of the object-store endpoint; default the first"),
  interface: z
    .enum(["public", "internal", "admin"])
    .default("public")
    .describe("v3: which object-store endpoint of the catalog to use"),
  storage_url: z
    .url()
    .optional()
    .describe("use this storage URL (…/v1/AUTH_account) instead of the one authentication returns"),
  container: z.string().min(1).describe("container (created if missing)"),
  prefix: z.string().default("").describe("folder inside the container, e.g. backups/"),
  segment_container: z
    .string()
    .optional()
    .describe("container of large objects' segments; default CONTAINER_segments (as the swift CLI)"),
  segment_size: sizeField({
    invalid: () => "segment_size is between 1MiB and 5GiB",
    min: MiB,
    max: 5 * 1024 * MiB,
  })
    .prefault("1GiB")
    .describe("objects larger than this are stored as segments plus a manifest (SLO)"),
  ...httpClientFields,
});

type Options = Omit<z.output<typeof schema>, "password_file"> & {
  auth_url: string;
  user: string;
  password: string;
};

/** Objects up to this size are sent in one PUT (held in memory meanwhile, so it stays small). */
const SINGLE_PUT_LIMIT = 4 * MiB;

interface Session {
  token: string;
  storageUrl: string;
}

interface CatalogEntry {
  type?: string;
  endpoints?: { interface?: string; region?: string; region_id?: string; url?: string }[];
}

/** Hands a stream out as consecutive pieces of at most `limit` bytes, hashing each piece. */
class Pieces {
  private carry: Buffer | undefined;
  private ended = false;
  private readonly source: AsyncIterator<Buffer>;

  constructor(body: Readable) {
    this.source = body[Symbol.asyncIterator]();
  }

  async *next(limit: number, hash: Hash): AsyncGenerator<Buffer> {
    let left = limit;
    while (left > 0) {
      let chunk = this.carry;
      this.carry = undefined;
      if (!chunk) {
        const item = await this.source.next();
        if (item.done) {
          this.ended = true;
          return;
        }
        chunk = item.value;
      }
      if (chunk.length > left) {
        this.carry = chunk.subarray(left);
        chunk = chunk.subarray(0, left);
      }
      left -= chunk.length;
      hash.update(chunk);
      yield chunk;
    }
  }

  /** True when the stream has nothing more to give. */
  async atEnd(): Promise<boolean> {
    if (this.carry || this.ended) return !this.carry;
    const item = await this.source.next();
    if (item.done) this.ended = true;
    else this.carry = item.value;
    return this.ended;
  }
}

export class SwiftStorage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 8 };
  readonly location: string;
  private readonly options: Options;
  private readonly http: HttpClient;
  private readonly prefix: string;
  private readonly segmentContainer: string;
  private session: Promise<Session> | undefined;
  private containersReady: Promise<void> | undefined;

  constructor(options: Options) {
    this.options = options;
    this.prefix = options.prefix.replace(/^\/+|\/+$/g, "");
    this.segmentContainer = options.segment_container ?? `${options.container}_segments`;
    this.location = `swift://${options.container}${this.prefix ? `/${this.prefix}` : ""}`;
    this.http = new HttpClient(options);
  }

  // ── authentication ──────────────────────────────────────────────────────

  private authenticate(): Promise<Session> {
    this.session ??= (/\/v3\/?$/.test(this.options.auth_url) ? this.keystoneV3() : this.authV1()).catch(
      (error: unknown) => {
        this.session = undefined;
        throw this.failure("authentication at", this.options.auth_url, error);
      },
    );
    return this.session;
  }

  private async authV1(): Promise<Session> {
    const response = await this.http.send("GET", new URL(this.options.auth_url), {
      "x-auth-user": this.options.user,
      "x-auth-key": this.options.password,
    });
    await readText(response);
    const token = response.headers["x-auth-token"];
    const storageUrl = this.options.storage_url ?? response.headers["x-storage-url"];
    if (response.status >= 300 || typeof token !== "string" || typeof storageUrl !== "string")
      throw this.authError(response.status);
    return { token, storageUrl };
  }

  private async keystoneV3(): Promise<Session> {
    const o = this.options;
    if (!o.project)
      throw new StorageError(`${this.location}: Keystone v3 needs a project`, {
        hint: "set project (or $OS_PROJECT_NAME)",
      });
    const body = JSON.stringify({
      auth: {
        identity: {
          methods: ["password"],
          password: { user: { name: o.user, domain: { name: o.user_domain }, password: o.password } },
        },
        scope: { project: { name: o.project, domain: { name: o.project_domain } } },
      },
    });
    const url = new URL(`${o.auth_url.replace(/\/+$/, "")}/auth/tokens`);
    const response = await this.http.send("POST", url, { "content-type": "application/json" }, body);
    const text = await readText(response);
    const token = response.headers["x-subject-token"];
    if (response.status !== 201 || typeof token !== "string") throw this.authError(response.status);
    const catalog = (JSON.parse(text) as { token?: { catalog?: CatalogEntry[] } }).token?.catalog ?? [];
    const endpoint = catalog
      .find((entry) => entry.type === "object-store")
      ?.endpoints?.find(
        (e) =>
          e.interface === o.interface && (!o.region || e.region === o.region || e.region_id === o.region),
      );
    const storageUrl = o.storage_url ?? endpoint?.url;
    if (!storageUrl)
      throw new StorageError(
        `${this.location}: Keystone has no ${o.interface} object-store endpoint${o.region ? ` in region ${o.region}` : ""} for project ${o.project}`,
        { hint: "check region and interface, or set storage_url" },
      );
    return { token, storageUrl };
  }

  private authError(status: number): StorageError {
    return new StorageError(
      `${this.location}: authentication at ${this.options.auth_url} failed: HTTP ${status}`,
      {
        retryable: retryableStatus(status),
        ...(status === 401 || status === 403
          ? { hint: "check user and password (the API key for v1 auth), and project and domains for v3" }
          : {}),
      },
    );
  }

  // ── requests ────────────────────────────────────────────────────────────

  private urlOf(session: Session, container: string, name = "", query = ""): URL {
    const path = [container, ...name.split("/")].map(encodeURIComponent).join("/");
    return new URL(`${session.storageUrl.replace(/\/+$/, "")}/${path.replace(/\/$/, "")}${query}`);
  }

  /**
   * One request with the session's token. A 401 means the token expired: with a body that can be
   * sent again, authenticate anew and retry once; a stream cannot be replayed, so that error is
   * retryable for the retry wrapper instead.
   */
  private async request(
    method: string,
    target: (session: Session) => URL,
    headers: Record<string, string> = {},
    body?: Readable | string | Buffer,
  ): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.authenticate();
      const response = await this.http.send(
        method,
        target(session),
        { "x-auth-token": session.token, ...headers },
        body,
      );
      if (response.status !== 401) return response;
      response.body.resume();
      if (this.session) this.session = undefined;
      if (attempt > 0 || body instanceof Readable)
        throw new StorageError(`${method} on ${this.location}: the token was refused (HTTP 401)`, {
          retryable: attempt === 0,
          hint: "check that the user may use this account and container",
        });
    }
  }

  private httpError(method: string, what: string, status: number): StorageError {
    const hint =
      status === 403
        ? "the user lacks the right for this container (an operator or .admin role, or a container ACL)"
        : status === 413
          ? "the object is larger than the cluster allows: lower segment_size"
          : status === 507
            ? "the cluster is out of space or the account over quota"
            : undefined;
    return new StorageError(`${method} ${what} on ${this.location}: HTTP ${status}`, {
      retryable: retryableStatus(status),
      ...(hint ? { hint } : {}),
    });
  }

  private failure(action: string, what: string, error: unknown): CairnError {
    return transportFailure(action, `${what} on ${this.location}`, error);
  }

  private name(key: string): string {
    checkedKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private ensureContainers(): Promise<void> {
    this.containersReady ??= (async () => {
      for (const container of [this.options.container, this.segmentContainer]) {
        const made = await this.request("PUT", (s) => this.urlOf(s, container));
        await readText(made);
        if (made.status === 201 || made.status === 202 || made.status === 204) continue;
        // A user without the right to create containers may still use existing ones.
        const there = await this.request("HEAD", (s) => this.urlOf(s, container));
        there.body.resume();
        if (there.status !== 204 && there.status !== 200) throw this.httpError("PUT", container, made.status);
      }
    })().catch((error: unknown) => {
      this.containersReady = undefined;
      throw error;
    });
    return this.containersReady;
  }

  // ── the Storage contract ────────────────────────────────────────────────

  handCommand(key: string, op: WriteOp): string {
    const [container = "", ...name] = joinKey(this.location, key).slice("swift://".length).split("/");
    const [c, n] = [shellWord(container), shellWord(name.join("/"))];
    return op === "put" ? `swift upload ${c} --object-name ${n} -` : `swift delete ${c} ${n}`;
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    const name = this.name(key);
    const where = `${this.location}/${key}`;
    const segmentPrefix = `${name}/cairn-${Date.now()}-${randomBytes(4).toString("hex")}/`;
    const segments: { path: string; etag: string; size_bytes: number }[] = [];
    try {
      if (await this.stat(key)) throw alreadyExists(where);
      await this.ensureContainers();
      const pieces = new Pieces(body);
      const firstHash = createHash("md5");
      const first: Buffer[] = [];
      for await (const chunk of pieces.next(Math.min(SINGLE_PUT_LIMIT, this.options.segment_size), firstHash))
        first.push(chunk);
      if (await pieces.atEnd()) {
        const whole = Buffer.concat(first);
        await this.putFinal(name, where, whole, { etag: firstHash.digest("hex") });
        return { key, size: whole.length };
      }
      let held: Buffer[] | undefined = first;
      let sent = 0;
      for (let index = 1; index === 1 || !(await pieces.atEnd()); index++) {
        const hash = index === 1 ? firstHash : createHash("md5");
        const already = held ? held.reduce((sum, b) => sum + b.length, 0) : 0;
        const segmentName = `${segmentPrefix}${String(index).padStart(8, "0")}`;
        let size = 0;
        const counted = async function* (
          start: Buffer[] | undefined,
          rest: AsyncIterable<Buffer>,
        ): AsyncGenerator<Buffer> {
          for (const chunk of start ?? []) {
            size += chunk.length;
            yield chunk;
          }
          for await (const chunk of rest) {
            size += chunk.length;
            yield chunk;
          }
        };
        const stream = Readable.from(counted(held, pieces.next(this.options.segment_size - already, hash)));
        held = undefined;
        const response = await this.request(
          "PUT",
          (s) => this.urlOf(s, this.segmentContainer, segmentName),
          { "content-type": "application/octet-stream" },
          stream,
        );
        await readText(response);
        if (response.status !== 201)
          throw this.httpError("PUT", `segment ${index} of ${key}`, response.status);
        const etag = hash.digest("hex");
        if (String(response.headers.etag).replace(/"/g, "") !== etag)
          throw new StorageError(`${where}: segment ${index} was stored with a different checksum`, {
            retryable: true,
          });
        segments.push({ path: `/${this.segmentContainer}/${segmentName}`, etag, size_bytes: size });
        sent += size;
      }
      await this.putFinal(name, where, JSON.stringify(segments), { manifest: true });
      checkStoredSize(where, (await this.stat(key))?.size, sent);
      return { key, size: sent };
    } catch (error) {
      body.destroy();
      await this.removeSegments(segments.map((s) => s.path)).catch(() => {});
      throw this.failure("upload of", key, error);
    }
  }

  /** The PUT of the final name: refused by Swift itself if the name is taken. */
  private async putFinal(
    name: string,
    where: string,
    body: Buffer | string,
    how: { etag?: string; manifest?: boolean },
  ): Promise<void> {
    const response = await this.request(
      "PUT",
      (s) => this.urlOf(s, this.options.container, name, how.manifest ? "?multipart-manifest=put" : ""),
      {
        "if-none-match": "*",
        "content-type": "application/octet-stream",
        ...(how.etag ? { etag: how.etag } : {}),
      },
      body,
    );
    const text = await readText(response);
    if (response.status === 412) throw alreadyExists(where);
    if (response.status === 422)
      throw new StorageError(`${where}: the stored bytes do not match their checksum`, { retryable: true });
    if (response.status !== 201) {
      const error = this.httpError("PUT", where, response.status);
      if (how.manifest && text) error.message += ` (${text.trim().slice(0, 200)})`;
      throw error;
    }
  }

  private async removeSegments(paths: string[]): Promise<void> {
    for (const path of paths) {
      const segment = path.slice(this.segmentContainer.length + 2);
      const response = await this.request("DELETE", (s) => this.urlOf(s, this.segmentContainer, segment));
      response.body.resume();
    }
  }

  async get(key: string): Promise<Readable> {
    let response: HttpResponse;
    try {
      response = await this.request("GET", (s) => this.urlOf(s, this.options.container, this.name(key)));
    } catch (error) {
      throw this.failure("download of", key, error);
    }
    return bodyOf(response, `${this.location}/${key}`, (status) => this.httpError("GET", key, status));
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const response = await this.request("HEAD", (s) =>
        this.urlOf(s, this.options.container, this.name(key)),
      );
      return infoFromHead(response, key, (status) => this.httpError("HEAD", key, status));
    } catch (error) {
      throw this.failure("stat of", key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const full = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    let marker = "";
    for (;;) {
      let page: { name: string; bytes: number; last_modified?: string }[];
      try {
        const query = `?format=json&limit=10000&prefix=${encodeURIComponent(full)}&marker=${encodeURIComponent(marker)}`;
        const response = await this.request("GET", (s) => this.urlOf(s, this.options.container, "", query));
        const text = await readText(response);
        if (response.status === 404) return;
        if (response.status === 204) return;
        if (response.status !== 200) throw this.httpError("GET", "the listing", response.status);
        page = JSON.parse(text);
      } catch (error) {
        throw this.failure("listing of", prefix || "the container", error);
      }
      if (page.length === 0) return;
      for (const entry of page)
        yield {
          key: this.prefix ? entry.name.slice(this.prefix.length + 1) : entry.name,
          size: entry.bytes,
          // Swift lists times in UTC without a zone.
          ...(entry.last_modified ? { modified: new Date(`${entry.last_modified}Z`) } : {}),
        };
      marker = page[page.length - 1]?.name ?? "";
    }
  }

  /** Deletes the object and, for a large object, its segments (Swift's multipart-manifest=delete). */
  async delete(key: string): Promise<void> {
    const url = (query: string) => (s: Session) =>
      this.urlOf(s, this.options.container, this.name(key), query);
    try {
      const head = await this.request("HEAD", url(""));
      head.body.resume();
      if (head.status === 404) return;
      if (head.status !== 200) throw this.httpError("HEAD", key, head.status);
      if (!/^true$/i.test(String(head.headers["x-static-large-object"]))) {
        const response = await this.request("DELETE", url(""));
        response.body.resume();
        if (response.status !== 204 && response.status !== 404)
          throw this.httpError("DELETE", key, response.status);
        return;
      }
      const response = await this.request("DELETE", url("?multipart-manifest=delete"), {
        accept: "application/json",
      });
      const text = await readText(response);
      if (response.status !== 200) throw this.httpError("DELETE", key, response.status);
      const result = JSON.parse(text) as { "Response Status"?: string; Errors?: [string, string][] };
      const status = Number.parseInt(result["Response Status"] ?? "200", 10);
      if ((status >= 300 && status !== 404) || (result.Errors?.length ?? 0) > 0)
        throw new StorageError(
          `DELETE ${key} on ${this.location}: ${result["Response Status"]} ${JSON.stringify(result.Errors ?? [])}`,
          { retryable: retryableStatus(status) },
        );
    } catch (error) {
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    this.http.close();
  }
}

/** The same environment variables as the swift and openstack CLIs. */
const fromEnvironment = (): Partial<Options> => {
  const env = process.env;
  const pick = (...names: string[]) => names.map((n) => env[n]).find((v) => v !== undefined && v !== "");
  const found = {
    auth_url: pick("OS_AUTH_URL", "ST_AUTH"),
    user: pick("OS_USERNAME", "ST_USER"),
    password: pick("OS_PASSWORD", "ST_KEY"),
    project: pick("OS_PROJECT_NAME", "OS_TENANT_NAME"),
    region: pick("OS_REGION_NAME"),
  };
  return Object.fromEntries(Object.entries(found).filter(([, v]) => v !== undefined));
};

export const swiftStorage = defineStorage({
  type: "swift",
  description: "OpenStack Swift (Keystone v3 or v1 auth): large objects as SLO, never overwritten",
  schema,
  secrets: ["password"],
  fromUrl: (url) => ({
    container: url.hostname,
    prefix: decodeURIComponent(url.pathname.replace(/^\/+/, "")),
  }),
  create: ({ password_file, ...options }, env) => {
    const merged = {
      ...fromEnvironment(),
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
      ...(password_file ? { password: readPasswordFile(password_file, env.baseDir, env.name) } : {}),
      ...(options.ca_file ? { ca_file: posix.resolve(env.baseDir, options.ca_file) } : {}),
    } as typeof options;
    const missing = (["auth_url", "user", "password"] as const).filter((field) => !merged[field]);
    if (missing.length > 0)
      throw new StorageError(`the swift destination ${env.name} has no ${missing.join(", ")}`, {
        hint: "set them in the config, or as $OS_AUTH_URL, $OS_USERNAME, $OS_PASSWORD (or $ST_AUTH, $ST_USER, $ST_KEY)",
      });
    return new SwiftStorage(merged as Options);
  },
});
