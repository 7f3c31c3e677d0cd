/** Snapshot ids, folder templates and manifests: the on-storage format (docs/snapshot-format.md). */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import {
  MANIFEST_FORMAT,
  MANIFEST_NAME,
  type Manifest,
  type PluginContext,
  type Storage,
} from "../kit/contracts.ts";
import { IntegrityError } from "../kit/errors.ts";
import { SAFE_NAME } from "../kit/names.ts";

/** `2026-11-23T07-45-12Z-3f9a`: sorts by time, safe in every file system and URL. */
export function newSnapshotId(now: Date = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/:/g, "-");
  return `${stamp}-${randomBytes(2).toString("hex")}`;
}

/** Oldest first, by the time a snapshot's run started (milliseconds, unlike its id). */
export const byStart = (a: { startedAt: string }, b: { startedAt: string }): number =>
  Date.parse(a.startedAt) - Date.parse(b.startedAt);

export const SNAPSHOT_ID_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z-[0-9a-f]{4}$/;

/** The time a snapshot id names. */
export function snapshotTime(id: string): Date {
  const [date, time] = id.slice(0, 20).split("T") as [string, string];
  return new Date(`${date}T${time.slice(0, 8).replace(/-/g, ":")}Z`);
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function dayOfYear(date: Date): number {
  const start = new Date(date.getFullYear(), 0, 1);
  return Math.floor((date.getTime() - start.getTime()) / 86_400_000) + 1;
}

const STRFTIME: Record<string, (d: Date) => string> = {
  Y: (d) => String(d.getFullYear()),
  y: (d) => pad(d.getFullYear() % 100),
  m: (d) => pad(d.getMonth() + 1),
  d: (d) => pad(d.getDate()),
  H: (d) => pad(d.getHours()),
  M: (d) => pad(d.getMinutes()),
  S: (d) => pad(d.getSeconds()),
  j: (d) => pad(dayOfYear(d), 3),
  a: (d) => DAYS[d.getDay()]!,
  b: (d) => MONTHS[d.getMonth()]!,
  F: (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
  "%": () => "%",
};

export interface TemplateValues {
  job: string;
  hostname?: string;
  time: Date;
}

/** Expands `{job}`, `{hostname}` and strftime fields (local time) in a destination template. */
export function expandTemplate(template: string, values: TemplateValues): string {
  const host = values.hostname ?? hostname();
  const expanded = template
    .replace(/\{(job|hostname)\}/g, (_, field: string) => (field === "job" ? values.job : host))
    .replace(/%(.)/g, (match, field: string) => STRFTIME[field]?.(values.time) ?? match);
  return normalizeFolder(expanded);
}

function normalizeFolder(path: string): string {
  return path
    .split("/")
    .filter((s) => s !== "" && s !== ".")
    .join("/");
}

/**
 * The fixed part of a template for one job: every snapshot of the job lives under it, whatever the
 * host or date, so listing it finds them all.
 */
export function listingPrefix(template: string, job: string): string {
  const cut = template.search(/\{hostname\}|%/);
  const fixed = (cut === -1 ? template : template.slice(0, cut)).replace(/\{job\}/g, job);
  const folder = cut === -1 ? fixed : fixed.slice(0, fixed.lastIndexOf("/") + 1);
  const normalized = normalizeFolder(folder);
  return normalized ? `${normalized}/` : "";
}

/** What each strftime field of a template can expand to (for recognising a job's folders). */
const STRFTIME_PATTERN: Record<string, string> = {
  Y: "\\d{4}",
  y: "\\d{2}",
  m: "\\d{2}",
  d: "\\d{2}",
  H: "\\d{2}",
  M: "\\d{2}",
  S: "\\d{2}",
  j: "\\d{3}",
  a: DAYS.join("|"),
  b: MONTHS.join("|"),
  F: "\\d{4}-\\d{2}-\\d{2}",
  "%": "%",
};

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The folders a template can give `job`'s snapshots, as a pattern of whole folder keys (snapshot
 * id included): `{job}` is the job's name itself, `{hostname}` any one folder-name piece. A key
 * that does not match is not the job's, whatever prefix it shares.
 */
export function snapshotFolderPattern(template: string, job: string): RegExp {
  const parent = normalizeFolder(template)
    .split(/(\{job\}|\{hostname\}|%.)/)
    .map((piece) => {
      if (piece === "{job}") return escapeRegExp(job);
      if (piece === "{hostname}") return "[^/]+";
      if (piece.length === 2 && piece.startsWith("%"))
        return `(?:${STRFTIME_PATTERN[piece[1]!] ?? escapeRegExp(piece)})`;
      return escapeRegExp(piece);
    })
    .join("");
  const id = SNAPSHOT_ID_PATTERN.source.slice(1, -1);
  return new RegExp(`^${parent ? `${parent}/` : ""}${id}$`);
}

export function snapshotFolder(template: string, job: string, id: string, time: Date): string {
  const parent = expandTemplate(template, { job, time });
  return parent ? `${parent}/${id}` : id;
}

export function parseManifest(text: string, where: string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new IntegrityError(`${where} is not valid JSON`);
  }
  const manifest = value as Partial<Manifest>;
  if (manifest.format !== MANIFEST_FORMAT)
    throw new IntegrityError(
      `${where} is not a ${MANIFEST_FORMAT} manifest (format: ${String(manifest.format)})`,
    );
  if (
    typeof manifest.job !== "string" ||
    typeof manifest.id !== "string" ||
    !Array.isArray(manifest.artifacts)
  )
    throw new IntegrityError(`${where} lacks job, id or artifacts`);
  return manifest as Manifest;
}

