/**
 * OpenLDAP: `ldapsearch` over the network (any LDAP server) or `slapcat` on the server itself,
 * both to LDIF; restore with `ldapadd` (all-or-nothing: the subtree is removed again if the load
 * fails) or `slapadd` (into a stopped slapd).
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform, type TransformCallback } from "node:stream";
import { z } from "zod";
import { type Artifact, defineSource, type PluginContext } from "../kit/contracts.ts";
import { RestoreError, SourceError } from "../kit/errors.ts";
import { runProgram, spawnOutput } from "../kit/exec.ts";
import { through } from "../kit/streams.ts";
import { findProgram, searchPath } from "../kit/which.ts";
import { restoreFile } from "./_tar.ts";

const INSTALL_HINT =
  "install the OpenLDAP tools (Debian/Ubuntu: apt-get install ldap-utils; slapcat/slapadd: slapd)";
const NO_SUCH_OBJECT = 32;

const schema = z
  .object({
    mode: z
      .enum(["ldapsearch", "slapcat"])
      .default("ldapsearch")
      .describe("ldapsearch: over the network, user attributes; slapcat: on the server itself, everything"),
    base: z.string().min(1).describe("the subtree to back up and restore, e.g. dc=example,dc=com"),
    uri: z
      .string()
      .default("ldapi:///")
      .describe("ldapsearch/ldapadd: server URI, e.g. ldaps://ldap.example.com or ldap://127.0.0.1:389"),
    bind_dn: z.string().optional().describe("DN to bind as (simple bind); default: SASL EXTERNAL over ldapi"),
    password: z.string().optional().describe("bind password, handed over in a 0600 file (-y), never argv"),
    starttls: z.boolean().default(false).describe("ldap:// with StartTLS required (-ZZ)"),
    config_dir: z.string().default("/etc/ldap/slapd.d").describe("slapcat/slapadd: slapd's cn=config folder"),
    bin_dir: z.string().optional().describe("folder holding the ldap*/slap* programs"),
  })
  .superRefine((o, ctx) => {
    if (o.password !== undefined && o.bind_dn === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["bind_dn"],
        message: "a password needs a bind_dn to go with it",
      });
  });

type Options = z.output<typeof schema>;

/** Counts LDIF entries and fails at the end when there are none: an empty directory dump is no backup. */
class EntryCounter extends Transform {
  private static readonly DN = Buffer.from("\ndn:");
  entries = 0;
  /** The last bytes of the previous chunk; a newline at first, so the first line counts. */
  private carry = Buffer.from("\n");
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const dn = EntryCounter.DN;
    // Matches that start in the previous chunk, then those wholly inside this one.
    this.entries += count(Buffer.concat([this.carry, chunk.subarray(0, dn.length - 1)]), dn);
    this.entries += count(chunk, dn);
    this.carry = Buffer.from(chunk.subarray(Math.max(0, chunk.length - (dn.length - 1))));
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    callback(this.entries === 0 ? new SourceError("the LDIF holds no entries") : null);
  }
}

function count(haystack: Buffer, needle: Buffer): number {
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) n++;
  return n;
}

class Ldap {
  private readonly options: Options;
  private readonly ctx: PluginContext;
  constructor(options: Options, ctx: PluginContext) {
    this.options = options;
    this.ctx = ctx;
  }

  program(name: string): string {
    return findProgram(name, searchPath(this.options.bin_dir)) ?? name;
  }

  exec() {
    return { signal: this.ctx.signal, logger: this.ctx.logger, installHint: INSTALL_HINT };
  }

  /** Connection and bind arguments of the ldap* clients; the password goes into a 0600 file. */
  async clientArgs(): Promise<string[]> {
    const o = this.options;
    const args = ["-H", o.uri];
    if (o.starttls) args.push("-ZZ");
    if (o.bind_dn === undefined) return [...args, "-Y", "EXTERNAL", "-Q"];
    args.push("-x", "-D", o.bind_dn);
    if (o.password !== undefined) {
      const file = join(this.ctx.workDir, "ldap-password");
      // ldap* -y sends the file's bytes as they are: no trailing newline.
      await writeFile(file, o.password, { mode: 0o600 });
      args.push("-y", file);
    }
    return args;
  }

  /** Whether the base entry exists on the server (ldapsearch exits 32 when it does not). */
  async baseExists(): Promise<boolean> {
    try {
      await runProgram(
        this.program("ldapsearch"),
        [...(await this.clientArgs()), "-LLL", "-s", "base", "-b", this.options.base, "1.1"],
        { ...this.exec(), captureStdout: true },
      );
      return true;
    } catch (error) {
      if (error instanceof SourceError && error.exitCode === NO_SUCH_OBJECT) return false;
      throw error;
    }
  }
}

