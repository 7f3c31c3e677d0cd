/** mulberry32: a small seeded generator, so a failing randomized run can be replayed from its seed. */
export function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed from `variable`, else a new one; printed by the caller so a failure can be replayed. */
export function seedFrom(variable: string): number {
  return Number(process.env[variable] ?? Date.now() % 1_000_000);
}
