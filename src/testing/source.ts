/**
 * The source round trip every built-in source passes against a real server, for plugin authors
 * too: back up (compressed, age-encrypted, to a temporary folder), verify at the full level (the
 * source's own verify reads the decoded artifact), restore into a fresh target and compare, then
 * restore again into the same target and see it refused, the target untouched.
 *
 *   registerCases(test, sourceRoundTrip({ plugins: mine.plugins, source: { type: "mine", … },
 *     compare: (target) => assert.deepEqual(readBack(target), original) }), "mine");
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateIdentity } from "../age/keys.ts";
import { configFromObject } from "../config/load.ts";
import type { PluginOptions } from "../config/schema.ts";
import { backup } from "../engine/backup.ts";
import { restore, verify } from "../engine/restore.ts";
import type { PluginDefinition, RestoreTarget } from "../kit/contracts.ts";
import { builtinPlugins, createRegistry } from "../registry.ts";
import type { TestCase } from "./cases.ts";

export interface SourceRoundTripOptions {
  /** The plugin's definitions, registered beside the built-ins. */
  plugins?: readonly PluginDefinition[];
  /** The source's options as in a config: `{ type: "mine", … }`. */
  source: PluginOptions;
  /** Runs before the backup (write the data to back up); may return facts for `compare`. */
  prepare?: () => unknown;
  /** Where to restore (default: a new empty folder as `dir`). Called once, after the backup. */
  target?: () => RestoreTarget | Promise<RestoreTarget>;
  /** Asserts that what was restored into `target` equals what was backed up. */
  compare: (target: RestoreTarget, prepared: unknown) => void | Promise<void>;
  /** The compression: `gzip` (default), `zstd` or `none`. */
  compression?: string;
  /** Folder relative paths in `source` are resolved from (default: a temporary folder). */
  baseDir?: string;
  /**
   * A second restore into the same, now occupied, target must be refused and leave it as it was
   * (default true: every built-in source refuses; say false for a source that merges).
   */
  refusesOccupiedTarget?: boolean;
}

const fresh = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

/** Backs up, verifies, restores into a fresh target and compares: one case. */
export function sourceRoundTrip(options: SourceRoundTripOptions): TestCase[] {
  return [
    {
      title: `${options.source.type}: back up → verify → restore into a fresh target → compare`,
      async run() {
        const work = fresh("cairn-roundtrip-");
        const key = generateIdentity();
        const identityFile = join(work, "key.txt");
        writeFileSync(identityFile, `${key.identity}\n`, { mode: 0o600 });
        const config = configFromObject(
          {
            state_dir: join(work, "state"),
            jobs: {
              roundtrip: {
                sources: { it: options.source },
                compression: options.compression ?? "gzip",
                encryption: { age: { recipients: [key.recipient] } },
                destinations: { here: { type: "local", path: join(work, "stored") } },
              },
            },
          },
          {
            registry: createRegistry([...builtinPlugins, ...(options.plugins ?? [])]),
            baseDir: options.baseDir ?? work,
          },
        );
        const prepared = await options.prepare?.();
        const report = await backup({ config });
        const job = report.jobs[0]!;
        assert.ok(job.ok, `the backup failed: ${job.error?.message ?? "no error given"}`);
        assert.ok(job.artifacts.length > 0, "the source produced no artifact");

        const checked = await verify({ config, job: "roundtrip", identityFiles: [identityFile] });
        assert.equal(checked.level, "full", "verify read the decoded artifacts");
        assert.equal(checked.artifacts.length, job.artifacts.length, "verify checked every artifact");

        const target = (await options.target?.()) ?? { dir: fresh("cairn-restored-") };
        const restoreInto = () =>
          restore({
            config,
            job: "roundtrip",
            identityFiles: [identityFile],
            ...(target.dir ? { toDir: target.dir } : {}),
            ...(target.database ? { toDatabase: target.database } : {}),
            ...(target.force ? { force: true } : {}),
          });
        const restored = await restoreInto();
        assert.equal(restored.restored.length, job.artifacts.length, "every artifact was restored");
        await options.compare(target, prepared);
        if (options.refusesOccupiedTarget === false || target.force) return;
        await assert.rejects(restoreInto(), "a restore into the occupied target is refused");
        await options.compare(target, prepared);
      },
    },
  ];
}
