import type { Config } from "../config/load.ts";
import type { ArtifactRecord, RestoreCommand } from "../kit/contracts.ts";

/** The plain shell pipeline that restores an artifact with standard tools, run inside the snapshot folder. */
export function restorePipeline(
  record: ArtifactRecord,
  config: Config,
  command: RestoreCommand | undefined,
): string {
  const first = record.objects[0]?.key ?? record.name;
  const read = record.objects.length > 1 ? `cat ${first.replace(/\.part\d+$/, ".part*")}` : `cat ${first}`;
  const decode = [...record.transforms]
    .reverse()
    .map((t) => config.registry.transforms.get(t.type)?.shellDecode(t) ?? `<undo ${t.type}>`)
    .filter((stage) => stage !== "cat");
  const pipeline = [read, ...decode, command?.consume ?? `cat > ${record.name}`].join(" | ");
  return command?.prepare ? `${command.prepare} && ${pipeline}` : pipeline;
}
