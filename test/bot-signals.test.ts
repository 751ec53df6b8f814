import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { populationParams, statsOf } from "../src/activity/bot-rules";
import {
  capDailyPayout,
  classifyDay,
  columnParams,
  daySignals,
  paceOfDuty,
  paceOfMean,
  PAYOUT_DAILY_CAP_IDR,
  randomVarianceAt,
  signalDefaults,
  type ColumnDefaults,
  type DaySignals,
  type MinuteRate,
  type SignalColumn,
  type SignalParams,
} from "../src/activity/signals";

const start = 60 * 491_520; // an epoch minute at the top of an hour
const every = (from: number, count: number, step: number, rate: (i: number) => number): MinuteRate[] =>
  Array.from({ length: count }, (_, i) => ({ minute: start + from + i * step, rate: rate(i) }));

const k = { rbar: { a: 3, b: 2, seMaxSigma: 2 }, volume: { a: 3.5, b: 2.5 }, regularity: { a: 5, b: 4 } };
// μ = 0 and σ = 1 everywhere, so a column's value is its z (times its direction).
const unit = { mu: 0, sigma: 1 };
const params = { rbar: unit, columns: { activeMinutes: unit, activeHours: unit, rateDispersion: unit, cadence: unit } satisfies Record<SignalColumn, typeof unit> };
const day = (over: Partial<DaySignals>): DaySignals => ({ activeMinutes: 0, weightedUnits: 0, rbar: 0, rbarSe: 0, activeHours: 0, rateDispersion: 0, cadence: 0, ...over });

