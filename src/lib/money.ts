/** Largest amount (in coins or rupiah) any single request may name; keeps every sum far from 2^53. */
export const MAX_AMOUNT = 1_000_000_000_000;

export type Asset = "COIN" | "IDR";
export const ASSETS: readonly Asset[] = ["COIN", "IDR"];

/**
 * Splits `amount` into named shares given in basis points: each share gets floor(amount × bps / 10000)
 * and the remainder goes to `remainderTo`, so the parts always sum to `amount` exactly (SPEC §3).
 */
export function splitAmount<S extends Record<string, number>>(
  amount: number,
  shares: S,
  remainderTo: keyof S & string,
): Record<keyof S & string, number> {
  type K = keyof S & string;
  assertWholeAmount(amount);
  const out = {} as Record<K, number>;
  let allocated = 0;
  let totalBps = 0;
  for (const key of Object.keys(shares) as K[]) {
    const bps = shares[key] as number;
    if (!Number.isInteger(bps) || bps < 0) throw new RangeError(`share ${key} must be whole bps`);
    totalBps += bps;
    out[key] = key === remainderTo ? 0 : Math.floor((amount * bps) / 10_000);
    allocated += out[key];
  }
  if (totalBps > 10_000) throw new RangeError("shares exceed 10000 bps");
  out[remainderTo] = amount - allocated;
  return out;
}

/** floor(amount × bps / 10000): a fee or tax rounded down, as every deduction in the spec is. */
/** ceil(a × b / c) of whole non-negative amounts, exactly (in BigInt: a × b may pass 2^53). */
export function ceilMulDiv(a: number, b: number, c: number): number {
  const [x, y, z] = [BigInt(a), BigInt(b), BigInt(c)];
  return Number((x * y + z - 1n) / z);
}

export function bpsOf(amount: number, bps: number): number {
  assertWholeAmount(amount);
  return Math.floor((amount * bps) / 10_000);
}

export function assertWholeAmount(amount: number): void {
  if (!Number.isSafeInteger(amount) || amount < 0 || amount > MAX_AMOUNT) {
    throw new RangeError(`amount must be a whole number between 0 and ${MAX_AMOUNT}`);
  }
}
