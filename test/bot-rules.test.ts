import { describe, expect, it } from "vitest";
import { activityPayout, classify, meanRate, median, populationParams, ratePerMinute, statsOf } from "../src/activity/bot-rules";
import { capLines, earnedLine } from "../src/jobs/batch-payouts";
import { loadConfig } from "../src/config";
import { businessDay, dayStart, previousBusinessDay } from "../src/lib/time";

const weights = { view: 1, like: 1, comment: 1 };
const k = { a: 3, b: 2 };

/** Deterministic normal draws (Box–Muller over a small LCG), so the population test is repeatable. */
function gaussian(seed: number) {
  let s = seed;
  const uniform = () => ((s = (s * 1664525 + 1013904223) % 2 ** 32) + 0.5) / 2 ** 32;
  return (mean: number, sd: number) => mean + sd * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

describe("rates", () => {
  it("Rate_per_min weights each type; R̄ averages active minutes only", () => {
    expect(ratePerMinute({ view: 3, like: 2 }, weights)).toBe(5);
    expect(ratePerMinute({ view: 3, comment: 2 }, { view: 1, like: 1, comment: 4 })).toBe(11);
    expect(meanRate([4, 0, 6, 0])).toBe(5);
    expect(meanRate([])).toBe(0);
    expect(median([1, 2, 3, 10])).toBe(2.5);
  });
});

describe("population parameters", () => {
  const cfg = { mode: "robust" as const, mu: 4, sigma: 2, minPopulation: 30 };

  it("robust: median and 1.4826 × MAD", () => {
    const rbars = Array.from({ length: 31 }, (_, i) => i);
    const p = populationParams(statsOf(rbars), cfg);
    expect(p).toMatchObject({ mu: 15, source: "robust" });
    expect(p.sigma).toBeCloseTo(1.4826 * 8, 10);
  });

  it("falls back to the configured values for a small population or zero MAD; fixed mode ignores the data", () => {
    expect(populationParams(statsOf([1, 2, 3]), cfg)).toEqual({ mu: 4, sigma: 2, source: "fallback_small_population" });
    expect(populationParams(statsOf(Array(40).fill(5)), cfg)).toEqual({ mu: 4, sigma: 2, source: "fallback_zero_mad" });
    expect(populationParams(statsOf(Array.from({ length: 40 }, (_, i) => i)), { ...cfg, mode: "fixed" })).toEqual({ mu: 4, sigma: 2, source: "fixed" });
  });

  it("fixed mode: the levels follow μ and σ exactly at the boundaries", () => {
    const p = { mu: 4, sigma: 2 };
    expect(classify(8, p, k).level).toBe("B");
    expect(classify(7.999999, p, k).level).toBe("C");
    expect(classify(10, p, k).level).toBe("A");
    expect(classify(9.999999, p, k).level).toBe("B");
    expect(classify(0, p, k)).toEqual({ level: "C", z: -2 });
  });

  it("seeded population: 200 normal users and 10 bots at 10–50× — robust mode flags every bot and no normal user as A", () => {
    const draw = gaussian(20261121);
    const normal = Array.from({ length: 200 }, () => Math.max(0.5, draw(4, 1.2)));
    const mean = normal.reduce((a, b) => a + b, 0) / normal.length;
    const bots = Array.from({ length: 10 }, (_, i) => mean * (10 + (40 * i) / 9));
    const p = populationParams(statsOf([...normal, ...bots]), { mode: "robust", mu: 4, sigma: 2, minPopulation: 30 });
    expect(p.source).toBe("robust");
    for (const r of bots) expect(["A", "B"]).toContain(classify(r, p, k).level);
    for (const r of normal) expect(classify(r, p, k).level).not.toBe("A");
    // Why not plain mean/σ: the bots inflate σ so much that the slowest bots pass as normal.
    const all = [...normal, ...bots];
    const m = all.reduce((a, b) => a + b, 0) / all.length;
    const sd = Math.sqrt(all.reduce((a, b) => a + (b - m) ** 2, 0) / all.length);
    expect(bots.filter((r) => classify(r, { mu: m, sigma: sd }, k).level === "C").length).toBeGreaterThan(0);
  });
});

describe("payout amounts", () => {
  it("units × rate fee, with the 10% creator payout fee on top (rounded down)", () => {
    const config = loadConfig({});
    const campaign = { id: "C", ownerId: "adv", name: "x", rateFeeIdr: null as number | null, status: "active" as const, createdAt: 0 };
    expect(activityPayout(37, 5)).toBe(185);
    const terms = (c: typeof campaign, units: number) => capLines([earnedLine({ day: "2026-11-20", userId: "u", campaign: c, units }, config)], config.PAYOUT_DAILY_CAP_IDR, config)[0];
    expect(terms(campaign, 37)).toMatchObject({ amountIdr: 185, feeIdr: 18, cappedIdr: 0, units: 37 });
    expect(terms({ ...campaign, rateFeeIdr: 7 }, 20)).toMatchObject({ amountIdr: 140, feeIdr: 14, cappedIdr: 0, units: 20 });
  });
});

describe("business days", () => {
  it("are WIB calendar days; the cron's day is the one that ended before its scheduled time", () => {
    expect(businessDay(Date.parse("2026-11-20T16:59:59Z"), "+07:00")).toBe("2026-11-20");
    expect(businessDay(Date.parse("2026-11-20T17:00:00Z"), "+07:00")).toBe("2026-11-21");
    expect(previousBusinessDay(Date.parse("2026-11-20T17:05:00Z"), "+07:00")).toBe("2026-11-20");
    expect(previousBusinessDay(Date.parse("2027-01-01T02:00:00Z"), "+07:00")).toBe("2026-12-31");
    expect(dayStart("2026-11-21", "+07:00")).toBe(Date.parse("2026-11-20T17:00:00Z"));
  });
});
