/**
 * `--metrics-file`: the Prometheus textfile after backup runs, read back with the Prometheus
 * project's own Python client parser (Debian's python3-prometheus-client).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { configured } from "../helpers/jobs.ts";

const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        out.append({"name": s.name, "labels": s.labels, "value": s.value, "type": family.type})
print(json.dumps(out))
`;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  type: string;
}

const parser = spawnSync("/usr/bin/python3", ["-c", "import prometheus_client"]).status === 0;

function read(file: string): Sample[] {
  const result = spawnSync("/usr/bin/python3", ["-c", PARSE, file], { encoding: "utf8" });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as Sample[];
}

const sorted = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort());
const value = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.find((s) => s.name === name && sorted(s.labels) === sorted(labels))?.value;

test("metrics file: last run, outcome, sizes and last success per job and destination; other jobs' samples survive", {
  skip: parser ? false : "python3-prometheus-client is not installed",
}, async () => {
  const { ws, cli } = configured(`metrics_file: ./cairn.prom
jobs:
  app:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations: { near: { type: local, path: ./near } }
  broken:
    sources: { site: { type: files, paths: [./site] } }
    compression: none
    destinations: { nowhere: { type: local, path: ./a-file/inside } }
`);
  writeFileSync(join(ws.dir, "a-file"), "not a folder\n");
  const file = join(ws.dir, "cairn.prom");
  const before = Date.now() / 1000;
  assert.equal((await cli(["backup", "app"])).code, 0);
  let samples = read(file);
  assert.ok(samples.every((s) => s.type === "gauge"));
  assert.equal(value(samples, "cairn_backup_last_run_success", { job: "app" }), 1);
  const success = value(samples, "cairn_backup_last_success_timestamp_seconds", {
    job: "app",
    destination: "near",
  });
  assert.ok(success !== undefined && success >= before && success <= Date.now() / 1000 + 1, String(success));
  assert.ok(
    (value(samples, "cairn_backup_last_run_stored_bytes", { job: "app", destination: "near" }) ?? 0) > 0,
  );
  assert.ok((value(samples, "cairn_backup_last_run_read_bytes", { job: "app" }) ?? 0) >= 10_240);

  const failed = await cli(["backup", "broken"]);
  assert.equal(failed.code, 1);
  samples = read(file);
  assert.equal(value(samples, "cairn_backup_last_run_success", { job: "broken" }), 0);
  assert.equal(
    value(samples, "cairn_backup_last_success_timestamp_seconds", { job: "broken", destination: "nowhere" }),
    undefined,
  );
  assert.equal(
    value(samples, "cairn_backup_last_success_timestamp_seconds", { job: "app", destination: "near" }),
    success,
    "app's samples are kept by a run of another job",
  );

  // --metrics-file overrides the config; a dry run writes nothing.
  const other = join(ws.dir, "other.prom");
  assert.equal((await cli(["backup", "app", "--dry-run", "--metrics-file", other])).code, 0);
  assert.equal(spawnSync("test", ["-e", other]).status, 1);
  assert.equal((await cli(["backup", "app", "--metrics-file", other])).code, 0);
  assert.equal(value(read(other), "cairn_backup_last_run_success", { job: "app" }), 1);
});