describe("daySignals", () => {
  it("an empty day: zeros, and no regularity to judge", () => {
    expect(daySignals([])).toEqual({ activeMinutes: 0, weightedUnits: 0, rbar: 0, rbarSe: 0, activeHours: 0, rateDispersion: null, cadence: null });
  });

  it("counts active minutes, units, R̄ and hours with at least 5 active minutes; ignores order and empty minutes", () => {
    const minutes = [...every(0, 5, 1, () => 2), ...every(60, 4, 1, () => 6), { minute: start + 200, rate: 0 }].reverse();
    expect(daySignals(minutes)).toMatchObject({ activeMinutes: 9, weightedUnits: 34, rbar: 34 / 9, activeHours: 1, rateDispersion: null });
  });

  it("a day shorter than minMinutes has no regularity; from minMinutes on it has", () => {
    expect(daySignals(every(0, 29, 1, () => 4)).rateDispersion).toBeNull();
    expect(daySignals(every(0, 30, 1, () => 4)).rateDispersion).not.toBeNull();
    expect(daySignals(every(0, 10, 1, () => 4), { minMinutes: 10 }).cadence).toBe(0);
  });

  it("what chance gives: a zero-truncated Poisson's variance at the pace, about the pace when it is high, next to none near one action a minute", () => {
    expect(randomVarianceAt(0)).toBe(0);
    expect(randomVarianceAt(0.0001)).toBeLessThan(0.001);
    // λ = 1: mean 1/(1 − e^−1), variance mean·(2 − mean); the pace of that mean is 1 again.
    const m = 1 / (1 - Math.exp(-1));
    expect(randomVarianceAt(1)).toBeCloseTo(m * (2 - m), 9);
    expect(paceOfMean(m)).toBeCloseTo(1, 9);
    expect(paceOfMean(1)).toBe(0);
    expect(randomVarianceAt(20)).toBeCloseTo(20, 3);
    // The pace from the duty: the next minute is active with probability 1 − e^−λ.
    expect(paceOfDuty(1 - Math.exp(-0.5))).toBeCloseTo(0.5, 9);
    expect(paceOfDuty(1)).toBeCloseTo(-Math.log(0.01), 9);
  });

  it("a metronome: zero variance against chance's at its pace, plus the short-day allowance; every minute is cadence 0", () => {
    const s = daySignals(every(0, 1200, 1, () => 4));
    // Every minute active: chance's pace is the duty's (capped at 0.99), above the mean's.
    expect(s.rateDispersion).toBeCloseTo(Math.log(0.1 / (randomVarianceAt(paceOfDuty(1)) + 0.1) + 0.05) + 2 * Math.sqrt(2 / 1199), 12);
    expect(s.rateDispersion!).toBeLessThan(-2.4);
    expect(s).toMatchObject({ activeMinutes: 1200, activeHours: 20, cadence: 0 });
  });

  it("a timer every 3 minutes has cadence 1; a person's most common gap is 1 minute", () => {
    expect(daySignals(every(0, 300, 3, (i) => 3 + (i % 3))).cadence).toBe(1);
    const person = [...every(480, 20, 1, (i) => 1 + (i % 7)), ...every(700, 15, 1, (i) => 2 + ((i * 5) % 9)), ...every(1200, 25, 2, () => 3)];
    expect(daySignals(person).cadence).toBe(0);
  });

  it("a person acting at random at a low pace is not steady: most of their active minutes hold one action, as chance gives", () => {
    // Seeded Poisson counts per minute (a person acting at random), 2 hours at 0.5 and at 1 action a minute.
    const poissonMinutes = (seed: number, lambda: number, minutes: number) => {
      let x = seed >>> 0;
      const rand = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
      return Array.from({ length: minutes }, (_, i) => {
        let [n, p] = [-1, 1];
        do [n, p] = [n + 1, p * rand()];
        while (p > Math.exp(-lambda));
        return { minute: start + i, rate: n };
      });
    };
    const fallback = Object.fromEntries(Object.entries(signalDefaults.columns).map(([c, d]) => [c, columnParams(statsOf([]), d, { mode: "robust", minPopulation: 30 })])) as Record<SignalColumn, SignalParams>;
    const p = { rbar: { mu: 4, sigma: 1.3 }, columns: fallback };
    const held: string[] = [];
    for (const lambda of [0.5, 1]) {
      for (let seed = 1; seed <= 20; seed++) {
        const s = daySignals(poissonMinutes(seed * 7919, lambda, 120));
        const c = classifyDay(s, p, k);
        if (c.level !== "C") held.push(`λ ${lambda} seed ${seed}: ${c.level} by ${c.decidedBy}, R̄ ${s.rbar.toFixed(2)}, rateDispersion ${s.rateDispersion?.toFixed(2)}`);
      }
    }
    expect(held, held.join("\n")).toEqual([]);
    // Metronomes at a low pace are still steady: two actions every minute, or exactly one in every minute (chance
    // gives one action a minute only at a low pace, which leaves most minutes empty, not none).
    expect(classifyDay(daySignals(every(0, 120, 1, () => 2)), p, k)).toMatchObject({ level: "B", decidedBy: "regularity" });
    expect(classifyDay(daySignals(every(0, 120, 1, () => 1)), p, k)).toMatchObject({ level: "B", decidedBy: "regularity" });
  });

  it("a person acting in sessions of back-to-back minutes, whose counts vary more than chance's at their mean, is not steady", () => {
    const counts = [1, 2, 1, 3, 1, 1, 2, 5, 1, 2, 1, 1, 3, 1, 2, 1, 4, 1, 1, 2];
    const minutes: MinuteRate[] = [];
    [420, 720, 1080, 1260].forEach((at, s) => {
      for (let i = 0; i < 30; i++) minutes.push({ minute: start + at + i, rate: counts[(i * 7 + s * 3) % counts.length]! });
    });
    const fallback = Object.fromEntries(Object.entries(signalDefaults.columns).map(([c, d]) => [c, columnParams(statsOf([]), d, { mode: "robust", minPopulation: 30 })])) as Record<SignalColumn, SignalParams>;
    const s = daySignals(minutes);
    expect(classifyDay(s, { rbar: { mu: 4, sigma: 1.3 }, columns: fallback }, k), `rateDispersion ${s.rateDispersion}`).toMatchObject({ level: "C", decidedBy: null });
  });

  it("a bursty person is far less steady than a metronome at the same mean", () => {
    const rates = [1, 9, 2, 4, 12, 1, 3, 7, 2, 5, 1, 8];
    const person = [...every(480, 40, 1, (i) => rates[i % rates.length]!), ...every(1140, 40, 1, (i) => rates[(i * 7) % rates.length]!)];
    const metronome = every(0, 80, 1, () => 4);
    expect(daySignals(person).rateDispersion!).toBeGreaterThan(daySignals(metronome).rateDispersion! + 3);
  });
});

