/** `--only` / `--skip`: which jobs and destinations a run takes, and typos refused. */
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { configFromObject } from "../../src/config/load.ts";
import { glob, select } from "../../src/engine/select.ts";
import { configured } from "../helpers/jobs.ts";

const destination = (path: string, tags: string[] = []) => ({ type: "local", path, tags });
const job = (tags: string[], destinations: Record<string, unknown>) => ({
  tags,
  sources: { site: { type: "files", paths: ["./site"] } },
  destinations,
});

const config = configFromObject(
  {
    jobs: {
      "db-main": job(["production"], { disk: destination("./disk"), s3: destination("./s3", ["offsite"]) }),
      "db-test": job([], { disk: destination("./disk") }),
      www: job(["production"], { disk: destination("./disk"), tape: destination("./tape", ["offsite"]) }),
    },
  },
  { baseDir: "/srv" },
);
const all = Object.keys(config.jobs);
const picked = (only: string[] = [], skip: string[] = []) =>
  Object.fromEntries([...select(config, all, { only, skip })].map(([j, d]) => [j, [...d].sort()]));

test("select: globs on job names and tags take whole jobs; on destinations, those destinations", () => {
  assert.deepEqual(picked(["db-*"]), { "db-main": ["disk", "s3"], "db-test": ["disk"] });
  assert.deepEqual(picked(["production"]), { "db-main": ["disk", "s3"], www: ["disk", "tape"] });
  assert.deepEqual(picked(["offsite"]), { "db-main": ["s3"], www: ["tape"] });
  assert.deepEqual(picked(["www/disk"]), { www: ["disk"] });
  assert.deepEqual(picked(["db-main", "tape"]), { "db-main": ["disk", "s3"], www: ["tape"] });
  assert.deepEqual(picked([], ["offsite"]), {
    "db-main": ["disk"],
    "db-test": ["disk"],
    www: ["disk"],
  });
  assert.deepEqual(picked(["production"], ["www", "s3"]), { "db-main": ["disk"] });
  // A job left with no destination does not run.
  assert.deepEqual(picked(["db-test"], ["disk"]), {});
});

test("select: a pattern that matches nothing is refused, naming it", () => {
  assert.throws(() => picked(["prodution"]), /"prodution" matches no job, tag or destination/);
  assert.throws(() => picked([], ["db-*", "tapes"]), /"tapes" matches no job/);
});

test("glob: *, ? and character classes; everything else literal", () => {
  assert.ok(glob("db-*")("db-main"));
  assert.ok(!glob("db-*")("xdb-main"));
  assert.ok(glob("db-?ain")("db-main"));
  assert.ok(glob("[dw]*")("www"));
  assert.ok(!glob("[!dw]*")("www"));
  assert.ok(glob("a.b")("a.b"));
  assert.ok(!glob("a.b")("axb"));
  assert.ok(glob("job/dest")("job/dest"));
});

test("backup --only/--skip from the CLI: only the chosen jobs and destinations get a snapshot", async () => {
  const { ws, cli } = configured(`jobs:
  app:
    tags: [production]
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations:
      near: { type: local, path: ./near }
      far: { type: local, path: ./far, tags: [offsite] }
  scratch:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations:
      near: { type: local, path: ./near }
`);
  const count = (dir: string, job: string) =>
    existsSync(join(ws.dir, dir, job)) ? readdirSync(join(ws.dir, dir, job)).length : 0;
  const run = await cli(["backup", "--only", "production", "--skip", "offsite"]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual([count("near", "app"), count("far", "app"), count("near", "scratch")], [1, 0, 0]);
  const offsite = await cli(["backup", "--only", "offsite", "--json"]);
  assert.equal(offsite.code, 0, offsite.stderr);
  assert.deepEqual(Object.keys(JSON.parse(offsite.stdout).jobs[0].destinations), ["far"]);
  assert.deepEqual([count("near", "app"), count("far", "app"), count("near", "scratch")], [1, 1, 0]);
  const typo = await cli(["backup", "--only", "prod"]);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /"prod" matches no job, tag or destination/);
  const status = await cli(["status", "--json", "--only", "offsite"]);
  assert.deepEqual(
    JSON.parse(status.stdout).destinations.map(
      (d: { job: string; destination: string }) => `${d.job}/${d.destination}`,
    ),
    ["app/far"],
  );
});
