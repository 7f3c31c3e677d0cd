/** Configuration: every problem at once with file, line and key; ${VAR} and ${file:…}; redaction. */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig, redactedConfig } from "../../src/config/load.ts";
import { ConfigError } from "../../src/kit/errors.ts";
import { builtinPlugins } from "../../src/registry.ts";
import { cairn, tempDir } from "../helpers/env.ts";

/** The source types the message lists: every registered one, in the registry's order. */
const SOURCE_TYPES = builtinPlugins
  .filter((p) => p.kind === "source")
  .map((p) => p.type)
  .join(", ");

test("config check lists every problem with file, line, key and what is expected; exit 2", async () => {
  const dir = tempDir();
  const file = join(dir, "cairn.yaml");
  writeFileSync(
    file,
    `jobs:
  app:
    sources:
      db: { type: postgress, database: app }
      files: { type: files, paths: [] }
    compression: { type: zstd, level: 42 }
    destinations:
      local: { type: local, path: ./b, colour: blue }
  "bad name!":
    sources: { f: { type: files, paths: [.] } }
    destinations: { l: { type: local, path: . } }
  empty:
    sources: {}
    destinations: {}
`,
  );
  const result = await cairn(["config", "check"], { cwd: dir });
  assert.equal(result.code, 2);
  const err = result.stderr;
  assert.match(err, /invalid configuration \(\d+ problems\)/);
  assert.match(
    err,
    new RegExp(
      `${file}:4:\\d+: jobs\\.app\\.sources\\.db\\.type: unknown source type "postgress" \\(did you mean "postgres"\\?\\): one of ${SOURCE_TYPES}`,
    ),
  );
  assert.match(err, new RegExp(`${file}:5:\\d+: jobs\\.app\\.sources\\.files\\.paths: .*at least 1`, "i"));
  assert.match(err, new RegExp(`${file}:6:\\d+: jobs\\.app\\.compression\\.level: .*(<=|at most) ?19`, "i"));
  assert.match(
    err,
    new RegExp(`${file}:8:\\d+: jobs\\.app\\.destinations\\.local\\.colour: unknown key "colour"`),
  );
  assert.match(err, /job names use letters, digits/);
  assert.match(err, /a job needs at least one source/);
  assert.doesNotMatch(err, /\n\s+at /, "no stack trace");
});

test("YAML syntax errors and a missing file are reported with their position, exit 2", async () => {
  const dir = tempDir();
  writeFileSync(join(dir, "cairn.yaml"), "jobs:\n  app: {\n");
  const broken = await cairn(["config", "check"], { cwd: dir });
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /cairn\.yaml:\d+:\d+/);
  const missing = await cairn(["list", "-c", join(dir, "nope.yaml")], { cwd: dir });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.yaml.*does not exist/);
});

test("${VAR} and ${file:…} are expanded anywhere; missing ones are problems; secrets are redacted", () => {
  const dir = tempDir();
  writeFileSync(join(dir, "pw"), "file-secret-123\n");
  writeFileSync(
    join(dir, "cairn.yaml"),
    `jobs:
  app:
    sources:
      db: { type: postgres, database: "\${DB_NAME}", password: "\${file:pw}", host: "$\${literal}" }
    destinations:
      local: { type: local, path: "\${BACKUP_ROOT}/x" }
`,
  );
  const config = loadConfig({ file: join(dir, "cairn.yaml"), env: { DB_NAME: "shop", BACKUP_ROOT: "/srv" } });
  const db = config.jobs.app!.sources.db!;
  assert.equal(db.database, "shop");
  assert.equal(db.password, "file-secret-123");
  assert.equal(db.host, "${literal}");
  assert.equal(config.jobs.app!.destinations.local!.path, "/srv/x");
  assert.ok(config.secrets.includes("file-secret-123"));
  const shown = JSON.stringify(redactedConfig(config));
  assert.ok(!shown.includes("file-secret-123"));
  assert.match(shown, /"password":"<redacted>"/);

  assert.throws(
    () => loadConfig({ file: join(dir, "cairn.yaml"), env: {} }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      const messages = error.problems.map((p) => `${p.line} ${p.path} ${p.message}`);
      assert.deepEqual(messages, [
        "4 jobs.app.sources.db.database environment variable DB_NAME is not set",
        "6 jobs.app.destinations.local.path environment variable BACKUP_ROOT is not set",
      ]);
      return true;
    },
  );
});

test("the config file comes from -c, then $CAIRN_CONFIG, then ./cairn.yaml", async () => {
  const dir = tempDir();
  const body = (job: string) =>
    `jobs:\n  ${job}:\n    sources: { f: { type: files, paths: [.] } }\n    destinations: { l: { type: local, path: ./b } }\n`;
  writeFileSync(join(dir, "cairn.yaml"), body("default"));
  writeFileSync(join(dir, "env.yaml"), body("fromenv"));
  writeFileSync(
    join(dir, "flag.json"),
    JSON.stringify({
      jobs: {
        fromflag: {
          sources: { f: { type: "files", paths: ["."] } },
          destinations: { l: { type: "local", path: "b" } },
        },
      },
    }),
  );
  assert.match((await cairn(["config", "check"], { cwd: dir })).stdout, /default/);
  assert.match(
    (await cairn(["config", "check"], { cwd: dir, env: { CAIRN_CONFIG: "env.yaml" } })).stdout,
    /fromenv/,
  );
  assert.match(
    (await cairn(["config", "check", "-c", "flag.json"], { cwd: dir, env: { CAIRN_CONFIG: "env.yaml" } }))
      .stdout,
    /fromflag/,
  );
});