describe("columnParams", () => {
  const cfg = { mode: "robust" as const, minPopulation: 30 };
  const d = { mu: 45, sigma: 45, sigmaMin: 30 };

  it("robust: the median and 1.4826 × MAD of the column", () => {
    const p = columnParams(statsOf(Array.from({ length: 31 }, (_, i) => i * 10)), d, cfg);
    expect(p).toMatchObject({ mu: 150, source: "robust" });
    expect(p.sigma).toBeCloseTo(1.4826 * 80, 10);
  });

  it("a tiny non-zero MAD is floored at sigmaMin, so ties do not put ordinary users past B", () => {
    const values = [...Array(20).fill(1), ...Array(20).fill(2), 300];
    expect(columnParams(statsOf(values), d, cfg)).toEqual({ mu: 2, sigma: 30, source: "robust_sigma_floor" });
  });

  it("zero MAD, a small population and fixed mode use the configured μ and σ, as for R̄", () => {
    expect(columnParams(statsOf(Array(40).fill(0)), d, cfg)).toEqual({ mu: 45, sigma: 45, source: "fallback_zero_mad" });
    expect(columnParams(statsOf([1, 2, 3]), d, cfg)).toEqual({ mu: 45, sigma: 45, source: "fallback_small_population" });
    expect(columnParams(statsOf(Array.from({ length: 40 }, (_, i) => i)), d, { ...cfg, mode: "fixed" })).toEqual({ mu: 45, sigma: 45, source: "fixed" });
  });
});

