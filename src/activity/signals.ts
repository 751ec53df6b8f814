/**
 * Volume and regularity of a user's day (SPEC §8), next to R̄: pure functions of the day's per-minute
 * series. Every signal is built from scalar columns of daily_activity, and each column's population
 * is the median and MAD of that one column for the day (as for R̄), so the batch can compute it by SQL.
 */
import { classify, meanRate, populationParams, type Level, type PopulationParams, type PopulationStats } from "./bot-rules";
import type { Config } from "../config";

export interface MinuteRate {
  minute: number;
  rate: number;
}

/** The day's scalars. A regularity column is null on a day too short to judge (fewer than minMinutes). */
export interface DaySignals {
  activeMinutes: number;
  weightedUnits: number;
  rbar: number;
  /**
   * Standard error of R̄: the larger of the per-minute one (sample SD of the rates over √(active minutes))
   * and the per-session one (minutes of one session share its pace, so with G sessions the mean is known
   * from G pieces: the cluster-robust SE √(G/(G−1) · Σ (n_k (r̄_k − R̄))²) / n, sessions being runs of
   * active minutes with at most SESSION_GAP_MINUTES idle between them); 0 under 2 minutes. R̄'s z divides
   * by √(σ² + min(rbarSe, cap)²), the cap BOT_RBAR_SE_MAX_SIGMA·σ shrinking past BOT_RBAR_SE_FULL_MINUTES
   * (seAllowance), so a short bursty day is not banned for its sampling noise while a steady pace
   * (rbarSe ≈ 0) is judged exactly as SPEC §8 says.
   */
  rbarSe: number;
  /** Clock hours (of epoch minutes, = WIB hours) with at least HOUR_MIN_MINUTES active minutes. */
  activeHours: number;
  /**
   * ln(v / v₀ + 0.05) of the per-minute rates, v₀ what a person acting at random at the same pace shows
   * (randomVarianceAt; the pace from the mean, or, for counts no more varied than that, from how often
   * consecutive minutes are active if higher; both variances plus a small prior), plus a short-day allowance.
   * Low = steady.
   */
  rateDispersion: number | null;
  /** Share of the gaps between active minutes that equal the most common gap, if that gap is ≥ 2 minutes; else 0. */
  cadence: number | null;
}

export type SignalColumn = "activeMinutes" | "activeHours" | "rateDispersion" | "cadence";
export type Signal = "volume" | "regularity";

/** Which signal a column feeds and which way is suspicious (z = direction × (value − μ) / σ). */
export const signalColumns: Record<SignalColumn, { signal: Signal; direction: 1 | -1 }> = {
  activeMinutes: { signal: "volume", direction: 1 },
  activeHours: { signal: "volume", direction: 1 },
  rateDispersion: { signal: "regularity", direction: -1 },
  cadence: { signal: "regularity", direction: 1 },
};

export const HOUR_MIN_MINUTES = 5;
/** More idle minutes than this between two active ones start a new session (for R̄'s standard error). */
export const SESSION_GAP_MINUTES = 5;

export interface ColumnDefaults {
  mu: number;
  sigma: number;
  sigmaMin: number;
}

/**
 * Defaults: k per signal (config BOT_VOLUME_K_A/_K_B, BOT_REGULARITY_K_A/_K_B, BOT_REGULARITY_MIN_MINUTES),
 * and per column the configured μ/σ used when robust statistics cannot be (small population, zero MAD,
 * fixed mode), and a σ floor (BOT_<COLUMN>_MU/_SIGMA/_SIGMA_MIN, e.g. BOT_ACTIVE_HOURS_SIGMA_MIN).
 * Cadence is 0 for nearly every person, so its MAD is 0 on a normal day and its configured μ/σ apply.
 */
export const signalDefaults = {
  volume: { a: 3.5, b: 2.5 },
  regularity: { a: 5, b: 4 },
  minMinutes: 30,
  columns: {
    activeMinutes: { mu: 45, sigma: 45, sigmaMin: 30 },
    activeHours: { mu: 4, sigma: 4.5, sigmaMin: 4.5 },
    rateDispersion: { mu: 1.3, sigma: 0.45, sigmaMin: 0.2 },
    cadence: { mu: 0, sigma: 0.15, sigmaMin: 0.15 },
  } satisfies Record<SignalColumn, ColumnDefaults>,
};

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The most common value (the smallest on a tie) and its share. */
function mode(xs: number[]): { value: number; share: number } {
  const freq = new Map<number, number>();
  for (const x of xs) freq.set(x, (freq.get(x) ?? 0) + 1);
  let best = { value: 0, count: 0 };
  for (const [value, count] of freq) if (count > best.count || (count === best.count && value < best.value)) best = { value, count };
  return { value: best.value, share: xs.length === 0 ? 0 : best.count / xs.length };
}

