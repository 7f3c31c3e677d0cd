/** The options that say which databases a database source dumps: one, a list, or all. */
import { z } from "zod";

export function databaseSelection(allMeans: string) {
  return {
    database: z.string().min(1).optional().describe("one database to back up"),
    databases: z
      .union([z.literal("all"), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe(`several databases, or "all": ${allMeans}; one artifact each`),
    exclude_databases: z
      .array(z.string())
      .default([])
      .describe("with databases: all, the databases to leave out"),
  };
}

interface Selection {
  database?: string | undefined;
  databases?: "all" | string[] | undefined;
}

/** Exactly one of database/databases, unless `others` (e.g. globals only) are asked for. */
export function checkSelection(
  o: Selection,
  ctx: z.RefinementCtx,
  others: { any: boolean; names: string },
): void {
  if (o.database !== undefined && o.databases !== undefined)
    ctx.addIssue({
      code: "custom",
      path: ["databases"],
      message: "give either database or databases, not both",
    });
  if (o.database === undefined && o.databases === undefined && !others.any)
    ctx.addIssue({
      code: "custom",
      path: ["database"],
      message: `say what to back up: database: NAME, databases: [A, B], databases: all, or ${others.names}`,
    });
}

/** The databases named in the config; undefined for `all` or none. */
export function wantedNames(o: Selection): string[] | undefined {
  if (o.database !== undefined) return [o.database];
  return Array.isArray(o.databases) ? o.databases : undefined;
}
