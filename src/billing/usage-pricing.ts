import { businessDay } from "../lib/time";

/** SPEC §8.1 usage-based pricing for advertisers, as pure functions (no database, no clock). */

export interface UsageTier {
  minUnits: number;
  discountBps: number;
}

export interface UsagePlan {
  creditLimitUnits: number;
  unitPriceIdr: number;
  overagePriceIdr: number;
  tiers: readonly UsageTier[];
}

export interface UsageCost {
  units: number;
  creditLimitUnits: number;
  includedUnits: number;
  overageUnits: number;
  tier: UsageTier | null;
  unitPriceIdr: number;
  overagePriceIdr: number;
  /** includedUnits × unitPriceIdr, before the discount. */
  includedCostIdr: number;
  discountIdr: number;
  overageCostIdr: number;
  /** includedCostIdr − discountIdr + overageCostIdr, exactly. */
  totalIdr: number;
}

function whole(name: string, n: number): bigint {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name} must be a whole number ≥ 0`);
  return BigInt(n);
}

function safe(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError("the cost is too large to represent exactly");
  return Number(n);
}

/**
 * Units up to the credit limit cost `unitPriceIdr` less the volume discount of the highest tier the
 * month's total reaches; units above it cost `overagePriceIdr` with no discount. The discount is
 * floor(included × price × bps / 10000): as for every share (SPEC §3), the rounding stays with the
 * platform. Computed in BigInt: units × price × 10000 can pass 2^53.
 */
export function usageCost(units: number, plan: UsagePlan): UsageCost {
  whole("units", units);
  whole("creditLimitUnits", plan.creditLimitUnits);
  const unitPrice = whole("unitPriceIdr", plan.unitPriceIdr);
  const overagePrice = whole("overagePriceIdr", plan.overagePriceIdr);
  let tier: UsageTier | null = null;
  for (const t of plan.tiers) {
    whole("tier minUnits", t.minUnits);
    if (whole("tier discountBps", t.discountBps) > 10_000n) throw new RangeError("a discount cannot exceed 10000 bps");
    if (t.minUnits <= units && (tier === null || t.minUnits > tier.minUnits)) tier = t;
  }

  const includedUnits = Math.min(units, plan.creditLimitUnits);
  const overageUnits = units - includedUnits;
  const includedCost = BigInt(includedUnits) * unitPrice;
  const discounted = includedCost - (includedCost * BigInt(tier?.discountBps ?? 0)) / 10_000n;
  const overageCost = BigInt(overageUnits) * overagePrice;
  return {
    units,
    creditLimitUnits: plan.creditLimitUnits,
    includedUnits,
    overageUnits,
    tier: tier && { minUnits: tier.minUnits, discountBps: tier.discountBps },
    unitPriceIdr: plan.unitPriceIdr,
    overagePriceIdr: plan.overagePriceIdr,
    includedCostIdr: safe(includedCost),
    discountIdr: safe(includedCost - discounted),
    overageCostIdr: safe(overageCost),
    totalIdr: safe(discounted + overageCost),
  };
}

/** A billing month, "YYYY-MM" (years 2000–2999). */
export const MONTH_PATTERN = /^2\d{3}-(0[1-9]|1[0-2])$/;

const pad = (n: number) => String(n).padStart(2, "0");
const monthString = (year: number, month1: number) => `${year}-${pad(month1)}`;

function parseMonth(month: string): { year: number; month1: number } {
  if (!MONTH_PATTERN.test(month)) throw new RangeError(`not a month: ${month}`);
  return { year: Number(month.slice(0, 4)), month1: Number(month.slice(5, 7)) };
}

/** The first and last business day ("YYYY-MM-DD") of a month. */
export function monthRange(month: string): { from: string; to: string } {
  const { year, month1 } = parseMonth(month);
  const lastDay = new Date(Date.UTC(year, month1, 0)).getUTCDate();
  return { from: `${month}-01`, to: `${month}-${pad(lastDay)}` };
}

/** The business month ("YYYY-MM") an instant falls in, at the business time zone offset. */
export function businessMonth(timeMs: number, tzOffset: string): string {
  return businessDay(timeMs, tzOffset).slice(0, 7);
}

/** The month before `month` ("YYYY-MM"). */
export function monthBefore(month: string): string {
  const { year, month1 } = parseMonth(month);
  return month1 === 1 ? monthString(year - 1, 12) : monthString(year, month1 - 1);
}

/** The business month that ended before the month `timeMs` falls in (the monthly job bills it). */
export function previousMonth(timeMs: number, tzOffset: string): string {
  return monthBefore(businessMonth(timeMs, tzOffset));
}
