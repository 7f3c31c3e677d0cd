/** The webdav destination against Apache httpd's mod_dav on 127.0.0.1. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { WebDavStorage } from "../../src/storages/webdav.ts";
import { apacheMissing, startApacheDav } from "../helpers/apache.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip = apacheMissing();
const dav = skip ? undefined : await startApacheDav();

const options = (overrides: Record<string, unknown> = {}) => ({
  url: `${dav!.url}/backups`,
  user: dav!.user,
  password: dav!.password,
  connections: 8,
  ...overrides,
});

conformance(
  "webdav (Apache mod_dav)",
  async () => ({
    storage: new WebDavStorage(options()),
    withWrongCredentials: () => new WebDavStorage(options({ password: "wrong" })),
    server: {
      port: dav!.port,
      via: (port) => new WebDavStorage(options({ url: `http://127.0.0.1:${port}/dav/backups` })),
    },
  }),
  skip,
);

test("webdav: backup, list, verify and restore from the CLI with a webdav destination; password redacted", {
  skip,
}, async () => {
  const outputs = await cliRoundTrip(
    `type: webdav
url: ${dav!.url}/e2e
user: ${dav!.user}
password: ${dav!.password}`,
    { split: "1MB" },
  );
  for (const output of outputs) assert.ok(!output.includes(dav!.password), output);
});
