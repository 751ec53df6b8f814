import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { assertBalanced, movePlan, UnbalancedPlanError } from "../src/ledger/plan";
import { bpsOf, MAX_AMOUNT, splitAmount } from "../src/lib/money";
import { idAfter, newId } from "../src/lib/ids";

describe("splitAmount", () => {
  it("gives floor shares and the remainder to the platform", () => {
    expect(splitAmount(101, { creator: 7000, platform: 2500, processing: 500 }, "platform")).toEqual({ creator: 70, platform: 26, processing: 5 });
    expect(splitAmount(100_000, { seller: 8500, platform: 1200, processing: 300 }, "platform")).toEqual({ seller: 85_000, platform: 12_000, processing: 3_000 });
    expect(splitAmount(0, { a: 5000, b: 5000 }, "b")).toEqual({ a: 0, b: 0 });
  });

  it("parts always sum to the amount", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_AMOUNT }), fc.integer({ min: 0, max: 10_000 }), (amount, bps) => {
        const parts = splitAmount(amount, { share: bps, platform: 10_000 - bps }, "platform");
        expect(parts.share + parts.platform).toBe(amount);
        expect(parts.share).toBe(Math.floor((amount * bps) / 10_000));
        expect(parts.platform).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it("refuses fractional or negative amounts and shares over 100%", () => {
    expect(() => splitAmount(10.5, { a: 100 }, "a")).toThrow(RangeError);
    expect(() => splitAmount(-1, { a: 100 }, "a")).toThrow(RangeError);
    expect(() => splitAmount(10, { a: 6000, b: 6000 }, "a")).toThrow(RangeError);
  });
});

describe("bpsOf", () => {
  it("rounds down", () => {
    expect(bpsOf(100_000, 1000)).toBe(10_000);
    expect(bpsOf(50_001, 200)).toBe(1000);
    expect(bpsOf(99, 1000)).toBe(9);
  });
});

describe("ledger plans", () => {
  it("refuse unbalanced or zero postings", () => {
    expect(() => assertBalanced([{ accountId: "a", asset: "COIN", amount: 5 }])).toThrow(UnbalancedPlanError);
    expect(() => assertBalanced([{ accountId: "a", asset: "COIN", amount: 5 }, { accountId: "b", asset: "IDR", amount: -5 }])).toThrow(UnbalancedPlanError);
    expect(() => assertBalanced([{ accountId: "a", asset: "COIN", amount: 0 }])).toThrow(UnbalancedPlanError);
    expect(() => assertBalanced([{ accountId: "a", asset: "COIN", amount: 0.5 }, { accountId: "b", asset: "COIN", amount: -0.5 }])).toThrow();
  });

  it("a move is two balanced legs between distinct accounts", () => {
    const plan = movePlan({ tx: { id: newId(), type: "transfer", asset: "COIN", amount: 9, userId: "u" }, from: "a", to: "b", audit: { actorId: "u", action: "t", subjectType: "u", subjectId: "b" }, now: 1 });
    expect(plan.postings).toEqual([{ accountId: "a", asset: "COIN", amount: -9 }, { accountId: "b", asset: "COIN", amount: 9 }]);
    expect(() => movePlan({ tx: { id: newId(), type: "transfer", asset: "COIN", amount: 9, userId: "u" }, from: "a", to: "a", audit: { actorId: "u", action: "t", subjectType: "u", subjectId: "b" }, now: 1 })).toThrow();
  });
});

describe("ids", () => {
  it("are 26-character ULIDs that sort by time", () => {
    const a = newId(1_700_000_000_000);
    const b = newId(1_700_000_000_001);
    expect(a).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a < b).toBe(true);
  });
});

describe("idAfter", () => {
  it("is the least id above: after the id and what is derived from it, before any later millisecond, carrying past Z", () => {
    const id = newId(1_700_000_000_000);
    const next = idAfter(id);
    expect(next > id && next > `${id}S0` && next > `${id}S99`).toBe(true);
    expect(next < newId(1_700_000_000_001)).toBe(true);
    expect(idAfter("01ARZ3NDEKTSV4RRFFQ69G5FAZ")).toBe("01ARZ3NDEKTSV4RRFFQ69G5FB0");
    expect(idAfter("01ARZ3NDEKZZZZZZZZZZZZZZZZ")).toBe("01ARZ3NDEM0000000000000000");
  });
});
