/**
 * Dry run as a wrapper around any Storage: reads go to the destination, writes do not. A put reads
 * its body to the end (so the whole backup runs and its size is known) and stores nothing.
 */
import type { Storage } from "../kit/contracts.ts";
import { wrap } from "./wrap.ts";

export function withDryRun(storage: Storage): Storage {
  return wrap(storage, {
    async put(key, body, ctx) {
      let size = 0;
      for await (const chunk of body) size += (chunk as Buffer).length;
      const info = { key, size, modified: new Date() };
      ctx.logger.info(`dry run: would store ${key}`, { destination: storage.location, size });
      return info;
    },
    async delete(key, ctx) {
      ctx.logger.info(`dry run: would delete ${key}`, { destination: storage.location });
    },
  });
}
