/**
 * The catalog: history of runs and snapshots in an embedded SQLite file, for fast queries. It is a
 * cache of what the destinations hold: `cairn catalog rebuild` recreates it from the manifests.
 */
import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";
import type { SnapshotRef } from "../engine/snapshot.ts";

/** `partial`: some sources failed, the others were stored as a snapshot marked partial. */
export type RunStatus = "running" | "success" | "partial" | "failed" | "interrupted" | "skipped";

export interface RunRow {
  id: number;
  job: string;
  snapshot: string;
  status: RunStatus;
  started_at: string;
  finished_at: string | null;
  error: string | null;
  raw_bytes: number | null;
  stored_bytes: number | null;
  host: string;
  pid: number;
}

export interface SnapshotRow {
  job: string;
  id: string;
  destination: string;
  folder: string;
  created_at: string;
  raw_bytes: number;
  stored_bytes: number;
  artifacts: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id INTEGER PRIMARY KEY,
  job TEXT NOT NULL,
  snapshot TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  error TEXT,
  raw_bytes INTEGER,
  stored_bytes INTEGER,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_job ON runs (job, started_at);
CREATE TABLE IF NOT EXISTS snapshots (
  job TEXT NOT NULL,
  id TEXT NOT NULL,
  destination TEXT NOT NULL,
  folder TEXT NOT NULL,
  created_at TEXT NOT NULL,
  raw_bytes INTEGER NOT NULL,
  stored_bytes INTEGER NOT NULL,
  artifacts INTEGER NOT NULL,
  manifest TEXT NOT NULL,
  PRIMARY KEY (job, id, destination)
);
`;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class Catalog {
  private readonly db: DatabaseSync;
  readonly path: string;

  private constructor(db: DatabaseSync, path: string) {
    this.db = db;
    this.path = path;
  }

  static async open(stateDir: string): Promise<Catalog> {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const { DatabaseSync } = await import("node:sqlite");
    const path = join(stateDir, "catalog.db");
    const db = new DatabaseSync(path);
    db.exec("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;");
    db.exec(SCHEMA);
    const catalog = new Catalog(db, path);
    catalog.markInterrupted();
    return catalog;
  }

  /** Runs left "running" by a process that no longer exists (killed, crashed) become "interrupted". */
  private markInterrupted(): void {
    const host = hostname();
    const rows = this.db
      .prepare("SELECT id, pid FROM runs WHERE status = 'running' AND host = ?")
      .all(host) as {
      id: number;
      pid: number;
    }[];
    const update = this.db.prepare(
      "UPDATE runs SET status = 'interrupted', error = 'the cairn process ended before the run finished' WHERE id = ?",
    );
    for (const row of rows) if (!isAlive(row.pid)) update.run(row.id);
  }

  startRun(job: string, snapshot: string, startedAt: Date): number {
    const result = this.db
      .prepare(
        "INSERT INTO runs (job, snapshot, status, started_at, host, pid) VALUES (?, ?, 'running', ?, ?, ?)",
      )
      .run(job, snapshot, startedAt.toISOString(), hostname(), process.pid);
    return Number(result.lastInsertRowid);
  }

  finishRun(
    runId: number,
    outcome: {
      status: "success" | "partial" | "failed" | "skipped";
      error?: string;
      rawBytes?: number;
      storedBytes?: number;
    },
  ): void {
    this.db
      .prepare(
        "UPDATE runs SET status = ?, finished_at = ?, error = ?, raw_bytes = ?, stored_bytes = ? WHERE id = ?",
      )
      .run(
        outcome.status,
        new Date().toISOString(),
        outcome.error ?? null,
        outcome.rawBytes ?? null,
        outcome.storedBytes ?? null,
        runId,
      );
  }

  recordSnapshot(ref: SnapshotRef): void {
    const artifacts = ref.manifest.artifacts;
    const stored = artifacts.reduce((sum, a) => sum + a.objects.reduce((s, o) => s + o.size, 0), 0);
    const raw = artifacts.reduce((sum, a) => sum + a.rawSize, 0);
    this.db
      .prepare(
        `INSERT OR REPLACE INTO snapshots (job, id, destination, folder, created_at, raw_bytes, stored_bytes, artifacts, manifest)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        ref.job,
        ref.id,
        ref.destination,
        ref.folder,
        ref.manifest.startedAt,
        raw,
        stored,
        artifacts.length,
        JSON.stringify(ref.manifest),
      );
  }

  /** Replaces what the catalog knows of a job's snapshots with what the destinations hold. */
  replaceSnapshots(job: string, refs: SnapshotRef[]): void {
    this.db.exec("BEGIN");
    try {
      this.db.prepare("DELETE FROM snapshots WHERE job = ?").run(job);
      for (const ref of refs) this.recordSnapshot(ref);
      this.db.exec("COMMIT");
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  /** Each artifact's raw size in the job's newest recorded snapshot (any destination). */
  lastArtifactSizes(job: string): { snapshot: string; sizes: Map<string, number> } | undefined {
    const row = this.db
      .prepare("SELECT id, manifest FROM snapshots WHERE job = ? ORDER BY id DESC LIMIT 1")
      .get(job) as { id: string; manifest: string } | undefined;
    if (!row) return undefined;
    const manifest = JSON.parse(row.manifest) as SnapshotRef["manifest"];
    return { snapshot: row.id, sizes: new Map(manifest.artifacts.map((a) => [a.name, a.rawSize])) };
  }

  runs(job?: string, limit = 50): RunRow[] {
    const sql = `SELECT * FROM runs ${job ? "WHERE job = ?" : ""} ORDER BY started_at DESC, id DESC LIMIT ?`;
    const params = job ? [job, limit] : [limit];
    return this.db.prepare(sql).all(...params) as unknown as RunRow[];
  }

  snapshots(job?: string): SnapshotRow[] {
    const sql = `SELECT job, id, destination, folder, created_at, raw_bytes, stored_bytes, artifacts FROM snapshots
                 ${job ? "WHERE job = ?" : ""} ORDER BY job, id`;
    return this.db.prepare(sql).all(...(job ? [job] : [])) as unknown as SnapshotRow[];
  }

  close(): void {
    this.db.close();
  }
}
