// @ts-check
// A destination for the small HTTP object store of server.js: streamed puts that the server
// makes visible only once whole, never overwriting, paged listings, a bearer token as a secret.
import { Readable } from "node:stream";

/** @param {typeof import("@cairn-backup/cairn/plugin")} cairn */
export function objStoreDestination(cairn) {
  const { z, defineStorage, NotFoundError, StorageError } = cairn;
  return defineStorage({
    type: "objstore",
    description: "a small HTTP object store (the example plugin's server.js)",
    secrets: ["token"],
    schema: z.object({
      url: z.url().describe("the store's address, e.g. http://127.0.0.1:8700"),
      token: z.string().min(1).describe("its bearer token (write ${OBJSTORE_TOKEN}, not the token itself)"),
      prefix: z.string().default("").describe("a folder inside the store for this destination"),
    }),
    fromUrl: (url) => ({
      url: `http://${url.host}`,
      ...(url.pathname.length > 1 ? { prefix: url.pathname.slice(1) } : {}),
    }),
    create(options) {
      const base = options.url.replace(/\/$/, "");
      const prefix = options.prefix ? `${options.prefix.replace(/\/$/, "")}/` : "";
      const location = `objstore ${base}/${prefix}`;
      const headers = { authorization: `Bearer ${options.token}` };
      const objectUrl = (/** @type {string} */ key) =>
        `${base}/objects/${(prefix + key).split("/").map(encodeURIComponent).join("/")}`;

      /** fetch, with every failure a StorageError that names the store (and never the token). */
      async function call(/** @type {string} */ what, /** @type {string} */ url, /** @type {RequestInit} */ init) {
        let res;
        try {
          res = await fetch(url, { ...init, headers: { ...headers, ...init.headers } });
        } catch (error) {
          if (init.signal?.aborted) throw init.signal.reason;
          const cause = /** @type {Error & { cause?: Error }} */ (error).cause ?? error;
          throw new StorageError(`${location}: ${what} failed: ${/** @type {Error} */ (cause).message}`);
        }
        if (res.status === 401)
          throw new StorageError(`${location}: the store refused the token`, { hint: "check token:" });
        return res;
      }
      const failed = (/** @type {string} */ what, /** @type {Response} */ res) =>
        new StorageError(`${location}: ${what} answered HTTP ${res.status}`);

      return {
        location,
        capabilities: { atomicPut: true, maxConcurrency: 4 },
        async put(key, body, ctx) {
          const res = await call(`put ${key}`, objectUrl(key), {
            method: "PUT",
            headers: { "if-none-match": "*" },
            body: /** @type {ReadableStream} */ (Readable.toWeb(body)),
            duplex: "half",
            signal: ctx.signal,
          });
          if (res.status === 412) throw new StorageError(`${location}: ${key} already exists; cairn never overwrites`);
          if (res.status !== 201) throw failed(`put ${key}`, res);
          return { key, size: (/** @type {{ size: number }} */ (await res.json())).size };
        },
        async get(key, ctx) {
          const res = await call(`get ${key}`, objectUrl(key), { signal: ctx.signal });
          if (res.status === 404) throw new NotFoundError(`${location}: ${key} not found`);
          if (res.status !== 200 || !res.body) throw failed(`get ${key}`, res);
          return Readable.fromWeb(/** @type {import("node:stream/web").ReadableStream} */ (res.body));
        },
        async stat(key, ctx) {
          const res = await call(`stat ${key}`, objectUrl(key), { method: "HEAD", signal: ctx.signal });
          if (res.status === 404) return undefined;
          if (res.status !== 200) throw failed(`stat ${key}`, res);
          return { key, size: Number(res.headers.get("content-length")) };
        },
        async *list(listPrefix, ctx) {
          let after = "";
          for (;;) {
            const query = new URLSearchParams({ prefix: prefix + listPrefix, after });
            const res = await call(`list ${listPrefix}`, `${base}/list?${query}`, { signal: ctx.signal });
            if (res.status !== 200) throw failed(`list ${listPrefix}`, res);
            const page = /** @type {{ objects: { key: string, size: number }[], next: string | null }} */ (
              await res.json()
            );
            for (const o of page.objects) yield { key: o.key.slice(prefix.length), size: o.size };
            if (!page.next) return;
            after = page.next;
          }
        },
        async delete(key, ctx) {
          const res = await call(`delete ${key}`, objectUrl(key), { method: "DELETE", signal: ctx.signal });
          if (res.status !== 204) throw failed(`delete ${key}`, res);
        },
      };
    },
  });
}
