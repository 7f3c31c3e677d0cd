/**
 * Azure Blob Storage through Microsoft's SDK: block blobs uploaded as a stream of blocks and
 * committed at the end with `If-None-Match: *`, so a blob appears whole or not at all and the
 * service itself refuses to overwrite one.
 */
import { posix } from "node:path";
import type { Readable } from "node:stream";
import type { ContainerClient } from "@azure/storage-blob";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import {
  defineStorage,
  type ObjectInfo,
  type PluginContext,
  type Storage,
  type StorageCapabilities,
} from "../kit/contracts.ts";
import { CairnError, NotFoundError, StorageError } from "../kit/errors.ts";
import { sizeField } from "../kit/schema.ts";
import { shellWord } from "../kit/shell.ts";
import { ByteCounter, through } from "../kit/streams.ts";
import { alreadyExists, checkedKey, joinKey } from "./_shared.ts";

const schema = z.object({
  account: z.string().min(1).describe("storage account name"),
  container: z.string().min(3).describe("container name (created if missing)"),
  prefix: z.string().default("").describe("folder inside the container, e.g. backups/"),
  account_key: z.string().optional().describe("the account's access key, e.g. from ${file:…}"),
  sas_token: z.string().optional().describe("or a SAS token (sv=…&sig=…) with read, write, list, delete"),
  endpoint: z
    .string()
    .optional()
    .describe(
      "blob endpoint; default https://ACCOUNT.blob.core.windows.net (Azurite: http://127.0.0.1:10000/ACCOUNT)",
    ),
  access_tier: z
    .enum(["Hot", "Cool", "Cold"])
    .optional()
    .describe("tier of the stored blobs (default: the account's)"),
  block_size: sizeField({
    invalid: () => "block_size is between 1MiB and 4000MiB",
    min: 1024 * 1024,
    max: 4000 * 1024 * 1024,
  })
    .prefault("8MiB")
    .describe("size of each uploaded block; a blob has at most 50 000 blocks"),
  concurrency: z.number().int().min(1).max(32).default(4).describe("blocks uploaded at once"),
});

type Options = z.output<typeof schema>;

/** The HTTP status of an SDK RestError (checked by shape: the SDK's classes are loaded lazily). */
function restStatus(error: unknown): number | undefined {
  const e = error as { name?: string; statusCode?: number } | undefined;
  return e?.name === "RestError" ? e.statusCode : undefined;
}

/** Days each access tier bills a blob for at least (Azure Blob pricing, 2026). */
const MINIMUM_DAYS: Record<string, number> = { Cool: 30, Cold: 90 };

export class AzureStorage implements Storage {
  readonly capabilities: StorageCapabilities;
  readonly location: string;
  private readonly options: Options;
  private readonly endpoint: string;
  private client: Promise<ContainerClient> | undefined;
  private containerReady: Promise<ContainerClient> | undefined;

  constructor(options: Options) {
    this.options = options;
    const minimum = MINIMUM_DAYS[options.access_tier ?? "Hot"];
    this.capabilities = {
      atomicPut: true,
      maxConcurrency: 8,
      ...(minimum ? { minimumStorageDays: minimum } : {}),
    };
    const endpoint = (options.endpoint ?? `https://${options.account}.blob.core.windows.net`).replace(
      /\/+$/,
      "",
    );
    const prefix = options.prefix.replace(/^\/+|\/+$/g, "");
    this.location = `azure://${options.account}/${options.container}${prefix ? `/${prefix}` : ""}`;
    this.endpoint = endpoint;
  }

  /** The SDK is loaded on first use: cairn's start-up does not pay for destinations it does not use. */
  private container(): Promise<ContainerClient> {
    this.client ??= import("@azure/storage-blob").then((sdk) => {
      const o = this.options;
      const service = o.account_key
        ? new sdk.BlobServiceClient(
            this.endpoint,
            new sdk.StorageSharedKeyCredential(o.account, o.account_key),
          )
        : new sdk.BlobServiceClient(
            o.sas_token ? `${this.endpoint}?${o.sas_token.replace(/^\?/, "")}` : this.endpoint,
            new sdk.AnonymousCredential(),
          );
      return service.getContainerClient(o.container);
    });
    return this.client;
  }

  private name(key: string): string {
    checkedKey(key);
    const prefix = this.options.prefix.replace(/^\/+|\/+$/g, "");
    return prefix ? `${prefix}/${key}` : key;
  }

  private keyOf(name: string): string {
    const prefix = this.options.prefix.replace(/^\/+|\/+$/g, "");
    return prefix ? name.slice(prefix.length + 1) : name;
  }

  private failure(action: string, key: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    const status = restStatus(error);
    const code = status === undefined ? undefined : (error as { code?: string }).code;
    const message = ((error as Error).message ?? String(error)).split("\n")[0];
    const hint =
      status === 403 || code === "AuthenticationFailed"
        ? "check account_key or sas_token (a SAS needs read, write, list and delete, and must not be expired)"
        : status === 404 && code === "ContainerNotFound"
          ? "the container does not exist and could not be created"
          : undefined;
    return new StorageError(`${action} ${this.location}/${key} failed: ${code ?? message}`, {
      cause: error,
      retryable: status === 429 || (status !== undefined && status >= 500),
      ...(hint ? { hint } : {}),
    });
  }

