/**
 * `@cairn-backup/cairn/plugin`: the public plugin API (version PLUGIN_API_VERSION). The kit the
 * built-ins are made of, and the plugin module contract. A plugin in the function form receives
 * this module, so it needs no import of cairn at run time:
 *
 *   import type * as Cairn from "@cairn-backup/cairn/plugin";
 *   export default (cairn: typeof Cairn) => cairn.definePlugin({ apiVersion: 1, plugins: [...] });
 */
export type { EventHandler, EventMap, EventName, SessionFacts } from "./events/events.ts";
export * from "./kit/index.ts";
export {
  definePlugin,
  PLUGIN_API_VERSION,
  type PluginActivation,
  type PluginExport,
  type PluginModule,
} from "./plugins/module.ts";
