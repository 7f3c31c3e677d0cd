/** The ftp destination against pure-ftpd (FTPS with explicit TLS, and plain FTP) on 127.0.0.1. */
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { Storage } from "../../src/kit/contracts.ts";
import { StorageError } from "../../src/kit/errors.ts";
import { FtpStorage } from "../../src/storages/ftp.ts";
import { testContext } from "../../src/testing/index.ts";
import { hasProgram } from "../helpers/env.ts";
import { startFtpd } from "../helpers/ftpd.ts";
import { cliRoundTrip, conformance } from "./conformance.ts";

const skip =
  hasProgram("pure-ftpd") && hasProgram("pure-pw") ? false : "needs pure-ftpd (.ci/system-deps installs it)";
const ftpd = skip ? undefined : await startFtpd();

const options = (overrides: Record<string, unknown> = {}) => ({
  host: "127.0.0.1",
  port: ftpd!.port,
  user: ftpd!.user,
  password: ftpd!.password,
  path: "backups",
  tls: "explicit" as const,
  ca_file: ftpd!.certificate,
  connections: 4,
  ...overrides,
});

conformance(
  "ftp (pure-ftpd, explicit TLS)",
  async () => ({
    storage: new FtpStorage(options()),
    withWrongCredentials: () => new FtpStorage(options({ password: "wrong" })),
    // TLS would hide the passive-mode replies from the fault proxy: the broken-connection cases
    // run over plain FTP (the same code; TLS is a layer below it).
    server: {
      port: ftpd!.port,
      ftp: true,
      via: (port) => new FtpStorage(options({ port, tls: "none", ca_file: undefined })),
    },
  }),
  skip,
);

const ctx = () => testContext();

test("ftp: a server certificate that is not trusted is refused, saying what to do", { skip }, async () => {
  const storage: Storage = new FtpStorage(options({ ca_file: undefined }));
  const error = await (storage as Storage)
    .put("x", Readable.from([Buffer.from("x")]), ctx())
    .catch((e: unknown) => e);
  assert.ok(error instanceof StorageError, String(error));
  assert.match(error.message, /self.signed certificate/);
  assert.match(error.hint ?? "", /ca_file/);
  await storage.close?.();
});

test("ftp: plain FTP when asked for (tls: none) stores and reads back", { skip }, async () => {
  const storage: Storage = new FtpStorage(options({ tls: "none", ca_file: undefined }));
  const c = ctx();
  await storage.put("plain/hello.txt", Readable.from([Buffer.from("hello")]), c);
  assert.equal(Buffer.concat(await (await storage.get("plain/hello.txt", c)).toArray()).toString(), "hello");
  await storage.delete("plain/hello.txt", c);
  await storage.close?.();
});

test("ftp: backup, list, verify and restore from the CLI with an ftp destination; password redacted", {
  skip,
}, async () => {
  const outputs = await cliRoundTrip(
    `type: ftp
host: 127.0.0.1
port: ${ftpd!.port}
user: ${ftpd!.user}
password: ${ftpd!.password}
path: e2e
ca_file: ${ftpd!.certificate}`,
    { split: "1MB" },
  );
  for (const output of outputs) assert.ok(!output.includes(ftpd!.password), output);
});