  private ready(): Promise<ContainerClient> {
    this.containerReady ??= this.container().then(async (container) => {
      try {
        await container.createIfNotExists();
      } catch (error) {
        // A SAS scoped to the container may not create it; that is fine if it exists.
        if (restStatus(error) !== 403) {
          this.containerReady = undefined;
          throw error;
        }
      }
      return container;
    });
    return this.containerReady;
  }

  handCommand(key: string, op: WriteOp): string {
    const [account = "", container = "", ...name] = joinKey(this.location, key)
      .slice("azure://".length)
      .split("/");
    const blob = `--account-name ${shellWord(account)} -c ${shellWord(container)} -n ${shellWord(name.join("/"))}`;
    return op === "put" ? `az storage blob upload ${blob} -f /dev/stdin` : `az storage blob delete ${blob}`;
  }

  async put(key: string, body: Readable, { signal }: PluginContext): Promise<ObjectInfo> {
    const upload = through(body, new ByteCounter());
    try {
      const blob = (await this.ready()).getBlockBlobClient(this.name(key));
      await blob.uploadStream(upload, this.options.block_size, this.options.concurrency, {
        abortSignal: signal,
        conditions: { ifNoneMatch: "*" },
        ...(this.options.access_tier ? { tier: this.options.access_tier } : {}),
      });
      return { key, size: upload.bytes };
    } catch (error) {
      body.destroy();
      if (restStatus(error) === 409 || restStatus(error) === 412)
        throw alreadyExists(`${this.location}/${key}`);
      throw this.failure("upload to", key, error);
    }
  }

  async get(key: string, { signal }: PluginContext): Promise<Readable> {
    try {
      const blob = (await this.container()).getBlockBlobClient(this.name(key));
      const response = await blob.download(0, undefined, { abortSignal: signal });
      return response.readableStreamBody as Readable;
    } catch (error) {
      if (restStatus(error) === 404) throw new NotFoundError(`${this.location}/${key} does not exist`);
      throw this.failure("download of", key, error);
    }
  }

  async stat(key: string, { signal }: PluginContext): Promise<ObjectInfo | undefined> {
    try {
      const blob = (await this.container()).getBlockBlobClient(this.name(key));
      const properties = await blob.getProperties({ abortSignal: signal });
      return {
        key,
        size: properties.contentLength ?? 0,
        ...(properties.lastModified ? { modified: properties.lastModified } : {}),
      };
    } catch (error) {
      if (restStatus(error) === 404) return undefined;
      throw this.failure("stat of", key, error);
    }
  }

  async *list(prefix: string, { signal }: PluginContext): AsyncIterable<ObjectInfo> {
    try {
      const container = await this.container();
      for await (const blob of container.listBlobsFlat({ prefix: this.name(prefix), abortSignal: signal }))
        yield {
          key: this.keyOf(blob.name),
          size: blob.properties.contentLength ?? 0,
          modified: blob.properties.lastModified,
        };
    } catch (error) {
      if (restStatus(error) === 404) return;
      throw this.failure("listing of", prefix, error);
    }
  }

  async delete(key: string, { signal }: PluginContext): Promise<void> {
    try {
      await (await this.container())
        .getBlockBlobClient(this.name(key))
        .deleteIfExists({ abortSignal: signal });
    } catch (error) {
      // Idempotent: no container (nothing was ever stored) means no such blob either.
      if ((error as { code?: string }).code === "ContainerNotFound") return;
      throw this.failure("delete of", key, error);
    }
  }
}

export const azureStorage = defineStorage({
  type: "azure",
  description:
    "Azure Blob Storage (and Azurite): block blobs committed with If-None-Match, never overwritten",
  schema,
  secrets: ["account_key", "sas_token"],
  fromUrl: (url) => ({
    account: url.hostname,
    container: url.pathname.split("/")[1] ?? "",
    prefix: decodeURIComponent(url.pathname.split("/").slice(2).join("/")),
  }),
  create: (options) => {
    // As the az CLI does: the key or a SAS from the environment when the config names neither.
    const account_key =
      options.account_key ?? (options.sas_token ? undefined : process.env.AZURE_STORAGE_KEY);
    const sas_token = options.sas_token ?? (account_key ? undefined : process.env.AZURE_STORAGE_SAS_TOKEN);
    if (!account_key && !sas_token)
      throw new StorageError(`the azure destination for account ${options.account} has no credentials`, {
        hint: "set account_key or sas_token (or AZURE_STORAGE_KEY / AZURE_STORAGE_SAS_TOKEN)",
      });
    return new AzureStorage({
      ...options,
      ...(account_key ? { account_key } : {}),
      ...(sas_token ? { sas_token } : {}),
      prefix: posix.normalize(options.prefix || ".").replace(/^\.$/, ""),
    });
  },
});
