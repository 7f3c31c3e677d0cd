/**
 * Runs s3rver in its own process: it makes continuation tokens with DES, which OpenSSL 3 enables
 * only in the legacy provider (`node --openssl-legacy-provider`), a flag the test process should
 * not need. Prints the port on stdout; stops on SIGTERM.
 */
import S3rver from "s3rver";

const [directory, ...buckets] = process.argv.slice(2);
const server = new S3rver({
  port: 0,
  address: "127.0.0.1",
  silent: true,
  directory: directory!,
  configureBuckets: buckets.map((name) => ({ name })),
});
const { port } = await server.run();
process.stdout.write(`${port}\n`);
process.on("SIGTERM", () => {
  server.close().then(() => process.exit(0));
});
