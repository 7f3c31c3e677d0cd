// @ts-check
// A source for one program: `git bundle` backs up a repository (every branch and tag) as one
// file, streamed; restore clones it back as a mirror, verify lists the bundle's refs.
import { createWriteStream, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";

/** @param {typeof import("@cairn-backup/cairn/plugin")} cairn */
export function gitBundleSource(cairn) {
  const { z, defineSource, runProgram, spawnOutput, SourceError, UsageError } = cairn;
  const installHint = "apt-get install git";

  /** Writes the decoded artifact into the call's private folder: git reads bundles from files. */
  async function saved(/** @type {import("node:stream").Readable} */ stream, /** @type {string} */ workDir) {
    const file = join(workDir, "repository.bundle");
    await pipeline(stream, createWriteStream(file, { mode: 0o600 }));
    return file;
  }

  return defineSource({
    type: "gitbundle",
    description: "a git repository, every branch and tag, as a git bundle",
    tools: [{ names: ["git"], purpose: "makes and reads the bundle", install: installHint }],
    schema: z.object({
      repository: z.string().min(1).describe("the repository's folder (a work tree or a bare repository)"),
    }),
    create(options, env) {
      const repository = resolve(env.baseDir, options.repository);
      const git = (/** @type {import("@cairn-backup/cairn/plugin").PluginContext} */ ctx) => ({
        signal: ctx.signal,
        logger: ctx.logger,
        installHint,
      });
      return {
        async check(ctx) {
          const { stdout } = await runProgram("git", ["-C", repository, "rev-parse", "--absolute-git-dir"], {
            ...git(ctx),
            captureStdout: true,
          });
          return `repository ${stdout.trim()}`;
        },
        async *backup(ctx) {
          if (!existsSync(repository))
            throw new SourceError(`repository ${repository} does not exist`, { hint: "check repository:" });
          yield {
            name: `${env.name}.bundle`,
            // Ends only when git exits 0; otherwise it errors with git's message: never a short bundle.
            stream: spawnOutput("git", ["-C", repository, "bundle", "create", "--quiet", "-", "--all"], git(ctx)),
            meta: { repository },
          };
        },
        async verify(_artifact, stream, ctx) {
          const file = await saved(stream, ctx.workDir);
          const { stdout } = await runProgram("git", ["bundle", "list-heads", file], { ...git(ctx), captureStdout: true });
          return `git bundle with ${stdout.trim().split("\n").filter(Boolean).length} refs`;
        },
        async restore(artifact, stream, target, ctx) {
          if (!target.dir) throw new UsageError("a git bundle restores into a folder: pass --to-dir DIR");
          const into = join(target.dir, artifact.name.replace(/\.bundle$/, ".git"));
          if (existsSync(into)) throw new UsageError(`${into} exists; restore into an empty folder`);
          const file = await saved(stream, ctx.workDir);
          await runProgram("git", ["clone", "--quiet", "--mirror", file, into], git(ctx));
          await runProgram("git", ["-C", into, "remote", "remove", "origin"], git(ctx));
          return `cloned into ${into}`;
        },
        restoreCommand: (artifact) => ({
          consume: `cat > restored.bundle && git clone --mirror restored.bundle ${artifact.name.replace(/\.bundle$/, ".git")}`,
        }),
      };
    },
  });
}
