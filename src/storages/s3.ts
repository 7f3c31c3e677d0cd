/**
 * S3 and S3-compatible object storage, through the AWS SDK v3: streamed multipart uploads (an
 * object appears only when complete; a failed upload is aborted), paged listings, credentials from
 * the config or the standard AWS chain, presets for the common S3-compatible providers, archive
 * classes with a restore request on read (manifests always stay hot), Object Lock.
 */

import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  ListObjectsV2CommandOutput,
  ObjectLockMode,
  S3Client,
  S3ClientConfig,
  StorageClass,
} from "@aws-sdk/client-s3";
import { z } from "zod";
import type { WriteOp } from "../kit/contracts.ts";
import {
  defineStorage,
  MANIFEST_NAME,
  type ObjectInfo,
  type PluginContext,
  type Storage,
  type StorageCapabilities,
} from "../kit/contracts.ts";
import { describeSystemError } from "../kit/errno.ts";
import { CairnError, IntegrityError, NotFoundError, StorageError } from "../kit/errors.ts";
import { sizeField } from "../kit/schema.ts";
import { shellWord } from "../kit/shell.ts";
import { through } from "../kit/streams.ts";
import { EtagDigest } from "./_etag.ts";
import { alreadyExists, joinKey } from "./_shared.ts";

const size = sizeField({
  invalid: (value) => `"${value}" is not a part size of at least 5MiB (S3's minimum)`,
  min: 5 * 1024 * 1024,
});

/** Endpoint and addressing of S3-compatible providers; `{region}`/`{account_id}` are filled in. */
export const PROVIDERS = {
  aws: { path_style: false },
  minio: { path_style: true, needs: "endpoint" },
  ceph: { path_style: true, needs: "endpoint" },
  r2: {
    endpoint: "https://{account_id}.r2.cloudflarestorage.com",
    region: "auto",
    path_style: true,
    needs: "account_id",
  },
  wasabi: { endpoint: "https://s3.{region}.wasabisys.com", path_style: false },
  b2: { endpoint: "https://s3.{region}.backblazeb2.com", path_style: false, needs: "region" },
  oss: { endpoint: "https://oss-{region}.aliyuncs.com", path_style: false, needs: "region" },
  gcs: { endpoint: "https://storage.googleapis.com", region: "auto", path_style: true },
} as const satisfies Record<
  string,
  { endpoint?: string; region?: string; path_style: boolean; needs?: string }
>;

/** Days each class bills an object for at least, as AWS documents them (S3 pricing, 2026). */
const MINIMUM_DAYS: Record<string, number> = {
  STANDARD_IA: 30,
  ONEZONE_IA: 30,
  GLACIER_IR: 90,
  GLACIER: 90,
  DEEP_ARCHIVE: 180,
};

/** Providers that bill every object for a minimum time, whatever the class. */
const PROVIDER_MINIMUM_DAYS: Record<string, number> = { wasabi: 90 };

/** Classes whose objects must be restored (thawed) before they can be read. */
const ARCHIVE_CLASSES = new Set(["GLACIER", "DEEP_ARCHIVE"]);

const schema = z.object({
  provider: z
    .enum(Object.keys(PROVIDERS) as [keyof typeof PROVIDERS, ...(keyof typeof PROVIDERS)[]])
    .default("aws")
    .describe(
      "aws, or an S3-compatible preset that sets endpoint and addressing: minio, ceph, r2, wasabi, b2, oss, gcs",
    ),
  account_id: z.string().optional().describe("Cloudflare account id (provider: r2)"),
  bucket: z.string().min(3).describe("bucket name"),
  prefix: z.string().default("").describe("key prefix inside the bucket, e.g. backups/"),
  region: z.string().optional().describe("default us-east-1 (auto for r2 and gcs)"),
  endpoint: z
    .string()
    .optional()
    .describe("S3-compatible endpoint URL, e.g. https://s3.eu-central-1.wasabisys.com"),
  path_style: z
    .boolean()
    .optional()
    .describe(
      "bucket in the path instead of the host name (the provider preset sets it; MinIO and Ceph need it)",
    ),
  access_key_id: z.string().optional().describe("default: the AWS chain (env, ~/.aws, instance role)"),
  secret_access_key: z.string().optional(),
  session_token: z.string().optional(),
  storage_class: z
    .enum([
      "STANDARD",
      "STANDARD_IA",
      "ONEZONE_IA",
      "INTELLIGENT_TIERING",
      "GLACIER_IR",
      "GLACIER",
      "DEEP_ARCHIVE",
      "REDUCED_REDUNDANCY",
    ])
    .optional()
    .describe(
      "class of the stored data objects; manifests stay STANDARD with GLACIER/DEEP_ARCHIVE so listing and pruning never need a restore",
    ),
  restore_tier: z
    .enum(["Expedited", "Standard", "Bulk"])
    .default("Standard")
    .describe("GLACIER/DEEP_ARCHIVE: how fast (and dear) a restore request is"),
  restore_days: z.number().int().min(1).default(3).describe("days a restored copy stays readable"),
  restore_wait: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      "minutes to wait (polling) for a requested restore; 0 = request it, fail, and say when to come back",
    ),
  object_lock: z
    .object({
      mode: z
        .enum(["GOVERNANCE", "COMPLIANCE"])
        .describe("COMPLIANCE: nobody, not even root, can delete before the date"),
      days: z.number().int().min(1).describe("each object is locked this many days from its upload"),
    })
    .optional()
    .describe("Object Lock retention on every stored object (the bucket must have Object Lock enabled)"),
  legal_hold: z.boolean().default(false).describe("put a legal hold on every stored object"),
  server_side_encryption: z.enum(["AES256", "aws:kms"]).optional(),
  kms_key_id: z.string().optional().describe("with server_side_encryption: aws:kms"),
  part_size: size.prefault("16MiB").describe("multipart part size (≥ 5MiB)"),
  concurrency: z.number().int().min(1).max(64).default(4).describe("parts uploaded at once"),
  checksums: z
    .enum(["when_required", "when_supported"])
    .default("when_required")
    .describe(
      "SDK request checksums; when_supported sends aws-chunked uploads, which some S3-compatible servers store wrongly (cairn's own SHA-256 checks every object either way)",
    ),
});

