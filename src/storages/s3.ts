/**
 * S3 and S3-compatible object storage, through the AWS SDK v3: streamed multipart uploads (an
 * object appears only when complete; a failed upload is aborted), paged listings, credentials from
 * the config or the standard AWS chain.
 */

import type { Readable } from "node:stream";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  type S3ClientConfig,
  S3ServiceException,
  type StorageClass,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { z } from "zod";
import { parseSize } from "../config/size.ts";
import { ByteCounter, through } from "../core/streams.ts";
import { CairnError, NotFoundError, StorageError } from "../errors.ts";
import { defineStorage, type ObjectInfo, type Storage } from "../types.ts";

const size = z.union([z.string(), z.number()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined || bytes < 5 * 1024 * 1024) {
    ctx.addIssue({
      code: "custom",
      message: `"${value}" is not a part size of at least 5MiB (S3's minimum)`,
    });
    return z.NEVER;
  }
  return bytes;
});

const schema = z.object({
  bucket: z.string().min(3).describe("bucket name"),
  prefix: z.string().default("").describe("key prefix inside the bucket, e.g. backups/"),
  region: z.string().default("us-east-1"),
  endpoint: z
    .string()
    .optional()
    .describe("S3-compatible endpoint URL, e.g. https://s3.eu-central-1.wasabisys.com"),
  path_style: z
    .boolean()
    .default(false)
    .describe("bucket in the path instead of the host name (MinIO, Ceph, most self-hosted servers)"),
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
      "REDUCED_REDUNDANCY",
    ])
    .optional()
    .describe(
      "class of the stored objects (archive classes that need a thaw come with the cold-storage work)",
    ),
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

type Options = z.output<typeof schema>;

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NoSuchKey" || e?.name === "NotFound" || e?.$metadata?.httpStatusCode === 404;
}

export class S3Storage implements Storage {
  readonly capabilities = { atomicPut: true, maxConcurrency: 8 };
  readonly location: string;
  private readonly client: S3Client;
  private readonly options: Options;

  constructor(options: Options) {
    this.options = options;
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
    this.client = new S3Client(config);
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
    const message =
      error instanceof S3ServiceException || error instanceof Error ? error.message : String(error);
    return new StorageError(
      `${action} ${where} failed: ${name}${status ? ` (HTTP ${status})` : ""}: ${message}`,
      {
        cause: error,
        ...(credentials
          ? {
              hint: "check access_key_id and secret_access_key (or the AWS credentials in the environment) and the bucket policy",
            }
          : name === "NoSuchBucket"
            ? { hint: `create the bucket ${this.options.bucket}, or fix bucket/endpoint/region` }
            : {}),
      },
    );
  }

  async put(key: string, body: Readable): Promise<ObjectInfo> {
    // Never overwrite: S3 replaces objects silently, so look first (the window is small; a
    // snapshot folder's keys are unique per run).
    if (await this.stat(key))
      throw new StorageError(
        `${this.location}/${key} already exists; cairn never overwrites a stored object`,
      );
    const counter = through(body, new ByteCounter());
    const upload = new Upload({
      client: this.client,
      params: {
        Bucket: this.options.bucket,
        Key: this.keyOf(key),
        Body: counter,
        ...(this.options.storage_class ? { StorageClass: this.options.storage_class as StorageClass } : {}),
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
    counter.on("error", () => void upload.abort().catch(() => {}));
    try {
      await upload.done();
    } catch (error) {
      const cause = counter.errored ?? error;
      throw this.failure("upload to", key, cause);
    }
    return { key, size: counter.bytes };
  }

  async get(key: string): Promise<Readable> {
    try {
      const response = await this.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }),
      );
      return response.Body as Readable;
    } catch (error) {
      if (isNotFound(error)) throw new NotFoundError(`${this.location}/${key} does not exist`);
      throw this.failure("download of", key, error);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }),
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

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.options.bucket,
            Prefix: this.keyOf(prefix),
            ...(token ? { ContinuationToken: token } : {}),
          }),
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

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }));
    } catch (error) {
      if (isNotFound(error)) return;
      throw this.failure("delete of", key, error);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

export const s3Storage = defineStorage({
  type: "s3",
  description: "Amazon S3 and S3-compatible storage (multipart streaming uploads, storage classes, SSE)",
  schema,
  secrets: ["secret_access_key", "session_token"],
  create: (options) => new S3Storage(options),
  fromUrl: (url) => ({ bucket: url.hostname, prefix: decodeURIComponent(url.pathname.replace(/^\//, "")) }),
});