describe("classifyDay", () => {
  it("exactly at a signal's k_B is B, just below is C", () => {
    expect(classifyDay(day({ activeMinutes: 2.5, activeHours: 2.5 }), params, k)).toMatchObject({ level: "B", decidedBy: "volume" });
    expect(classifyDay(day({ activeMinutes: 2.5, activeHours: 2.499999 }), params, k)).toMatchObject({ level: "C", decidedBy: null });
    expect(classifyDay(day({ rateDispersion: -4 }), params, k)).toMatchObject({ level: "B", decidedBy: "regularity" });
    expect(classifyDay(day({ rateDispersion: -3.999999 }), params, k).level).toBe("C");
  });

  it("volume is the min of its columns (many minutes and many hours), regularity the max of its columns", () => {
    const c = classifyDay(day({ activeMinutes: 9, activeHours: 1, rateDispersion: 1, cadence: 4.5 }), params, k);
    expect(c.z).toMatchObject({ volume: 1, regularity: 4.5, activeMinutes: 9, activeHours: 1, rateDispersion: -1, cadence: 4.5 });
    expect(c).toMatchObject({ level: "B", decidedBy: "regularity" });
  });

  it("one signal past its k_A alone is only B; both past k_A is A", () => {
    expect(classifyDay(day({ activeMinutes: 10, activeHours: 10 }), params, k)).toMatchObject({ level: "B", decidedBy: "volume" });
    expect(classifyDay(day({ cadence: 10 }), params, k)).toMatchObject({ level: "B", decidedBy: "regularity" });
    expect(classifyDay(day({ activeMinutes: 3.5, activeHours: 3.5, cadence: 5 }), params, k)).toMatchObject({ level: "A", decidedBy: "volume+regularity" });
    expect(classifyDay(day({ activeMinutes: 3.5, activeHours: 3.5, cadence: 4.999999 }), params, k)).toMatchObject({ level: "B", decidedBy: "volume" });
  });

  it("R̄ keeps SPEC §8's levels: past k_A is A on its own, past k_B is B", () => {
    expect(classifyDay(day({ rbar: 3 }), params, k)).toMatchObject({ level: "A", decidedBy: "rbar", z: { rbar: 3 } });
    expect(classifyDay(day({ rbar: 2 }), params, k)).toMatchObject({ level: "B", decidedBy: "rbar" });
    expect(classifyDay(day({ rbar: 1.999999 }), params, k)).toMatchObject({ level: "C", decidedBy: null });
    // R̄ at B but volume and regularity both past A: the stronger verdict wins.
    expect(classifyDay(day({ rbar: 2, activeMinutes: 4, activeHours: 4, rateDispersion: -6 }), params, k)).toMatchObject({ level: "A", decidedBy: "volume+regularity" });
  });

  it("R̄'s z counts the user's own sampling noise: a bursty short day past μ + 3σ by chance is not A, a steady one still is", () => {
    const mu = { rbar: { mu: 4, sigma: 1 }, columns: params.columns };
    // 12 minutes alternating 2 and 12 actions (R̄ 7, sample SD 5.22, SE 1.51): past μ + 3σ on R̄ alone.
    const bursty = daySignals(every(600, 12, 1, (i) => (i % 2 === 0 ? 2 : 12)));
    expect(bursty.rbar).toBe(7);
    expect(bursty.rbarSe).toBeCloseTo(Math.sqrt(300 / 11 / 12), 12);
    const judged = classifyDay(bursty, mu, k);
    expect(judged.z.rbar).toBeCloseTo(3 / Math.sqrt(1 + 300 / 11 / 12), 12);
    expect(judged).toMatchObject({ level: "C", decidedBy: null });
    // The same R̄ from a steady 7 a minute has no sampling noise: SPEC §8's A, exactly.
    const steady = daySignals(every(600, 12, 1, () => 7));
    expect(steady.rbarSe).toBe(0);
    expect(classifyDay(steady, mu, k)).toMatchObject({ level: "A", decidedBy: "rbar", z: { rbar: 3 } });
    // Switched off (BOT_RBAR_SE_MAX_SIGMA=0), the bursty day is SPEC §8's A as well.
    expect(classifyDay(bursty, mu, { ...k, rbar: { ...k.rbar, seMaxSigma: 0 } })).toMatchObject({ level: "A", decidedBy: "rbar", z: { rbar: 3 } });
  });

  it("R̄'s standard error counts sessions: minutes of one session share its pace, so two sessions weigh as two", () => {
    // 6 minutes at a steady 2, then 6 at a steady 12: R̄ 7 either way.
    const twoSessions = (idle: number) => daySignals([...every(600, 6, 1, () => 2), ...every(606 + idle, 6, 1, () => 12)]);
    const perMinute = Math.sqrt((12 * 25) / 11 / 12);
    // 6 idle minutes (more than SESSION_GAP_MINUTES): two sessions, √(2/1 · ((12 − 42)² + (72 − 42)²)) / 12 = 5.
    expect(twoSessions(6).rbarSe).toBeCloseTo(5, 12);
    // 5 idle minutes: one session, the per-minute SE.
    expect(twoSessions(5).rbarSe).toBeCloseTo(perMinute, 12);
    // Sessions at one steady pace add nothing: a bot that pauses is still judged exactly.
    expect(daySignals([...every(0, 30, 1, () => 6), ...every(300, 30, 1, () => 6)]).rbarSe).toBe(0);
  });

  it("a bot cannot buy its way out with its own noise: the standard error counts for at most BOT_RBAR_SE_MAX_SIGMA·σ", () => {
    const mu = { rbar: { mu: 4, sigma: 1 }, columns: params.columns };
    const spikes = {
      // Two minutes, 1 and 19,999: R̄ 10,000 with a per-minute SE of 9,999.
      twoMinutes: [{ minute: start, rate: 1 }, { minute: start + 1, rate: 19_999 }],
      // An hour at 1 a minute and one minute of 20,000 in the same session: R̄ 329.
      oneSpike: [...every(0, 60, 1, () => 1), { minute: start + 60, rate: 20_000 }],
      // Two hour-long sessions at 1 and 199: R̄ 100, session SE 99.
      twoSessions: [...every(0, 60, 1, () => 1), ...every(120, 60, 1, () => 199)],
    };
    for (const [name, minutes] of Object.entries(spikes)) {
      const s = daySignals(minutes);
      expect(s.rbarSe, name).toBeGreaterThan(50);
      const judged = classifyDay(s, mu, k);
      expect(judged, name).toMatchObject({ level: "A", decidedBy: "rbar" });
      expect(judged.z.rbar, name).toBeCloseTo((s.rbar - 4) / Math.sqrt(5), 9);
    }
    // The most the error can lift the thresholds: A from μ + 3√5·σ on, B from μ + 2√5·σ, whatever the noise.
    expect(classifyDay(day({ rbar: 4 + 3 * Math.sqrt(5) + 1e-9, rbarSe: 1e6 }), mu, k).level).toBe("A");
    expect(classifyDay(day({ rbar: 4 + 3 * Math.sqrt(5) - 1e-9, rbarSe: 1e6 }), mu, k).level).toBe("B");
    expect(classifyDay(day({ rbar: 4 + 2 * Math.sqrt(5) - 1e-9, rbarSe: 1e6 }), mu, k).level).toBe("C");
  });

  it("the allowance for noise shrinks as the day grows: a bot pacing itself unevenly over two hours is held, not paid", () => {
    // Volume and regularity out of the way (huge σ): R̄ alone decides here.
    const wide = { mu: 0, sigma: 1e9 };
    const p = { rbar: { mu: 4, sigma: 2 }, columns: { activeMinutes: wide, activeHours: wide, rateDispersion: wide, cadence: wide } };
    const t = { ...k, rbar: { ...k.rbar, seFullMinutes: 30 } };
    // An hour at 1 a minute, then (after a pause) an hour at 23: R̄ 12, past SPEC §8's A line (μ + 3σ = 10), session SE 11.
    const uneven = daySignals([...every(0, 60, 1, () => 1), ...every(70, 60, 1, () => 23)]);
    expect(uneven.rbar).toBe(12);
    expect(uneven.rbarSe).toBeGreaterThan(4);
    // 120 active minutes: the error counts for at most 2σ·√(30/120) = σ, so z = 8 / √(σ² + σ²) ≈ 2.83: B.
    const judged = classifyDay({ ...uneven, activeMinutes: 120 }, p, t);
    expect(judged).toMatchObject({ level: "B", decidedBy: "rbar" });
    expect(judged.z.rbar).toBeCloseTo(8 / Math.sqrt(8), 9);
    expect(classifyDay({ ...uneven, activeMinutes: 120 }, p, k).level).toBe("C"); // without the shrinking: paid
    // Up to seFullMinutes active minutes the full 2σ still counts (a short bursty day keeps its allowance).
    expect(classifyDay({ ...uneven, activeMinutes: 30 }, p, t).z.rbar).toBeCloseTo(8 / Math.sqrt(20), 9);
  });

  it("R̄'s robust σ has a floor: accounts colluding on nearly one R̄ cannot shrink the thresholds onto ordinary users", () => {
    // 16 accounts at 4.00…4.15 and 14 people at 2…7: MAD 0.075, σ 0.11 without a floor.
    const rbars = [...Array.from({ length: 16 }, (_, i) => 4 + i / 100), 2, 2.5, 3, 3, 3.5, 3.5, 3.8, 5, 5, 5.5, 6, 6, 6.5, 7];
    const stats = statsOf(rbars);
    expect(populationParams(stats, { mode: "robust", mu: 4, sigma: 2, minPopulation: 30 }).sigma).toBeLessThan(0.2);
    const floored = populationParams(stats, { mode: "robust", mu: 4, sigma: 2, minPopulation: 30, sigmaMin: 0.75 });
    expect(floored).toMatchObject({ sigma: 0.75, source: "robust_sigma_floor" });
    // A day of ordinary spread is untouched by it.
    expect(populationParams(statsOf(Array.from({ length: 40 }, (_, i) => 2 + (i % 8))), { mode: "robust", mu: 4, sigma: 2, minPopulation: 30, sigmaMin: 0.75 }).source).toBe("robust");
  });

  it("a short day has no regularity z and is judged on R̄ and volume only", () => {
    const c = classifyDay(day({ rateDispersion: null, cadence: null, activeMinutes: 3, activeHours: 3 }), params, k);
    expect(c).toMatchObject({ level: "B", decidedBy: "volume", z: { regularity: null, rateDispersion: null, cadence: null } });
  });

  it("with the default thresholds and fallback parameters: a 20-hour metronome is A, a bursty person is C", () => {
    const fallback = {} as Record<SignalColumn, SignalParams>;
    for (const [c, d] of Object.entries(signalDefaults.columns) as [SignalColumn, ColumnDefaults][]) fallback[c] = columnParams(statsOf([]), d, { mode: "robust", minPopulation: 30 });
    const p = { rbar: { mu: 4, sigma: 2 }, columns: fallback };
    const t = { rbar: { a: 3, b: 2 }, volume: signalDefaults.volume, regularity: signalDefaults.regularity };
    const metronome = daySignals(every(0, 1200, 1, (i) => (i % 2 === 0 ? 4 : 5)));
    const rates = [1, 6, 2, 3, 9, 4, 1, 2, 7, 3];
    const person = daySignals([...every(420, 25, 1, (i) => rates[i % 10]!), ...every(760, 10, 1, (i) => rates[(i * 3) % 10]!), ...every(1250, 45, 1, (i) => rates[(i * 7) % 10]!)]);
    expect(classifyDay(metronome, p, t)).toMatchObject({ level: "A", decidedBy: "volume+regularity" });
    expect(classifyDay(person, p, t)).toMatchObject({ level: "C", decidedBy: null });
    expect(signalDefaults.volume.b).toBeLessThanOrEqual(signalDefaults.volume.a);
    expect(signalDefaults.regularity.b).toBeLessThanOrEqual(signalDefaults.regularity.a);
  });
});

