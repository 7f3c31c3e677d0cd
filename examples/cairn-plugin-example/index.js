// @ts-check
// The plugin in the function form: cairn calls it with its plugin kit (@cairn-backup/cairn/plugin),
// so nothing of cairn is imported at run time. The same package works with cairn from npm and
// with the single executable, and its schemas are made by cairn's own zod.
import { gitBundleSource } from "./gitbundle.js";
import { jsonLinesNotifier } from "./jsonlines.js";
import { objStoreDestination } from "./objstore.js";

/** @param {typeof import("@cairn-backup/cairn/plugin")} cairn */
export default function plugin(cairn) {
  /** @type {Record<string, unknown>} */
  let options = {};
  return cairn.definePlugin({
    apiVersion: 1,
    plugins: [gitBundleSource(cairn), objStoreDestination(cairn), jsonLinesNotifier(cairn)],
    // Optional life cycle: the raw `options` of this plugin's entry in the config's `plugins:`,
    // cairn's logger, and the events of every action with its session id.
    activate(ctx) {
      options = ctx.options;
      if (options.announce)
        ctx.events.on("on_backup", ({ job, session, result }) =>
          ctx.logger.info(`example plugin: ${job} ${result.ok ? "backed up" : "failed"}`, { session }),
        );
    },
  });
}
