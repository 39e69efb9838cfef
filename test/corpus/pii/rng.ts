/** mulberry32: small, fast, deterministic; good enough for corpus generation. */
export function createRng(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const digits = (n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += String(int(0, 9));
    return s;
  };
  const chars = (alphabet: string, n: number): string => {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[int(0, alphabet.length - 1)];
    return s;
  };
  return { next, int, pick, digits, chars };
}

export type Rng = ReturnType<typeof createRng>;
