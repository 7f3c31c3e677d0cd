// @ts-check
// A small HTTP object store, the server the `objstore` destination talks to: objects as files
// under a folder, written to a temporary file and renamed into place once whole, never
// overwritten, listed in pages, behind a bearer token. Run it: OBJSTORE_TOKEN=… node server.js DIR [PORT]
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join, relative, sep } from "node:path";
import { pipeline } from "node:stream/promises";

const PAGE = 500;

/** @param {{ dir: string, token?: string, port?: number }} options */
export async function startObjectStore({ dir, token, port = 0 }) {
  const objects = join(dir, "objects");
  const temporary = join(dir, "tmp");
  mkdirSync(objects, { recursive: true });
  mkdirSync(temporary, { recursive: true });
  let uploads = 0;

  /** @param {string} key */
  const pathOf = (key) => {
    if (!key || key.split("/").some((s) => s === "" || s === "." || s === "..")) return undefined;
    return join(objects, ...key.split("/"));
  };

  /** @param {string} root @returns {Generator<string>} */
  function* walk(root) {
    if (!existsSync(root)) return;
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      const path = join(root, entry.name);
      if (entry.isDirectory()) yield* walk(path);
      else yield relative(objects, path).split(sep).join("/");
    }
  }

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const send = (/** @type {number} */ status, /** @type {unknown} */ body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(body === undefined ? undefined : JSON.stringify(body));
    };
    if (token && req.headers.authorization !== `Bearer ${token}`) return send(401, { error: "wrong token" });
    try {
      if (url.pathname === "/list" && req.method === "GET") {
        const prefix = url.searchParams.get("prefix") ?? "";
        const after = url.searchParams.get("after") ?? "";
        const keys = [...walk(objects)].filter((k) => k.startsWith(prefix) && k > after).sort();
        const page = keys.slice(0, PAGE).map((key) => ({ key, size: statSync(join(objects, key)).size }));
        return send(200, { objects: page, next: keys.length > PAGE ? page.at(-1)?.key : null });
      }
      if (!url.pathname.startsWith("/objects/")) return send(404, { error: "no such route" });
      const key = url.pathname.slice("/objects/".length).split("/").map(decodeURIComponent).join("/");
      const path = pathOf(key);
      if (!path) return send(400, { error: "invalid key" });
      if (req.method === "GET" || req.method === "HEAD") {
        if (!existsSync(path)) return send(404, { error: "not found" });
        res.writeHead(200, { "content-length": statSync(path).size });
        if (req.method === "HEAD") return res.end();
        return await pipeline(createReadStream(path), res);
      }
      if (req.method === "DELETE") {
        rmSync(path, { force: true });
        return send(204);
      }
      if (req.method === "PUT") {
        if (existsSync(path)) return send(412, { error: "exists" });
        const temp = join(temporary, `upload-${process.pid}-${uploads++}`);
        try {
          await pipeline(req, createWriteStream(temp, { flags: "wx" }));
        } catch (error) {
          rmSync(temp, { force: true });
          throw error;
        }
        if (existsSync(path)) {
          rmSync(temp, { force: true });
          return send(412, { error: "exists" });
        }
        mkdirSync(dirname(path), { recursive: true });
        renameSync(temp, path);
        return send(201, { size: statSync(path).size });
      }
      send(405, { error: "method not allowed" });
    } catch (error) {
      if (!res.headersSent) send(500, { error: String(error) });
      else res.destroy();
    }
  });
  await new Promise((ready) => server.listen(port, "127.0.0.1", () => ready(undefined)));
  const address = server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    close: () =>
      new Promise((done) => {
        server.closeAllConnections();
        server.close(() => done(undefined));
      }),
  };
}

if (import.meta.main) {
  const [dir, port] = process.argv.slice(2);
  if (!dir) {
    console.error("usage: OBJSTORE_TOKEN=… node server.js DIR [PORT]");
    process.exit(2);
  }
  const store = await startObjectStore({ dir, token: process.env.OBJSTORE_TOKEN, port: Number(port ?? 8700) });
  console.log(`object store on ${store.url}, objects in ${dir}`);
}
