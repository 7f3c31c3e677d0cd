import { existsSync } from "node:fs";
import { mkdir, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { z } from "zod";
import { type Artifact, defineSource, type PluginContext, type Source } from "../kit/contracts.ts";
import { SourceError, UsageError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { findProgram } from "../kit/which.ts";
import { extractTar, restoreFile } from "./_tar.ts";
import { filesSource } from "./files.ts";

const argv = z
  .union([
    z
      .string()
      .min(1)
      .transform((program) => [program]),
    z.array(z.string()).min(1),
  ])
  .describe("program and its arguments, as a list (no shell: write [sh, -c, '…'] for one)");

const schema = z.object({
  command: argv,
  output: z
    .enum(["stdout", "dir"])
    .default("stdout")
    .describe(
      "stdout: the program's output is the artifact; dir: every file it writes into $CAIRN_OUTPUT_DIR",
    ),
  extension: z
    .string()
    .regex(/^[A-Za-z0-9.]+$/)
    .default("out")
    .describe("file extension of a stdout artifact"),
  env: z.record(z.string(), z.string()).default({}).describe("extra environment variables"),
  secret_env: z
    .record(z.string(), z.string())
    .default({})
    .describe("extra environment variables whose values are secrets"),
  cwd: z.string().optional().describe("working folder; relative to the config file"),
  allow_empty: z.boolean().default(false).describe("an empty output is a failure unless this is true"),
  restore: argv
    .optional()
    .describe("program that restores: reads the artifact on stdin, or $CAIRN_INPUT_DIR in dir mode"),
});

type Options = z.output<typeof schema>;

function environment(options: Options, extra: Record<string, string>): Record<string, string> {
  return { ...options.env, ...options.secret_env, ...extra };
}

async function runRestore(
  options: Options,
  baseDir: string,
  ctx: PluginContext,
  extra: Record<string, string>,
  stdin?: Readable,
) {
  const [program, ...args] = options.restore!;
  await runProgram(program!, args, {
    signal: ctx.signal,
    logger: ctx.logger,
    env: environment(options, extra),
    ...(stdin ? { stdin } : {}),
    ...(options.cwd ? { cwd: resolve(baseDir, options.cwd) } : {}),
  });
}

/**
 * Any program, in any language, as a source: its stdout is the artifact, or every file it leaves in
 * `$CAIRN_OUTPUT_DIR` (archived as tar). A non-zero exit fails the source.
 */
export const commandSource = defineSource({
  type: "command",
  description: "Any program as a source: its stdout, or the files it writes into $CAIRN_OUTPUT_DIR",
  schema,
  secrets: ["secret_env"],
  create(options, env): Source {
    const [program, ...args] = options.command;
    const cwd = options.cwd ? resolve(env.baseDir, options.cwd) : undefined;
    const exec = (ctx: PluginContext, extra: Record<string, string>) => ({
      signal: ctx.signal,
      logger: ctx.logger,
      env: environment(options, { CAIRN_SOURCE: env.name, ...extra }),
      ...(cwd ? { cwd } : {}),
      processGroup: true,
    });
    return {
      async check() {
        const found = program!.includes("/") ? program : findProgram(program!);
        if (!found || (program!.includes("/") && !existsSync(resolve(cwd ?? env.baseDir, program!))))
          throw new SourceError(
            `the program ${program} is not found${program!.includes("/") ? "" : " on PATH"}`,
            {
              hint: "install it, or write its absolute path in command",
            },
          );
        return `${found} (not run: a check must not make a backup)`;
      },

      async *backup(ctx): AsyncIterable<Artifact> {
        if (options.output === "stdout") {
          yield {
            name: `${env.name}.${options.extension}`,
            stream: spawnOutput(program!, args, exec(ctx, {})),
            meta: { command: program, output: "stdout" },
            allowEmpty: options.allow_empty,
          };
          return;
        }
        const outputDir = join(ctx.workDir, env.name);
        await mkdir(outputDir, { mode: 0o700 });
        await runProgram(program!, args, exec(ctx, { CAIRN_OUTPUT_DIR: outputDir }));
        if ((await readdir(outputDir)).length === 0 && !options.allow_empty)
          throw new SourceError(`${program} wrote nothing into $CAIRN_OUTPUT_DIR`, {
            hint: "set allow_empty: true if that is expected",
          });
        const archive = filesSource.create(
          { paths: [outputDir], include: [], exclude: [], skip_unreadable: false, engine: "auto" },
          { name: env.name, baseDir: ctx.workDir },
        );
        for await (const artifact of archive.backup(ctx)) {
          yield { ...artifact, meta: { command: program, output: "dir" }, allowEmpty: true };
        }
        await rm(outputDir, { recursive: true, force: true });
      },

      async restore(artifact, stream, target, ctx) {
        if (options.output === "dir") {
          if (options.restore) {
            const input = join(ctx.workDir, "input");
            await extractTar(stream, input, ctx.logger);
            await runRestore(options, env.baseDir, ctx, { CAIRN_INPUT_DIR: join(input, env.name) });
            return `restored by ${options.restore[0]} from the files it wrote`;
          }
          if (!target.dir)
            throw new UsageError("this source has no restore command: pass --to-dir DIR to get its files");
          return extractTar(stream, target.dir, ctx.logger);
        }
        if (options.restore) {
          await runRestore(options, env.baseDir, ctx, {}, stream);
          return `restored by ${options.restore[0]}`;
        }
        if (!target.dir)
          throw new UsageError("this source has no restore command: pass --to-dir DIR to get its output");
        return `wrote ${await restoreFile(stream, target.dir, artifact.name)}`;
      },

      restoreCommand: (artifact) =>
        options.restore
          ? { consume: options.restore.join(" ") }
          : artifact.meta.output === "dir"
            ? { prepare: "mkdir -p DIR", consume: "tar -x -p -C DIR" }
            : { consume: `cat > ${artifact.name}` },
    };
  },
});