type Options = Omit<z.output<typeof schema>, "region" | "path_style"> & {
  region: string;
  path_style: boolean;
};

/** The options with the provider's preset applied; an error names what the preset still needs. */
export function withProvider(options: z.output<typeof schema>): Options {
  const preset: { endpoint?: string; region?: string; path_style: boolean; needs?: string } =
    PROVIDERS[options.provider];
  if (preset.needs && !(options as Record<string, unknown>)[preset.needs])
    throw new StorageError(`s3 provider ${options.provider} needs ${preset.needs}`, {
      hint:
        preset.needs === "endpoint"
          ? "set endpoint to the server's URL, e.g. https://minio.internal:9000"
          : `set ${preset.needs}`,
    });
  const region = options.region ?? preset.region ?? "us-east-1";
  const endpoint =
    options.endpoint ??
    preset.endpoint?.replace("{region}", region).replace("{account_id}", options.account_id ?? "");
  return {
    ...options,
    region,
    path_style: options.path_style ?? preset.path_style,
    ...(endpoint ? { endpoint } : {}),
  };
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

interface Sdk {
  s3: typeof import("@aws-sdk/client-s3");
  Upload: typeof import("@aws-sdk/lib-storage").Upload;
  client: S3Client;
}

export class S3Storage implements Storage {
  readonly capabilities: StorageCapabilities;
  readonly location: string;
  private readonly options: Options;
  private readonly config: S3ClientConfig;
  private sdk: Promise<Sdk> | undefined;

  constructor(options: Options) {
    this.options = options;
    const minimum = Math.max(
      MINIMUM_DAYS[options.storage_class ?? "STANDARD"] ?? 0,
      PROVIDER_MINIMUM_DAYS[options.provider] ?? 0,
    );
    this.capabilities = {
      atomicPut: true,
      maxConcurrency: 8,
      ...(minimum ? { minimumStorageDays: minimum } : {}),
    };
    const prefix = options.prefix.replace(/^\/+/, "");
    this.options = { ...options, prefix: prefix && !prefix.endsWith("/") ? `${prefix}/` : prefix };
    this.location = `s3://${options.bucket}/${this.options.prefix}`.replace(/\/$/, "");
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.path_style,
      requestChecksumCalculation: options.checksums === "when_supported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
      responseChecksumValidation: options.checksums === "when_supported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
      maxAttempts: 3,
    };
    if (options.endpoint) config.endpoint = options.endpoint;
    if (options.access_key_id && options.secret_access_key)
      config.credentials = {
        accessKeyId: options.access_key_id,
        secretAccessKey: options.secret_access_key,
        ...(options.session_token ? { sessionToken: options.session_token } : {}),
      };
    this.config = config;
  }

  /** The SDK is loaded on first use: cairn's start-up does not pay for destinations it does not use. */
  private loaded(): Promise<Sdk> {
    this.sdk ??= Promise.all([import("@aws-sdk/client-s3"), import("@aws-sdk/lib-storage")]).then(
      ([s3, storage]) => ({ s3, Upload: storage.Upload, client: new s3.S3Client(this.config) }),
    );
    return this.sdk;
  }

  private keyOf(key: string): string {
    return this.options.prefix + key;
  }

  /** An SDK failure as a StorageError that names the destination and what to check; never a secret. */
  private failure(action: string, key: string, error: unknown): CairnError {
    if (error instanceof CairnError) return error;
    const where = `${this.location}/${key}`;
    const name = (error as { name?: string }).name ?? "Error";
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const credentials = [
      "InvalidAccessKeyId",
      "SignatureDoesNotMatch",
      "AccessDenied",
      "ExpiredToken",
    ].includes(name);
    const message = describeSystemError(error) ?? (error instanceof Error ? error.message : String(error));
    const kind = describeSystemError(error) ? "" : `${name}${status ? ` (HTTP ${status})` : ""}: `;
    return new StorageError(`${action} ${where} failed: ${kind}${message}`, {
      cause: error,
      retryable: sdkRetryable(name, status),
      ...(credentials
        ? {
            hint: "check access_key_id and secret_access_key (or the AWS credentials in the environment) and the bucket policy",
          }
        : name === "NoSuchBucket"
          ? { hint: `create the bucket ${this.options.bucket}, or fix bucket/endpoint/region` }
          : {}),
    });
  }

  private classFor(key: string): { StorageClass?: StorageClass } {
    const wanted = this.options.storage_class;
    if (!wanted) return {};
    // A manifest in an archive class would make every listing and prune wait hours for a thaw.
    if (ARCHIVE_CLASSES.has(wanted) && key.endsWith(MANIFEST_NAME)) return { StorageClass: "STANDARD" };
    return { StorageClass: wanted as StorageClass };
  }

  private lockFor(): Record<string, unknown> {
    const lock = this.options.object_lock;
    return {
      ...(lock
        ? {
            ObjectLockMode: lock.mode as ObjectLockMode,
            ObjectLockRetainUntilDate: new Date(Date.now() + lock.days * 86_400_000),
          }
        : {}),
      ...(this.options.legal_hold ? { ObjectLockLegalHoldStatus: "ON" } : {}),
      // S3 requires an integrity checksum on uploads that set a lock.
      ...(lock || this.options.legal_hold ? { ChecksumAlgorithm: "SHA256" } : {}),
    };
  }

  handCommand(key: string, op: WriteOp): string {
    const where = shellWord(joinKey(this.location, key));
    return op === "put" ? `aws s3 cp - ${where}` : `aws s3 rm ${where}`;
  }

  async put(key: string, body: Readable, ctx: PluginContext): Promise<ObjectInfo> {
    // Never overwrite: S3 replaces objects silently, so look first (the window is small; a
    // snapshot folder's keys are unique per run).
    if (await this.stat(key, ctx)) throw alreadyExists(`${this.location}/${key}`);
    const counter = through(body, new EtagDigest(this.options.part_size));
    const { client, Upload } = await this.loaded();
    const upload = new Upload({
      client,
      params: {
        Bucket: this.options.bucket,
        Key: this.keyOf(key),
        Body: counter,
        ...this.classFor(key),
        ...this.lockFor(),
        ...(this.options.server_side_encryption
          ? { ServerSideEncryption: this.options.server_side_encryption }
          : {}),
        ...(this.options.kms_key_id ? { SSEKMSKeyId: this.options.kms_key_id } : {}),
      },
      partSize: this.options.part_size,
      queueSize: this.options.concurrency,
      leavePartsOnError: false, // a failed multipart upload is aborted: no parts left to pay for
    });
    // A failing body must fail the upload, not leave it waiting for bytes that never come.
    const abort = () => void upload.abort().catch(() => {});
    counter.on("error", abort);
    ctx.signal.addEventListener("abort", abort, { once: true });
    let etag: string | undefined;
    try {
      etag = (await upload.done()).ETag;
    } catch (error) {
      // An aborted upload says why it was aborted (the body failed, a timeout, a signal), not just "aborted".
      const cause = counter.errored ?? (ctx.signal.aborted ? ctx.signal.reason : error);
      throw this.failure("upload to", key, cause);
    } finally {
      ctx.signal.removeEventListener("abort", abort);
    }
    await this.checkEtag(key, counter, etag, ctx);
    return { key, size: counter.bytes };
  }

  /** A stored object whose ETag says it is not what was sent is removed and the put fails. */
  private async checkEtag(key: string, sent: EtagDigest, etag: string | undefined, ctx: PluginContext) {
    const encrypted = this.options.server_side_encryption === "aws:kms" || this.options.kms_key_id;
    const problem = encrypted ? undefined : sent.mismatch(etag);
    if (!problem) return;
    await this.delete(key, ctx).catch(() => {});
    throw new IntegrityError(
      `upload to ${this.location}/${key} stored other bytes than were sent: ${problem}`,
      {
        hint: "something between cairn and the server (a proxy, a faulty disk) changed the data; the object was removed — back up again, and check the path to the server",
      },
    );
  }

  async get(key: string, { signal }: PluginContext): Promise<Readable> {
    const { client, s3 } = await this.loaded();
    try {
      const response = await client.send(
        new s3.GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }),
        { abortSignal: signal },
      );
      return response.Body as Readable;
    } catch (error) {
      if (isNotFound(error)) throw new NotFoundError(`${this.location}/${key} does not exist`);
      if ((error as { name?: string }).name === "InvalidObjectState") return this.thawed(key, signal);
      throw this.failure("download of", key, error);
    }
  }

  /**
   * An archived object: request a restore (once; S3 answers RestoreAlreadyInProgress after), wait
   * for it up to `restore_wait` minutes, then read the restored copy — or fail saying when to retry.
   */
  private async thawed(key: string, abortSignal: AbortSignal): Promise<Readable> {
    const { client, s3 } = await this.loaded();
    const Bucket = this.options.bucket;
    const Key = this.keyOf(key);
    try {
      await client.send(
        new s3.RestoreObjectCommand({
          Bucket,
          Key,
          RestoreRequest: {
            Days: this.options.restore_days,
            GlacierJobParameters: { Tier: this.options.restore_tier },
          },
        }),
        { abortSignal },
      );
    } catch (error) {
      if ((error as { name?: string }).name !== "RestoreAlreadyInProgress")
        throw this.failure("restore request for", key, error);
    }
    const deadline = Date.now() + this.options.restore_wait * 60_000;
    for (;;) {
      const head = await client.send(new s3.HeadObjectCommand({ Bucket, Key }), { abortSignal });
      if (head.Restore?.includes('ongoing-request="false"'))
        return (await client.send(new s3.GetObjectCommand({ Bucket, Key }), { abortSignal }))
          .Body as Readable;
      if (Date.now() >= deadline) break;
      await sleep(Math.min(60_000, Math.max(0, deadline - Date.now())), undefined, { signal: abortSignal });
    }
    const usual =
      this.options.restore_tier === "Expedited"
        ? "1–5 minutes"
        : this.options.restore_tier === "Bulk"
          ? "5–12 hours (48 for DEEP_ARCHIVE)"
          : "3–5 hours (12 for DEEP_ARCHIVE)";
    throw new StorageError(
      `${this.location}/${key} is in an archive class: a ${this.options.restore_tier} restore has been requested`,
      {
        retryable: false,
        hint: `run the same restore again once it is done (usually ${usual}); or set restore_wait (minutes) to wait for it`,
      },
    );
  }

  async stat(key: string, { signal }: PluginContext): Promise<ObjectInfo | undefined> {
    const { client, s3 } = await this.loaded();
    try {
      const head = await client.send(
        new s3.HeadObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }),
        { abortSignal: signal },
      );
      return {
        key,
        size: head.ContentLength ?? 0,
        ...(head.LastModified ? { modified: head.LastModified } : {}),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.failure("stat of", key, error);
    }
  }

  async *list(prefix: string, { signal }: PluginContext): AsyncIterable<ObjectInfo> {
    const { client, s3 } = await this.loaded();
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await client.send(
          new s3.ListObjectsV2Command({
            Bucket: this.options.bucket,
            Prefix: this.keyOf(prefix),
            ...(token ? { ContinuationToken: token } : {}),
          }),
          { abortSignal: signal },
        );
      } catch (error) {
        throw this.failure("listing of", prefix, error);
      }
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        yield {
          key: object.Key.slice(this.options.prefix.length),
          size: object.Size ?? 0,
          ...(object.LastModified ? { modified: object.LastModified } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string, { signal }: PluginContext): Promise<void> {
    const { client, s3 } = await this.loaded();
    try {
      await client.send(new s3.DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }), {
        abortSignal: signal,
      });
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    const sdk = this.sdk;
    this.sdk = undefined;
    (await sdk?.catch(() => undefined))?.client.destroy();
  }
}

export const s3Storage = defineStorage({
  type: "s3",
  description: "Amazon S3 and S3-compatible storage (multipart streaming uploads, storage classes, SSE)",
  schema,
  secrets: ["secret_access_key", "session_token"],
  create: (options) => new S3Storage(withProvider(options)),
  fromUrl: (url) => ({ bucket: url.hostname, prefix: decodeURIComponent(url.pathname.replace(/^\//, "")) }),
});

/** What the AWS SDK says means "try again later": throttling, a timeout, HTTP 429 or 5xx. */
export function sdkRetryable(name: string, status: number | undefined): boolean {
  if (name === "SlowDown" || name === "RequestTimeout" || name === "TimeoutError") return true;
  return status === 429 || (status !== undefined && status >= 500);
}
