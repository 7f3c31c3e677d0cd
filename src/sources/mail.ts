/**
 * Mail stores (Dovecot): maildir trees archived as files with Dovecot's rebuildable caches left
 * out, or `doveadm backup` of each user into a private staging folder (a consistent copy of any
 * mailbox format: maildir, mdbox, sdbox), archived as one tar.
 */
import { chmod, chown, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { type Artifact, defineSource, type PluginContext } from "../kit/contracts.ts";
import { SourceError, UsageError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { findProgram, searchPath } from "../kit/which.ts";
import { extractTar, listTar } from "./_tar.ts";
import { filesSource } from "./files.ts";

const INSTALL_HINT = "install Dovecot (Debian/Ubuntu: apt-get install dovecot-core)";

/** Dovecot rebuilds these from the mail itself; `tmp/` holds deliveries in progress. */
export const DOVECOT_REBUILDABLE = [
  "**/dovecot.index",
  "**/dovecot.index.cache",
  "**/dovecot.index.log",
  "**/dovecot.index.log.2",
  "**/dovecot.list.index",
  "**/dovecot.list.index.log",
  "**/dovecot.list.index.log.2",
  "**/dovecot.index.tmp",
  "**/tmp/*",
];

const schema = z
  .object({
    method: z
      .enum(["maildir", "doveadm"])
      .default("maildir")
      .describe(
        "maildir: archive the maildir trees as files; doveadm: doveadm backup of each user (any mailbox format)",
      ),
    paths: z
      .array(z.string().min(1))
      .optional()
      .describe("maildir: the mail folders to archive, e.g. [/var/vmail]; relative to the config file"),
    exclude: z
      .array(z.string())
      .default([])
      .describe("maildir: more globs to leave out, besides Dovecot's caches"),
    users: z
      .union([z.literal("all"), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe('doveadm: the users to back up, or "all" (every user the userdb lists)'),
    config: z
      .string()
      .optional()
      .describe("doveadm: Dovecot's config file (doveadm -c); default Dovecot's own"),
    bin_dir: z.string().optional().describe("doveadm: folder holding doveadm"),
  })
  .superRefine((o, ctx) => {
    if (o.method === "maildir" && !o.paths)
      ctx.addIssue({
        code: "custom",
        path: ["paths"],
        message: "method maildir needs paths: [the mail folder]",
      });
    if (o.method === "doveadm" && !o.users)
      ctx.addIssue({
        code: "custom",
        path: ["users"],
        message: 'method doveadm needs users: [names] or users: "all"',
      });
  });

type Options = z.output<typeof schema>;

class Doveadm {
  private readonly options: Options;
  private readonly ctx: PluginContext;
  constructor(options: Options, ctx: PluginContext) {
    this.options = options;
    this.ctx = ctx;
  }

  async run(args: string[]): Promise<string> {
    const program = findProgram("doveadm", searchPath(this.options.bin_dir)) ?? "doveadm";
    const config = this.options.config ? ["-c", this.options.config] : [];
    const { stdout } = await runProgram(program, [...config, ...args], {
      signal: this.ctx.signal,
      logger: this.ctx.logger,
      installHint: INSTALL_HINT,
      captureStdout: true,
    });
    return stdout.trim();
  }

  async users(): Promise<string[]> {
    if (this.options.users !== "all") return this.options.users ?? [];
    const all = (await this.run(["user", "*"])).split("\n").filter(Boolean);
    if (all.length === 0) throw new SourceError("doveadm user '*' lists no users: is the userdb iterable?");
    return all;
  }

  /** The system user and group a mail user's files belong to: doveadm writes the copy as them. */
  async owner(user: string): Promise<{ uid: number; gid: number }> {
    const uid = Number(await this.run(["user", "-f", "uid", user]));
    const gid = Number(await this.run(["user", "-f", "gid", user]));
    return { uid, gid };
  }
}

/** Mail user names become folder names: refuse anything that is not one plain segment. */
function checkedUser(user: string): string {
  if (!/^[^/\0]+$/.test(user) || user === "." || user === "..")
    throw new SourceError(`mail user "${user}" cannot be a folder name`);
  return user;
}

export const mailSource = defineSource({
  type: "mail",
  tools: [{ names: ["doveadm"], purpose: "Dovecot mail backups", install: INSTALL_HINT }],
  description:
    "Dovecot mail: maildir trees without Dovecot's rebuildable caches, or doveadm backup of each user",
  schema,
  create(options, env) {
    if (options.method === "maildir") {
      const files = filesSource.create(
        {
          paths: options.paths ?? [],
          include: [],
          exclude: [...DOVECOT_REBUILDABLE, ...options.exclude],
          skip_unreadable: false,
          engine: "auto",
        },
        env,
      );
      return files;
    }

    return {
      async *backup(ctx): AsyncIterable<Artifact> {
        const doveadm = new Doveadm(options, ctx);
        const users = (await doveadm.users()).map(checkedUser);
        // doveadm writes the copy as each mail user: a staging folder they can reach, each user's
        // part private to them; the folder names are not guessable.
        const stage = await mkdtemp(join(tmpdir(), "cairn-mail-"));
        try {
          await chmod(stage, 0o711);
          for (const user of users) {
            const target = join(stage, user);
            await mkdir(target, { mode: 0o700 });
            const { uid, gid } = await doveadm.owner(user);
            if (process.getuid?.() === 0) await chown(target, uid, gid);
            await doveadm.run(["backup", "-u", user, `maildir:${join(target, "Maildir")}`]);
            ctx.logger.info("mailbox copied", { user });
          }
          const names = (await readdir(stage)).sort();
          yield {
            name: `${env.name}.tar`,
            stream: spawnOutput("tar", ["-C", stage, "-cf", "-", "--", ...names], {
              signal: ctx.signal,
              logger: ctx.logger,
              installHint: "install GNU tar",
            }),
            meta: { method: "doveadm", users },
          };
        } finally {
          await rm(stage, { recursive: true, force: true });
        }
      },
      restore(_artifact, stream, target, ctx) {
        if (!target.dir)
          throw new UsageError(
            "mail restores into a folder: pass --to-dir DIR, then doveadm import (see docs/sources/mail.md)",
          );
        return extractTar(stream, target.dir, ctx.logger);
      },
      verify: (_artifact, stream) => listTar(stream),
      restoreCommand: () => ({ prepare: "mkdir -p DIR", consume: "tar -x -p -C DIR" }),
    };
  },
});
