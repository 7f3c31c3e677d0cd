/**
 * defineConfig is typed from the schemas: `tsc` (run by `npm test`) fails this file if a typo in
 * a key or a type stops being an error (each @ts-expect-error must meet one), and the typed config
 * is the config that validates.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { configFromObject } from "../../src/config/load.ts";
import { defineConfig } from "../../src/config/typed.ts";
import { defineSource, z } from "../../src/kit/index.ts";

const good = defineConfig({
  state_dir: "/tmp/cairn-typed-state",
  jobs: {
    app: {
      sources: {
        db: { type: "postgres", database: "app", host: "127.0.0.1" },
        site: { type: "files", paths: ["/srv/www"], exclude: ["*.tmp"] },
      },
      compression: "zstd",
      encryption: { age: { recipients: ["age1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"] } },
      destinations: {
        local: { type: "local", path: "/tmp/cairn-typed", retries: 2 },
        offsite: { type: "s3", bucket: "backups", endpoint: "http://127.0.0.1:9000", tags: ["offsite"] },
      },
      retention: { keep_daily: 7 },
    },
  },
  notifications: { ops: { type: "webhook", url: "https://example.org/hook", on: "always" } },
});

test("a typed config is a config that validates", () => {
  const config = configFromObject({
    ...good,
    jobs: { app: { ...good.jobs.app, encryption: "none" } },
  });
  assert.deepEqual(Object.keys(config.jobs.app!.sources), ["db", "site"]);
});

test("typos are compile errors (checked by tsc, not at run time)", () => {
  const typos = () => [
    defineConfig({
      jobs: {
        // @ts-expect-error `sorces` is no job key
        a: { sorces: {}, destinations: { d: { type: "local", path: "/x" } } },
      },
    }),
    defineConfig({
      jobs: {
        a: {
          // @ts-expect-error `postgress` is no source type
          sources: { s: { type: "postgress", database: "x" } },
          destinations: { d: { type: "local", path: "/x" } },
        },
      },
    }),
    defineConfig({
      jobs: {
        a: {
          // @ts-expect-error `databse` is no postgres option
          sources: { s: { type: "postgres", databse: "x" } },
          destinations: { d: { type: "local", path: "/x" } },
        },
      },
    }),
    defineConfig({
      jobs: {
        a: {
          sources: { s: { type: "files", paths: ["/x"] } },
          // @ts-expect-error `pth` is no local option
          destinations: { d: { type: "local", pth: "/x" } },
        },
      },
    }),
    defineConfig({
      jobs: {
        a: {
          sources: { s: { type: "files", paths: ["/x"] } },
          destinations: { d: { type: "local", path: "/x" } },
          // @ts-expect-error `lz4` is no compression
          compression: "lz4",
        },
      },
    }),
  ];
  assert.equal(typeof typos, "function");
});

test("a plugin's source types its options too, when its definitions are named", () => {
  const mine = [
    defineSource({
      type: "mine",
      description: "a plugin's source",
      schema: z.object({ url: z.string() }),
      create: () => ({ async *backup() {} }),
    }),
  ] as const;
  const config = defineConfig<typeof mine>({
    jobs: {
      a: {
        sources: { s: { type: "mine", url: "x" } },
        destinations: { d: { type: "local", path: "/x" } },
      },
    },
  });
  defineConfig<typeof mine>({
    jobs: {
      a: {
        // @ts-expect-error `uri` is no option of mine
        sources: { s: { type: "mine", uri: "x" } },
        destinations: {},
      },
    },
  });
  assert.equal(config.jobs.a!.sources.s!.type, "mine");
});
