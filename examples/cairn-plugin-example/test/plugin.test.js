// The example plugin passes the suites cairn's own plugins pass, from @cairn-backup/cairn/testing:
// the storage conformance cases against a real server, and the source round trip with real git.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import * as cairn from "@cairn-backup/cairn/plugin";
import { registerCases, sourceRoundTrip, storageConformance } from "@cairn-backup/cairn/testing";
import plugin from "cairn-plugin-example";
import { startObjectStore } from "cairn-plugin-example/server";

const { plugins } = plugin(cairn);
const objstore = /** @type {import("@cairn-backup/cairn/plugin").StorageDefinition} */ (
  plugins.find((p) => p.type === "objstore")
);
const temp = (/** @type {string} */ name) => mkdtempSync(join(tmpdir(), `${name}-`));

const store = await startObjectStore({ dir: temp("objstore"), token: "s3cret" });
after(() => store.close());
const open = (/** @type {string} */ token) =>
  objstore.create(objstore.schema.parse({ url: store.url, token, prefix: "tests" }), { name: "t", baseDir: "." });

registerCases(
  test,
  storageConformance(
    async () => ({ storage: await open("s3cret"), withWrongCredentials: () => open("wrong") }),
    { bigMiB: 64 },
  ),
  "objstore",
);

const git = (/** @type {string[]} */ ...args) => execFileSync("git", args, { encoding: "utf8" });
const refs = (/** @type {string} */ repo) => git("-C", repo, "for-each-ref", "--format=%(objectname) %(refname)");
const repository = join(temp("repo"), "app");

registerCases(
  test,
  sourceRoundTrip({
    plugins,
    source: { type: "gitbundle", repository },
    prepare() {
      git("init", "--quiet", "--initial-branch=main", repository);
      for (let i = 0; i < 5; i++) {
        writeFileSync(join(repository, `file-${i}.txt`), `ünï ${i}\n`.repeat(1000 * (i + 1)));
        git("-C", repository, "add", ".");
        git("-C", repository, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "--quiet", "-m", `c${i}`);
      }
      git("-C", repository, "tag", "v1");
      git("-C", repository, "branch", "feature", "HEAD~2");
    },
    compare(target) {
      assert.equal(refs(join(/** @type {string} */ (target.dir), "it.git")), refs(repository));
    },
  }),
  "gitbundle",
);
