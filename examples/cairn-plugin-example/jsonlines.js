// @ts-check
// A notifier: every event it is sent (`on:` in the config says which: start, success, failure)
// appended to a file as one line of JSON, for a log shipper or a script to pick up.
import { appendFile } from "node:fs/promises";
import { resolve } from "node:path";

/** @param {typeof import("@cairn-backup/cairn/plugin")} cairn */
export function jsonLinesNotifier(cairn) {
  const { z, defineNotifier } = cairn;
  return defineNotifier({
    type: "jsonlines",
    description: "each run's events appended to a file as JSON lines",
    schema: z.object({ file: z.string().min(1).describe("the file to append to (created 0600)") }),
    create(options, env) {
      const file = resolve(env.baseDir, options.file);
      return {
        async send(event) {
          await appendFile(file, `${JSON.stringify({ notifier: env.name, ...event })}\n`, { mode: 0o600 });
        },
      };
    },
  });
}
