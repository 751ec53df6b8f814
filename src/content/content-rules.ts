import type { Config } from "../config";
import type { ContentPurchaseRow } from "../db/schema";
import { splitAmount } from "../lib/money";

/** SPEC §9: an unlock's price split creator / platform / payment processing; the remainder goes to the platform. */
export function contentSplit(price: number, config: Pick<Config, "CONTENT_CREATOR_BPS" | "CONTENT_PLATFORM_BPS" | "CONTENT_PROCESSING_BPS">) {
  return splitAmount(price, { creator: config.CONTENT_CREATOR_BPS, platform: config.CONTENT_PLATFORM_BPS, processing: config.CONTENT_PROCESSING_BPS }, "platform");
}

export type RefundKind = "full" | "creator_share";

/**
 * What a refund of a purchase gives back, by kind: `full` (the creator deleted the content, or a buyer's
 * request) returns the whole price, taken back from each share; `creator_share` (an admin removed the
 * content) returns only the creator's share, taken from the creator; platform and processing keep theirs.
 */
export function refundLegs(p: Pick<ContentPurchaseRow, "price" | "creatorShare" | "platformShare" | "processingShare">, kind: RefundKind) {
  return kind === "full"
    ? { buyer: p.price, creator: p.creatorShare, platform: p.platformShare, processing: p.processingShare }
    : { buyer: p.creatorShare, creator: p.creatorShare, platform: 0, processing: 0 };
}

export const BUYER_REFUND_WINDOW_MS = 24 * 3_600_000;

/** A buyer's own refund is granted within 24 h of the purchase, or at any time once the content is no longer available. */
export function buyerRefundAllowed(purchasedAt: number, now: number, contentAvailable: boolean): boolean {
  return now - purchasedAt <= BUYER_REFUND_WINDOW_MS || !contentAvailable;
}
