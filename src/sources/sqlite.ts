import { createReadStream, createWriteStream } from "node:fs";
import { access, rm, stat } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { z } from "zod";
import { type Artifact, defineSource } from "../kit/contracts.ts";
import { RestoreError, SourceError, UsageError } from "../kit/errors.ts";
import { restoreFile } from "./_tar.ts";

const schema = z.object({
  path: z.string().min(1).describe("the database file; relative paths are relative to the config file"),
});

/**
 * SQLite's online backup API copies a live database page by page into a consistent snapshot, even
 * while other processes write. That copy needs a file: it is made in cairn's private work folder
 * and streamed from there.
 */
export const sqliteSource = defineSource({
  type: "sqlite",
  description: "A live SQLite database, copied consistently with SQLite's online backup API",
  schema,
  create(options, env) {
    const path = resolve(env.baseDir, options.path);
    const fileName = basename(path);
    return {
      async check() {
        const { DatabaseSync } = await import("node:sqlite");
        try {
          const db = new DatabaseSync(path, { readOnly: true });
          try {
            const tables = db
              .prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'")
              .get() as { n: number };
            return `SQLite ${path}: ${tables.n} table(s)`;
          } finally {
            db.close();
          }
        } catch (error) {
          throw new SourceError(`SQLite database ${path} cannot be opened: ${(error as Error).message}`);
        }
      },

      async *backup(ctx): AsyncIterable<Artifact> {
        try {
          await access(path);
        } catch {
          throw new SourceError(`SQLite database ${path} does not exist or cannot be read`);
        }
        const { DatabaseSync, backup } = await import("node:sqlite");
        const copy = join(ctx.workDir, `${env.name}.sqlite`);
        let pages: number;
        try {
          const db = new DatabaseSync(path, { readOnly: true });
          try {
            // All pages in one step: a stepwise backup restarts whenever another connection writes,
            // and never ends on a busy database; one step reads a single consistent snapshot.
            pages = await backup(db, copy, { rate: 2 ** 31 - 1 });
          } finally {
            db.close();
          }
        } catch (error) {
          throw new SourceError(`cannot copy SQLite database ${path}: ${(error as Error).message}`, {
            cause: error,
          });
        }
        const { size } = await stat(copy);
        yield {
          name: `${env.name}.sqlite`,
          stream: createReadStream(copy),
          meta: { file: fileName, pages, size },
        };
        await rm(copy, { force: true });
      },

      async restore(_artifact, stream, target) {
        if (!target.dir) throw new UsageError("an SQLite backup restores into a folder: pass --to-dir DIR");
        return `restored ${await restoreFile(stream, target.dir, fileName, checkIntegrity)}`;
      },

      async verify(_artifact, stream, ctx) {
        const copy = join(ctx.workDir, "verify.sqlite");
        await pipeline(stream, createWriteStream(copy, { flags: "wx", mode: 0o600 }));
        return checkIntegrity(copy);
      },

      restoreCommand: () => ({ consume: `cat > ${fileName}` }),
    };
  },
});

async function checkIntegrity(file: string): Promise<string> {
  const { DatabaseSync } = await import("node:sqlite");
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare("PRAGMA integrity_check").all() as { integrity_check: string }[];
    const result = rows.map((r) => r.integrity_check).join("; ");
    if (result !== "ok") throw new RestoreError(`SQLite integrity check failed: ${result}`);
    const tables = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table'").get() as {
      n: number;
    };
    return `SQLite integrity_check ok, ${tables.n} tables`;
  } finally {
    db.close();
  }
}