export async function readText(
  storage: Storage,
  key: string,
  ctx: PluginContext,
  limit = 16 * 1024 * 1024,
): Promise<string> {
  const stream = await storage.get(key, ctx);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new IntegrityError(`${key} is larger than ${limit} bytes: not a manifest`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export interface SnapshotRef {
  job: string;
  id: string;
  destination: string;
  /** Key of the snapshot folder on the destination (no trailing slash). */
  folder: string;
  manifest: Manifest;
  /** The manifest exactly as stored: what a signature covers. */
  text: string;
  /** When the destination stored the manifest, by its own clock, where it says. */
  stored?: Date;
}

export interface UnreadableManifest {
  destination: string;
  key: string;
  error: string;
}

/** A snapshot folder with objects but no manifest: a run that died, or one running now. */
export interface UnfinishedFolder {
  folder: string;
  /** The newest object time in it, by the destination's clock, where it says. */
  newest?: Date;
}

/**
 * Every snapshot of a job on one destination (a snapshot is good when its manifest is), and the
 * job's folders without a manifest (only those the job's template can make: a prefix shared with
 * another job proves nothing).
 */
export async function listSnapshots(
  storage: Storage,
  destination: string,
  template: string,
  job: string,
  ctx: PluginContext,
): Promise<{ snapshots: SnapshotRef[]; unreadable: UnreadableManifest[]; unfinished: UnfinishedFolder[] }> {
  const snapshots: SnapshotRef[] = [];
  const unreadable: UnreadableManifest[] = [];
  const suffix = `/${MANIFEST_NAME}`;
  const own = snapshotFolderPattern(template, job);
  /** The job's snapshot folders seen in the listing: whether each holds a manifest, its newest object. */
  const folders = new Map<string, { manifest: boolean; newest?: Date }>();
  for await (const object of storage.list(listingPrefix(template, job), ctx)) {
    const folder = object.key.slice(0, object.key.lastIndexOf("/"));
    if (!SNAPSHOT_ID_PATTERN.test(folder.slice(folder.lastIndexOf("/") + 1))) continue;
    const seen = folders.get(folder) ?? { manifest: false };
    if (object.modified && (!seen.newest || object.modified > seen.newest)) seen.newest = object.modified;
    folders.set(folder, seen);
    if (object.key !== `${folder}${suffix}`) continue;
    seen.manifest = true;
    const id = folder.slice(folder.lastIndexOf("/") + 1);
    try {
      const text = await readText(storage, object.key, ctx);
      const manifest = parseManifest(text, `${storage.location}/${object.key}`);
      if (manifest.job !== job) continue;
      if (manifest.id !== id)
        throw new IntegrityError(`manifest names snapshot ${manifest.id} but lies in folder ${id}`);
      snapshots.push({
        job,
        id,
        destination,
        folder,
        manifest,
        text,
        ...(object.modified ? { stored: object.modified } : {}),
      });
    } catch (error) {
      unreadable.push({ destination, key: object.key, error: (error as Error).message });
    }
  }
  // By start time: two snapshots of one second have ids that differ only in a random suffix.
  snapshots.sort((a, b) => byStart(a.manifest, b.manifest) || a.id.localeCompare(b.id));
  // A folder without a manifest cannot say whose it is: only one the job's template makes is its.
  const unfinished = [...folders]
    .filter(([folder, seen]) => !seen.manifest && own.test(folder))
    .map(([folder, seen]) => ({ folder, ...(seen.newest ? { newest: seen.newest } : {}) }));
  return { snapshots, unreadable, unfinished };
}

export function checkArtifactName(name: string, taken: Iterable<string>): string | undefined {
  if (!SAFE_NAME.test(name) || name.length > 200)
    return `artifact name "${name}" is not a plain file name (letters, digits, _ . + -)`;
  for (const other of taken) if (other === name) return `two artifacts are named "${name}"`;
  return undefined;
}
