/** Bot detection and activity payout rules (SPEC §8), pure functions of plain data. */

export type ActivityType = "view" | "like" | "comment";
export type Weights = Record<ActivityType, number>;
export type Level = "A" | "B" | "C";

/** Rate_per_min of one minute: weighted actions in that minute. */
export function ratePerMinute(counts: Partial<Record<ActivityType, number>>, weights: Weights): number {
  let rate = 0;
  for (const type of Object.keys(counts) as ActivityType[]) rate += (counts[type] ?? 0) * weights[type];
  return rate;
}

/** R̄ of a day: the mean Rate_per_min over the active minutes (minutes with at least one action). */
export function meanRate(minuteRates: number[]): number {
  const active = minuteRates.filter((r) => r > 0);
  return active.length === 0 ? 0 : active.reduce((a, b) => a + b, 0) / active.length;
}

export function median(sorted: number[]): number {
  if (sorted.length === 0) return 0;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface PopulationParams {
  mu: number;
  sigma: number;
  source: "fixed" | "robust" | "robust_sigma_floor" | "fallback_small_population" | "fallback_zero_mad";
}

/** What robust mode needs of a day's R̄ values: how many, their median, and their median absolute deviation. */
export interface PopulationStats {
  n: number;
  median: number;
  mad: number;
}

export function statsOf(rbars: number[]): PopulationStats {
  const sorted = [...rbars].sort((a, b) => a - b);
  const mid = median(sorted);
  return { n: sorted.length, median: mid, mad: median(sorted.map((r) => Math.abs(r - mid)).sort((a, b) => a - b)) };
}

/**
 * μ and σ for the day. Fixed mode uses BOT_MU/BOT_SIGMA. Robust mode uses the median and 1.4826 × MAD
 * of the day's R̄ values, because bots inflate a plain standard deviation and hide behind it; it
 * falls back to the configured values for a small population or a zero MAD. A robust σ is never below
 * `sigmaMin`: accounts that agree on nearly one value (colluding on the median) would otherwise shrink σ
 * until ordinary users stand out as bots.
 */
export function populationParams(stats: PopulationStats, cfg: { mode: "robust" | "fixed"; mu: number; sigma: number; minPopulation: number; sigmaMin?: number }): PopulationParams {
  if (cfg.mode === "fixed") return { mu: cfg.mu, sigma: cfg.sigma, source: "fixed" };
  if (stats.n < cfg.minPopulation) return { mu: cfg.mu, sigma: cfg.sigma, source: "fallback_small_population" };
  if (stats.mad === 0) return { mu: cfg.mu, sigma: cfg.sigma, source: "fallback_zero_mad" };
  const sigma = 1.4826 * stats.mad;
  if (cfg.sigmaMin !== undefined && sigma < cfg.sigmaMin) return { mu: stats.median, sigma: cfg.sigmaMin, source: "robust_sigma_floor" };
  return { mu: stats.median, sigma, source: "robust" };
}

/**
 * A if R̄ ≥ μ + k_A·s, B if R̄ ≥ μ + k_B·s, else C, with s = σ (SPEC §8) when `noise` is 0, else √(σ² + noise²).
 * `noise` is the part of this user's own standard error that counts (signals.ts, classifyDay).
 */
export function classify(rbar: number, p: { mu: number; sigma: number }, k: { a: number; b: number }, noise = 0): { level: Level; z: number } {
  const spread = noise > 0 ? Math.sqrt(p.sigma ** 2 + noise ** 2) : p.sigma;
  const z = (rbar - p.mu) / spread;
  const level: Level = rbar >= p.mu + k.a * spread ? "A" : rbar >= p.mu + k.b * spread ? "B" : "C";
  return { level, z };
}

/** A level-C user's payout from one campaign: units × rate fee (whole rupiah). */
export function activityPayout(units: number, rateFeeIdr: number): number {
  return units * rateFeeIdr;
}