/** The cluster-robust standard error of R̄ over the day's sessions; 0 with fewer than two sessions. */
function sessionStandardError(day: MinuteRate[], rbar: number): number {
  const sessions: { n: number; sum: number }[] = [];
  day.forEach((m, i) => {
    if (i === 0 || m.minute - day[i - 1]!.minute > SESSION_GAP_MINUTES + 1) sessions.push({ n: 0, sum: 0 });
    const s = sessions.at(-1)!;
    s.n += 1;
    s.sum += m.rate;
  });
  const g = sessions.length;
  if (g < 2) return 0;
  const spread = sum(sessions.map((s) => (s.sum - s.n * rbar) ** 2));
  return Math.sqrt((spread * g) / (g - 1)) / day.length;
}

/** The mean of a zero-truncated Poisson count of rate λ: what an active minute holds at that pace. */
const truncatedMean = (lambda: number) => (lambda > 0 ? lambda / -Math.expm1(-lambda) : 1);

/** The pace λ whose active minutes hold `m` actions on average (bisection; 0 at m ≤ 1). */
export function paceOfMean(m: number): number {
  if (!(m > 1)) return 0;
  let [lo, hi] = [0, m];
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (truncatedMean(mid) < m) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The pace λ at which a minute right after an active one is active with probability `p` (1 − e^−λ), p capped at 0.99. */
export const paceOfDuty = (p: number) => -Math.log1p(-Math.min(Math.max(p, 0), 0.99));

/**
 * The per-minute variance a person acting at random at pace λ shows over their active minutes: only minutes
 * with an action count, so it is a zero-truncated Poisson's, m(1 + λ − m) with m its mean. At a low pace
 * almost every active minute holds one action whoever acts, so the variance is small for people too; at a
 * high pace it is about λ, as a plain Poisson's.
 */
export function randomVarianceAt(lambda: number): number {
  if (!(lambda > 0)) return 0;
  const m = truncatedMean(lambda);
  return m * (1 + lambda - m);
}

/**
 * Added to both variances of rateDispersion's ratio: where chance itself gives next to no variance (about one
 * action per active minute), per-minute counts tell nothing of steadiness, and the ratio stays near 1.
 */
const DISPERSION_PRIOR_VARIANCE = 0.1;

export function daySignals(minutes: MinuteRate[], opts: { minMinutes?: number } = {}): DaySignals {
  const day = minutes.filter((m) => m.rate > 0).sort((a, b) => a.minute - b.minute);
  const rates = day.map((m) => m.rate);
  const n = day.length;
  const perHour = new Map<number, number>();
  for (const m of day) perHour.set(Math.floor(m.minute / 60), (perHour.get(Math.floor(m.minute / 60)) ?? 0) + 1);
  const rbar = meanRate(rates);
  const variance = n < 2 ? 0 : sum(rates.map((r) => (r - rbar) ** 2)) / (n - 1);
  const base = {
    activeMinutes: n,
    weightedUnits: sum(rates),
    rbar,
    rbarSe: Math.max(Math.sqrt(variance / Math.max(1, n)), sessionStandardError(day, rbar)),
    activeHours: [...perHour.values()].filter((c) => c >= HOUR_MIN_MINUTES).length,
  };
  if (n < Math.max(2, opts.minMinutes ?? signalDefaults.minMinutes)) return { ...base, rateDispersion: null, cadence: null };
  const gaps = day.slice(1).map((m, i) => m.minute - day[i]!.minute);
  const gap = mode(gaps);
  // Chance's pace, from the counts (the mean). Counts no more varied than chance's at that pace are judged
  // against the pace their duty shows too (how often the next minute is active), if higher: one action in every
  // minute is no low pace, though its mean is 1. People act in sessions of back-to-back minutes, so the duty
  // alone would make their counts look steady; counts more varied than chance's never are.
  const meanPace = paceOfMean(rbar);
  const pace = variance <= randomVarianceAt(meanPace) ? Math.max(meanPace, paceOfDuty(gaps.filter((g) => g === 1).length / gaps.length)) : meanPace;
  return {
    ...base,
    // Against what chance gives at that pace; sqrt(2/(n−1)) is about the standard error of a log variance: a
    // short day must not look steady by luck.
    rateDispersion: Math.log((variance + DISPERSION_PRIOR_VARIANCE) / (randomVarianceAt(pace) + DISPERSION_PRIOR_VARIANCE) + 0.05) + 2 * Math.sqrt(2 / (n - 1)),
    // A person's most common gap is 1 minute (inside a session); a timer's is its period, every time.
    cadence: gap.value >= 2 ? gap.share : 0,
  };
}

export type SignalParams = PopulationParams;
export type SignalSource = PopulationParams["source"];

/**
 * μ and σ of one column: the same rules as R̄ (populationParams, σ floor included), because a column of
 * small integers or of ties can have a tiny non-zero MAD that would put ordinary users past B.
 */
export function columnParams(stats: PopulationStats, d: ColumnDefaults, cfg: { mode: "robust" | "fixed"; minPopulation: number }): SignalParams {
  return populationParams(stats, { mode: cfg.mode, mu: d.mu, sigma: d.sigma, minPopulation: cfg.minPopulation, sigmaMin: d.sigmaMin });
}

/** μ and σ of the day's R̄ (SPEC §8), σ never below BOT_SIGMA_MIN. */
export function rbarParams(stats: PopulationStats, config: Pick<Config, "BOT_PARAMS_MODE" | "BOT_MU" | "BOT_SIGMA" | "BOT_SIGMA_MIN" | "BOT_MIN_POPULATION">): PopulationParams {
  return populationParams(stats, { mode: config.BOT_PARAMS_MODE, mu: config.BOT_MU, sigma: config.BOT_SIGMA, minPopulation: config.BOT_MIN_POPULATION, sigmaMin: config.BOT_SIGMA_MIN });
}

export interface Thresholds {
  /**
   * seMaxSigma: R̄'s z counts the user's rbarSe up to this many σ (BOT_RBAR_SE_MAX_SIGMA, default 2; 0 or
   * absent is SPEC §8 to the letter). The cap is there because users choose their own rates: one spike
   * minute would otherwise make any R̄ look like noise. With 2, the thresholds move by at most √5 (A from
   * μ + 3√5·σ whatever the noise).
   */
  rbar: { a: number; b: number; seMaxSigma?: number; seFullMinutes?: number };
  volume: { a: number; b: number };
  regularity: { a: number; b: number };
}

export type DecidedBy = "rbar" | "volume" | "regularity" | "volume+regularity" | null;

export interface DayClassification {
  level: Level;
  decidedBy: DecidedBy;
  /** z of R̄, of each signal and of each column; null where a column is null (a day too short to judge). */
  z: { rbar: number } & Record<Signal | SignalColumn, number | null>;
}

/**
 * How much of a user's own standard error R̄'s z may count: seMaxSigma·σ on a day of up to seFullMinutes
 * active minutes, shrinking as √(seFullMinutes / n) beyond. The error is the user's own (they choose their
 * pace minute by minute), and a long day's mean is known well whatever its pace: so a bot that paces itself
 * unevenly gains little room, and only on short days, which pay little.
 */
export function seAllowance(activeMinutes: number, sigma: number, t: Thresholds["rbar"]): number {
  const full = (t.seMaxSigma ?? 0) * sigma;
  return t.seFullMinutes === undefined || activeMinutes <= t.seFullMinutes ? full : full * Math.sqrt(t.seFullMinutes / activeMinutes);
}

/**
 * Volume z = min of its columns' z (many minutes AND spread over many hours: a person who sleeps is
 * not tireless); regularity z = max of its columns' z (steady in any one way is enough).
 * A: R̄ past k_A, or volume and regularity both past their k_A. B: any one past its k_B.
 */
export function classifyDay(s: DaySignals, p: { rbar: { mu: number; sigma: number }; columns: Record<SignalColumn, { mu: number; sigma: number }> }, t: Thresholds): DayClassification {
  const cols = {} as Record<SignalColumn, number | null>;
  for (const [c, { direction }] of Object.entries(signalColumns) as [SignalColumn, (typeof signalColumns)[SignalColumn]][]) {
    const v = s[c];
    cols[c] = v === null ? null : (direction * (v - p.columns[c].mu)) / p.columns[c].sigma;
  }
  const combine = (signal: Signal, pick: (...xs: number[]) => number) => {
    const zs = (Object.keys(cols) as SignalColumn[]).flatMap((c) => (signalColumns[c].signal === signal && cols[c] !== null ? [cols[c]] : []));
    return zs.length === 0 ? null : pick(...zs);
  };
  const volume = combine("volume", Math.min);
  const regularity = combine("regularity", Math.max);
  const r = classify(s.rbar, p.rbar, t.rbar, Math.min(s.rbarSe, seAllowance(s.activeMinutes, p.rbar.sigma, t.rbar)));
  const past = (z: number | null, k: number) => z !== null && z >= k;
  let level: Level = "C";
  let decidedBy: DecidedBy = null;
  if (r.level === "A") [level, decidedBy] = ["A", "rbar"];
  else if (past(volume, t.volume.a) && past(regularity, t.regularity.a)) [level, decidedBy] = ["A", "volume+regularity"];
  else if (r.level === "B") [level, decidedBy] = ["B", "rbar"];
  else if (past(volume, t.volume.b)) [level, decidedBy] = ["B", "volume"];
  else if (past(regularity, t.regularity.b)) [level, decidedBy] = ["B", "regularity"];
  return { level, decidedBy, z: { rbar: r.z, volume, regularity, ...cols } };
}

/** Each signal column's configured μ, σ and σ floor. */
export function columnDefaultsOf(config: Config): Record<SignalColumn, ColumnDefaults> {
  return {
    activeMinutes: { mu: config.BOT_ACTIVE_MINUTES_MU, sigma: config.BOT_ACTIVE_MINUTES_SIGMA, sigmaMin: config.BOT_ACTIVE_MINUTES_SIGMA_MIN },
    activeHours: { mu: config.BOT_ACTIVE_HOURS_MU, sigma: config.BOT_ACTIVE_HOURS_SIGMA, sigmaMin: config.BOT_ACTIVE_HOURS_SIGMA_MIN },
    rateDispersion: { mu: config.BOT_RATE_DISPERSION_MU, sigma: config.BOT_RATE_DISPERSION_SIGMA, sigmaMin: config.BOT_RATE_DISPERSION_SIGMA_MIN },
    cadence: { mu: config.BOT_CADENCE_MU, sigma: config.BOT_CADENCE_SIGMA, sigmaMin: config.BOT_CADENCE_SIGMA_MIN },
  };
}

export const thresholdsOf = (config: Config): Thresholds => ({
  rbar: { a: config.BOT_K_A, b: config.BOT_K_B, seMaxSigma: config.BOT_RBAR_SE_MAX_SIGMA, seFullMinutes: config.BOT_RBAR_SE_FULL_MINUTES },
  volume: { a: config.BOT_VOLUME_K_A, b: config.BOT_VOLUME_K_B },
  regularity: { a: config.BOT_REGULARITY_K_A, b: config.BOT_REGULARITY_K_B },
});

/** PAYOUT_DAILY_CAP_IDR's default. */
export const PAYOUT_DAILY_CAP_IDR = 50_000;

export interface PayoutLineIn {
  campaignId: string;
  amountIdr: number;
}

/**
 * The per-user daily cap: up to capIdr of the day's lines is paid, in proportion to each line (largest
 * remainder, ties by campaignId), so no campaign's advertiser absorbs the cap alone. Whole rupiah only.
 */
export function capDailyPayout<L extends PayoutLineIn>(lines: L[], capIdr: number): (L & { paidIdr: number; cappedIdr: number })[] {
  for (const x of [capIdr, ...lines.map((l) => l.amountIdr)]) if (!Number.isSafeInteger(x) || x < 0) throw new RangeError(`not a whole non-negative rupiah amount: ${x}`);
  const total = lines.reduce((a, l) => a + BigInt(l.amountIdr), 0n);
  const cap = BigInt(capIdr);
  if (total <= cap) return lines.map((l) => ({ ...l, paidIdr: l.amountIdr, cappedIdr: 0 }));
  const shares = lines.map((l, i) => ({ i, id: l.campaignId, paid: (BigInt(l.amountIdr) * cap) / total, rest: (BigInt(l.amountIdr) * cap) % total }));
  let left = cap - shares.reduce((a, x) => a + x.paid, 0n);
  const order = [...shares].sort((x, y) => (x.rest === y.rest ? (x.id < y.id ? -1 : x.id > y.id ? 1 : x.i - y.i) : x.rest > y.rest ? -1 : 1));
  for (const x of order) if (left > 0n) [x.paid, left] = [x.paid + 1n, left - 1n];
  return lines.map((l, i) => ({ ...l, paidIdr: Number(shares[i]!.paid), cappedIdr: l.amountIdr - Number(shares[i]!.paid) }));
}
