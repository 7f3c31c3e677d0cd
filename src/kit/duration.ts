const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Parses `90s`, `5m`, `1h30m`, `2d`, `1w`; a bare number is seconds. Returns undefined when invalid. */
export function parseDuration(input: string | number): number | undefined {
  if (typeof input === "number") return Number.isFinite(input) && input >= 0 ? input * 1000 : undefined;
  const text = input.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  let total = 0;
  let rest = text;
  while (rest.length) {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*/.exec(rest);
    if (!match) return undefined;
    total += Number(match[1]) * UNITS[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return text.length ? total : undefined;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 120_000) return `${Number((ms / 1000).toFixed(1))} s`;
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 172_800_000) return `${Number((ms / 3_600_000).toFixed(1))} h`;
  return `${Number((ms / 86_400_000).toFixed(1))} days`;
}
