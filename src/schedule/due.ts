/** Which destinations of a job are due for a snapshot now, read from the destinations themselves. */
import type { Destination } from "../engine/context.ts";
import { listingPrefix, parseManifest, readText, SNAPSHOT_ID_PATTERN } from "../engine/snapshot.ts";
import { MANIFEST_NAME, type PluginContext } from "../kit/contracts.ts";
import { isDue } from "./frequency.ts";

/**
 * The start time of the newest complete snapshot of `job` on a destination: manifests are read
 * newest first until a complete one is found, so an hourly cron does not read every manifest.
 */
export async function newestGood(
  destination: Destination,
  job: string,
  ctx: PluginContext,
): Promise<Date | undefined> {
  const suffix = `/${MANIFEST_NAME}`;
  const keys: string[] = [];
  for await (const object of destination.storage.list(listingPrefix(destination.template, job), ctx)) {
    if (!object.key.endsWith(suffix)) continue;
    const folder = object.key.slice(0, -suffix.length);
    if (SNAPSHOT_ID_PATTERN.test(folder.slice(folder.lastIndexOf("/") + 1))) keys.push(object.key);
  }
  const byId = (key: string) => key.slice(0, -suffix.length).split("/").pop() ?? "";
  keys.sort((a, b) => byId(b).localeCompare(byId(a)));
  for (const key of keys) {
    try {
      const manifest = parseManifest(await readText(destination.storage, key, ctx), key);
      if (manifest.job === job && (manifest.status ?? "complete") === "complete")
        return new Date(manifest.startedAt);
    } catch {
      // An unreadable manifest is not a good snapshot: look further back.
    }
  }
  return undefined;
}

export interface DueCheck {
  destination: string;
  due: boolean;
  reason: string;
}

/** One check per destination; a destination without a frequency is always due. */
export async function dueDestinations(
  destinations: Destination[],
  job: string,
  now: Date,
  ctx: PluginContext,
): Promise<DueCheck[]> {
  return Promise.all(
    destinations.map(async (d) => {
      if (!d.frequency) return { destination: d.name, due: true, reason: "no frequency: every run" };
      const { due, reason } = isDue(d.frequency, await newestGood(d, job, ctx), now);
      return { destination: d.name, due, reason };
    }),
  );
}