describe("capDailyPayout", () => {
  const lines = (...amounts: [string, number][]) => amounts.map(([campaignId, amountIdr]) => ({ campaignId, amountIdr }));

  it("under or exactly at the cap everything is paid", () => {
    expect(capDailyPayout(lines(["a", 20_000], ["b", 30_000]), 50_000)).toEqual([
      { campaignId: "a", amountIdr: 20_000, paidIdr: 20_000, cappedIdr: 0 },
      { campaignId: "b", amountIdr: 30_000, paidIdr: 30_000, cappedIdr: 0 },
    ]);
    expect(capDailyPayout([], 50_000)).toEqual([]);
    expect(capDailyPayout(lines(["a", PAYOUT_DAILY_CAP_IDR]), PAYOUT_DAILY_CAP_IDR)[0]).toMatchObject({ paidIdr: 50_000, cappedIdr: 0 });
  });

  it("one rupiah over the cap: exactly one rupiah is capped", () => {
    const out = capDailyPayout(lines(["a", 20_000], ["b", 30_001]), 50_000);
    expect(out.map((l) => [l.paidIdr, l.cappedIdr])).toEqual([[20_000, 0], [30_000, 1]]);
  });

  it("over the cap: paid in proportion, the sum is the cap, ties go by campaignId whatever the input order", () => {
    const out = capDailyPayout(lines(["c", 30_000], ["a", 30_000], ["b", 30_000]), 50_000);
    expect(out.map((l) => [l.campaignId, l.paidIdr, l.cappedIdr])).toEqual([["c", 16_666, 13_334], ["a", 16_667, 13_333], ["b", 16_667, 13_333]]);
    expect(capDailyPayout(lines(["x", 80_000]), 50_000)[0]).toMatchObject({ paidIdr: 50_000, cappedIdr: 30_000 });
    expect(capDailyPayout(lines(["x", 80_000]), 0)[0]).toMatchObject({ paidIdr: 0, cappedIdr: 80_000 });
  });

  it("refuses amounts that are not whole non-negative rupiah", () => {
    expect(() => capDailyPayout(lines(["a", 10.5]), 50_000)).toThrow(RangeError);
    expect(() => capDailyPayout(lines(["a", -1]), 50_000)).toThrow(RangeError);
    expect(() => capDailyPayout(lines(["a", 1]), 0.5)).toThrow(RangeError);
  });

  it("property: whole rupiah, paid ≤ amount, paid + capped = amount, Σ paid = min(cap, Σ amount), order-independent", () => {
    const line = fc.record({ campaignId: fc.constantFrom("a", "b", "c", "d", "e"), amountIdr: fc.integer({ min: 0, max: 200_000 }) });
    fc.assert(
      fc.property(fc.uniqueArray(line, { selector: (l) => l.campaignId, maxLength: 5 }), fc.integer({ min: 0, max: 150_000 }), (ls, cap) => {
        const out = capDailyPayout(ls, cap);
        const total = ls.reduce((a, l) => a + l.amountIdr, 0);
        expect(out.reduce((a, l) => a + l.paidIdr, 0)).toBe(Math.min(cap, total));
        for (const [i, l] of out.entries()) {
          expect(Number.isInteger(l.paidIdr) && l.paidIdr >= 0 && l.paidIdr <= l.amountIdr).toBe(true);
          expect(l.paidIdr + l.cappedIdr).toBe(ls[i]!.amountIdr);
        }
        const byId = (xs: typeof out) => xs.map((l) => `${l.campaignId}:${l.amountIdr}:${l.paidIdr}`).sort();
        expect(byId(capDailyPayout([...ls].reverse(), cap))).toEqual(byId(out));
      }),
    );
  });
});