export const ldapSource = defineSource({
  type: "ldap",
  tools: [
    {
      names: ["ldapsearch", "slapcat"],
      purpose: "LDAP exports",
      install: INSTALL_HINT,
      versionArgs: ["-VV"],
    },
  ],
  description: "An LDAP subtree as LDIF: ldapsearch over the network, or slapcat on the OpenLDAP server",
  schema,
  secrets: ["password"],
  create(options, env) {
    return {
      async check(ctx) {
        const ldap = new Ldap(options, ctx);
        if (options.mode === "slapcat") {
          if (!findProgram("slapcat", searchPath(options.bin_dir)))
            throw new SourceError("slapcat is not installed", { hint: INSTALL_HINT });
          if (!existsSync(options.config_dir))
            throw new SourceError(`slapd's config folder ${options.config_dir} does not exist`, {
              hint: "slapcat runs on the OpenLDAP server itself; set config_dir, or use mode: ldapsearch",
            });
          return `slapcat on this host, config ${options.config_dir}`;
        }
        if (!(await ldap.baseExists()))
          throw new SourceError(`the base entry ${options.base} does not exist on ${options.uri}`, {
            hint: "check base: it must be an entry the bind DN can read",
          });
        return `${options.uri}: ${options.base} readable`;
      },

      async *backup(ctx): AsyncIterable<Artifact> {
        const ldap = new Ldap(options, ctx);
        const counter = new EntryCounter();
        const meta: Record<string, unknown> = { base: options.base, mode: options.mode };
        const stream =
          options.mode === "slapcat"
            ? spawnOutput(
                ldap.program("slapcat"),
                ["-F", options.config_dir, "-b", options.base, "-o", "ldif_wrap=no"],
                ldap.exec(),
              )
            : spawnOutput(
                ldap.program("ldapsearch"),
                [
                  ...(await ldap.clientArgs()),
                  "-LLL",
                  "-o",
                  "ldif-wrap=no",
                  // Paged: a server's size limit must not cut the result short (it would exit 4 anyway).
                  "-E",
                  "pr=500/noprompt",
                  "-b",
                  options.base,
                  "-s",
                  "sub",
                  "(objectClass=*)",
                  "*",
                ],
                ldap.exec(),
              );
        yield { name: `${env.name}.ldif`, stream: through(stream, counter), meta };
        meta.entries = counter.entries;
      },

      async restore(_artifact, stream, target, ctx) {
        const ldap = new Ldap(options, ctx);
        const checked = through(stream, new EntryCounter());
        if (target.dir) return `wrote ${await restoreFile(checked, target.dir, `${env.name}.ldif`)}`;
        if (options.mode === "slapcat") {
          // slapadd writes the database files: the suffix must be empty, and slapd should be stopped.
          const { stdout } = await runProgram(
            ldap.program("slapcat"),
            ["-F", options.config_dir, "-b", options.base],
            { ...ldap.exec(), captureStdout: true },
          );
          if (stdout.trim())
            throw new RestoreError(`the database of ${options.base} is not empty`, {
              hint: "slapadd loads only into an empty database: restore on a fresh server, or --to-dir DIR for the LDIF",
            });
          await runProgram(ldap.program("slapadd"), ["-F", options.config_dir, "-b", options.base], {
            ...ldap.exec(),
            stdin: checked,
          });
          return `slapadd loaded ${options.base}; start slapd (and check file ownership: chown -R openldap: the database folder)`;
        }
        if (await ldap.baseExists())
          throw new RestoreError(`${options.base} already exists on ${options.uri}`, {
            hint: "cairn restores into an empty subtree only: point uri at a fresh server, or --to-dir DIR for the LDIF",
          });
        try {
          await runProgram(ldap.program("ldapadd"), await ldap.clientArgs(), {
            ...ldap.exec(),
            stdin: checked,
          });
        } catch (error) {
          // LDAP has no transactions here: take away what was added, so nothing half-restored stays.
          // (Only when something was added: slapd 2.5 crashes deleting a suffix entry that is absent.)
          try {
            if (await ldap.baseExists())
              await runProgram(
                ldap.program("ldapdelete"),
                [...(await ldap.clientArgs()), "-r", options.base],
                ldap.exec(),
              );
          } catch (cleanupError) {
            ctx.logger.warn("could not remove the partly restored subtree", {
              base: options.base,
              error: cleanupError,
            });
          }
          throw error;
        }
        return `restored ${options.base} on ${options.uri}`;
      },

      async verify(_artifact, stream) {
        const counter = new EntryCounter();
        for await (const _ of through(stream, counter)) {
        }
        return `LDIF with ${counter.entries} entries`;
      },

      restoreCommand: () =>
        options.mode === "slapcat"
          ? { consume: `slapadd -F ${options.config_dir} -b '${options.base}'` }
          : { consume: `ldapadd -H ${options.uri} -x -D BIND_DN -W` },
    };
  },
});
