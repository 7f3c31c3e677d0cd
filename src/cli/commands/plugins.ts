import { existsSync } from "node:fs";
import type { Command } from "commander";
import type { OptionInfo } from "../../plugins/describe.ts";
import { type CliContext, examples, type GlobalOptions, globalsOf, printJson, table } from "../_shared.ts";

const optionLine = (o: OptionInfo) =>
  `    ${o.name}${o.required ? " (required)" : ""}: ${o.type}${o.default !== undefined ? `, default ${JSON.stringify(o.default)}` : ""}${o.secret ? ", secret" : ""}${o.description ? ` — ${o.description}` : ""}`;

/** The config's plugins when there is a config; else the built-ins and $CAIRN_PLUGINS. */
async function registryFor(globals: GlobalOptions, cli: CliContext) {
  const [{ DEFAULT_NAMES, registryWith }, { loadPlugins, pluginSpecs }] = await Promise.all([
    import("../../config/load.ts"),
    import("../../plugins/load.ts"),
  ]);
  if (globals.config || process.env.CAIRN_CONFIG || DEFAULT_NAMES.some((name) => existsSync(name))) {
    const { configOf } = await import("../_runtime.ts");
    return (await configOf(globals, cli)).registry;
  }
  return registryWith(await loadPlugins(pluginSpecs([], process.env), process.cwd()));
}

export function register(program: Command, cli: CliContext): void {
  program
    .command("plugins")
    .description(
      "list every source, destination, transform and notifier, and where it came from; with -v, each one's options (type, default, secret, description)",
    )
    .option("--json", "print JSON on stdout")
    .addHelpText(
      "after",
      examples(["cairn plugins", "cairn plugins -v", "cairn -c /etc/cairn/cairn.yaml plugins --json"]),
    )
    .action(async (flags: { json?: boolean }, command: Command) => {
      const { describePlugins } = await import("../../plugins/describe.ts");
      const globals = globalsOf(command);
      // -v is the global --verbose: here it also lists the options.
      const verbose = globals.verbose ?? false;
      const plugins = describePlugins(await registryFor(globals, cli));
      if (flags.json) {
        printJson(verbose ? plugins : plugins.map(({ options: _, ...rest }) => rest));
        return;
      }
      if (!verbose) {
        process.stdout.write(
          table([
            ["KIND", "TYPE", "FROM", "DESCRIPTION"],
            ...plugins.map((p) => [p.kind, p.type, p.origin, p.description]),
          ]),
        );
        return;
      }
      for (const p of plugins)
        process.stdout.write(
          `${p.kind} ${p.type} (${p.origin}): ${p.description}\n${p.options.map(optionLine).join("\n")}\n\n`,
        );
    });
}
