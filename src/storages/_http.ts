/** A small HTTP(S) client for the destinations that speak plain HTTP (WebDAV, Swift): keep-alive, streamed bodies. */
import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import type { ObjectInfo } from "../kit/contracts.ts";
import { describeSystemError } from "../kit/errno.ts";
import { CairnError, NotFoundError, StorageError } from "../kit/errors.ts";
import { certificateHint } from "./_shared.ts";

export interface HttpResponse {
  status: number;
  headers: IncomingMessage["headers"];
  body: IncomingMessage;
}

export interface HttpClientOptions {
  /** Most connections kept open per host. */
  connections: number;
  /** PEM file of a CA to trust for https, besides the system's. */
  ca_file?: string | undefined;
}

export class HttpClient {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(options: HttpClientOptions) {
    const agentOptions = { keepAlive: true, maxSockets: options.connections };
    this.http = new HttpAgent(agentOptions);
    this.https = new HttpsAgent({
      ...agentOptions,
      ...(options.ca_file ? { ca: readFileSync(options.ca_file) } : {}),
    });
  }

  /** Resolves once the response headers arrive; a streamed body that fails rejects. */
  send(
    method: string,
    url: URL,
    headers: Record<string, string> = {},
    body?: Readable | string | Buffer,
  ): Promise<HttpResponse> {
    const secure = url.protocol === "https:";
    const request = secure ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method, agent: secure ? this.https : this.http, headers });
      req.once("error", reject);
      req.once("response", (res) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
      );
      if (body === undefined || typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
      else pipeline(body, req).catch(reject);
    });
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/** The whole (small) body of a response, as text. */
export async function readText(response: HttpResponse): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Statuses worth trying again: the server is busy or briefly broken. */
export const retryableStatus = (status: number): boolean => status === 408 || status === 429 || status >= 500;

/** The body of a GET answered 200; a 404 is a NotFoundError, any other status `otherwise(status)`. */
export function bodyOf(
  response: HttpResponse,
  where: string,
  otherwise: (status: number) => CairnError,
): Readable {
  if (response.status === 200) return response.body;
  response.body.resume();
  if (response.status === 404) throw new NotFoundError(`${where} does not exist`);
  throw otherwise(response.status);
}

/** What a HEAD answered: the object, none on 404, or `otherwise(status)`. */
export function infoFromHead(
  response: HttpResponse,
  key: string,
  otherwise: (status: number) => CairnError,
): ObjectInfo | undefined {
  response.body.resume();
  if (response.status === 404) return undefined;
  if (response.status !== 200) throw otherwise(response.status);
  return objectInfoFrom(key, response);
}

/** Options of every destination that speaks HTTP through HttpClient. */
export const httpClientFields = {
  ca_file: z
    .string()
    .optional()
    .describe("PEM file of the CA (or self-signed certificate) to trust for https"),
  connections: z.number().int().min(1).max(32).default(4).describe("HTTP connections kept open at most"),
};

/** What a HEAD (or GET) answer says about an object. */
function objectInfoFrom(key: string, response: HttpResponse): ObjectInfo {
  const modified = response.headers["last-modified"];
  return {
    key,
    size: Number(response.headers["content-length"] ?? 0),
    ...(modified ? { modified: new Date(modified) } : {}),
  };
}

/** A failure below HTTP (refused, reset, TLS) as the StorageError the destination reports. */
export function transportFailure(action: string, where: string, error: unknown): CairnError {
  if (error instanceof CairnError) return error;
  const message = describeSystemError(error) ?? (error as Error).message ?? String(error);
  const hint = certificateHint(message);
  return new StorageError(`${action} ${where} failed: ${message}`, {
    cause: error,
    ...(hint ? { hint } : {}),
  });
}
