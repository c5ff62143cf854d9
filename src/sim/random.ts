/** A small seeded PRNG (mulberry32), so a seed always yields the same simulated cluster. */
export type Rng = () => number;

export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
export const between = (rng: Rng, min: number, max: number): number => min + Math.floor(rng() * (max - min + 1));

/** A stable pseudo-random fraction for (key, bucket): metrics that drift over time without state. */
export function noise(key: number, bucket: number): number {
  let h = (Math.imul(key, 2654435761) ^ Math.imul(bucket, 40503)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

export function macAddress(rng: Rng): string {
  // BC:24:11 is the Proxmox OUI that PVE 8 uses for generated MACs.
  const bytes = [0xbc, 0x24, 0x11, between(rng, 0, 255), between(rng, 0, 255), between(rng, 0, 255)];
  return bytes.map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
}
