import type { Config } from "../config";
import type { MarketplaceOrderRow } from "../db/schema";
import { splitAmount } from "../lib/money";

export type SellerTier = "basic" | "verified_business" | "premium_partner";

type TierConfig = Pick<Config, "MARKETPLACE_VERIFIED_MIN_SALES" | "MARKETPLACE_PREMIUM_MIN_SALES" | "MARKETPLACE_BASIC_COMMISSION_BPS" | "MARKETPLACE_VERIFIED_COMMISSION_BPS" | "MARKETPLACE_PREMIUM_COMMISSION_BPS">;

/** SPEC §11: the seller's tier at the moment of sale, from their sales in the last 30 days and their business verification. */
export function sellerTier(sales30d: number, verified: boolean, config: TierConfig): SellerTier {
  if (verified && sales30d >= config.MARKETPLACE_PREMIUM_MIN_SALES) return "premium_partner";
  if (verified && sales30d >= config.MARKETPLACE_VERIFIED_MIN_SALES) return "verified_business";
  return "basic";
}

export function commissionBps(tier: SellerTier, config: TierConfig): number {
  return tier === "premium_partner" ? config.MARKETPLACE_PREMIUM_COMMISSION_BPS : tier === "verified_business" ? config.MARKETPLACE_VERIFIED_COMMISSION_BPS : config.MARKETPLACE_BASIC_COMMISSION_BPS;
}

export interface OrderRates {
  commissionBps: number;
  processingBps: number;
  /** 0 without a valid referral code. */
  affiliateBps: number;
}

/**
 * The order's split (SPEC §3): the seller's share (what commission and processing leave, less the
 * affiliate's 500 bps), payment processing and the affiliate's share are each floor(amount × bps); the
 * platform gets the remainder, its commission and the rounding. Basic, 100,000: seller 85,000, platform
 * 12,000, processing 3,000; with an affiliate: 80,000 / 5,000. Basic, 199: seller 169, platform 25, processing 5.
 */
export function orderSplit(amount: number, rates: OrderRates) {
  const sellerBps = 10_000 - rates.commissionBps - rates.processingBps - rates.affiliateBps;
  return splitAmount(amount, { seller: sellerBps, processing: rates.processingBps, affiliate: rates.affiliateBps, platform: 0 }, "platform");
}

/**
 * What a refund gives back, by when it happens: before release everything (escrow, commission and
 * processing); after release the seller's and affiliate's shares are clawed back at the order's frozen
 * rates and the commission returned, while payment processing keeps its share.
 */
export function orderRefundLegs(o: Pick<MarketplaceOrderRow, "sellerShare" | "affiliateShare" | "platformShare" | "processingShare" | "amount">, when: "before_release" | "after_release") {
  return when === "before_release"
    ? { buyer: o.amount, escrow: o.sellerShare + o.affiliateShare, seller: 0, affiliate: 0, platform: o.platformShare, processing: o.processingShare }
    : { buyer: o.sellerShare + o.affiliateShare + o.platformShare, escrow: 0, seller: o.sellerShare, affiliate: o.affiliateShare, platform: o.platformShare, processing: 0 };
}
