import type { PaymentOrderRow } from "../db/schema";
import { campaignAccountId, systemAccountId, userAccountId, userDebtAccountId } from "../ledger/accounts";
import type { Posting } from "../ledger/plan";
import { ceilMulDiv } from "../lib/money";

/** What a gateway status means for an order (SPEC §6.2, §6.3). */
export type GatewayAction = "credit" | "wait" | "fail" | "reverse";

export function midtransAction(transactionStatus: string, fraudStatus: string | undefined): GatewayAction {
  switch (transactionStatus) {
    case "settlement":
      return "credit";
    case "capture":
      // A captured card payment is money only once fraud screening accepts it; "challenge" waits.
      return fraudStatus === "accept" ? "credit" : fraudStatus === "deny" ? "fail" : "wait";
    case "deny":
    case "cancel":
    case "expire":
    case "failure":
      return "fail";
    case "refund":
    case "partial_refund":
    case "chargeback":
    case "partial_chargeback":
      return "reverse";
    default:
      return "wait";
  }
}

/**
 * The `status_code` Midtrans sends with each `transaction_status` (200 success, 201 pending or challenged,
 * 202 denied, 407 expired). A notification whose pair disagrees was not produced by Midtrans' state
 * machine and is refused before anything else is looked at.
 */
export function statusCodeAgrees(transactionStatus: string, statusCode: string, fraudStatus: string | undefined): boolean {
  const expected: Record<string, string[]> = {
    pending: ["201"],
    authorize: ["200", "201"],
    capture: fraudStatus === "challenge" ? ["201"] : ["200"],
    settlement: ["200"],
    deny: ["202"],
    failure: ["202"],
    cancel: ["200", "202"],
    expire: ["407", "202"],
    refund: ["200"],
    partial_refund: ["200"],
    chargeback: ["200"],
    partial_chargeback: ["200"],
  };
  // Own keys only: a status named like an Object.prototype member ("constructor") is no status.
  return Object.hasOwn(expected, transactionStatus) && expected[transactionStatus]!.includes(statusCode);
}

/**
 * Midtrans' `cancel` is final: it voids a card capture before settlement, so the money never arrives.
 * An order it failed is never credited afterwards, and a credit it finds (a capture credited first) is
 * reversed in full. Other failures (deny, expire) never un-pay an order, and a later confirmed payment
 * may overrule them (Snap lets the buyer try again after a denied card).
 */
export const CANCELLED = "cancel";

/** What a gateway action does to an order in its current state (the cancel rule above). */
export function actionForOrder(order: Pick<PaymentOrderRow, "status">, transactionStatus: string, action: GatewayAction): GatewayAction {
  return action === "fail" && transactionStatus === "cancel" && order.status === "paid" ? "reverse" : action;
}

export function xenditAction(status: string): GatewayAction {
  if (status === "PAID" || status === "SETTLED") return "credit";
  if (status === "EXPIRED") return "fail";
  return "wait";
}

/**
 * Midtrans sends amounts as strings ("10000.00"). The order's amount is whole rupiah, so only an
 * exact whole value (optionally with ".00") matches; anything else is a mismatch.
 */
export function parseGatewayAmount(value: unknown): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : null;
  if (typeof value !== "string" || !/^\d{1,15}(\.0{1,2})?$/.test(value)) return null;
  return Number.parseInt(value, 10);
}

/**
 * The postings that credit a settled order: coins (plus bonus) issued to the buyer against the rupiah
 * received at the gateway, or the rupiah credited to the campaign's budget.
 */
export function creditPostings(order: PaymentOrderRow): Posting[] {
  const clearing = { accountId: systemAccountId("gateway_clearing", "IDR"), asset: "IDR" as const, amount: -order.amountIdr };
  if (order.kind === "campaign_deposit") {
    return [clearing, { accountId: campaignAccountId(order.campaignId!), asset: "IDR", amount: order.amountIdr }];
  }
  const coins = order.coins + order.bonusCoins;
  return [
    clearing,
    { accountId: systemAccountId("platform_revenue", "IDR"), asset: "IDR", amount: order.amountIdr },
    { accountId: systemAccountId("issuance", "COIN"), asset: "COIN", amount: -coins },
    { accountId: userAccountId(order.userId, "COIN"), asset: "COIN", amount: coins },
  ];
}

/** What the order credited, in the credited asset: coins plus bonus, or the campaign deposit's rupiah. */
export const creditedAmount = (order: PaymentOrderRow) => (order.kind === "campaign_deposit" ? order.amountIdr : order.coins + order.bonusCoins);

/**
 * SPEC §6.2: after refunds or chargebacks totalling `refundedIdr` (cumulative, as the Status API
 * confirms it), the credit reversed in all is ceil(credited × refundedIdr / gross), never more than the
 * credit; what this refund takes is that total minus what earlier reversals took. 1,000 + 150 coins for
 * Rp 85,000: Rp 10,000 refunded → 136 coins; then a full refund → the remaining 1,014.
 */
export function reversalStep(order: Pick<PaymentOrderRow, "kind" | "coins" | "bonusCoins" | "amountIdr" | "reversedAmount" | "refundedIdr">, refundedIdr: number) {
  const credited = creditedAmount(order as PaymentOrderRow);
  const cumulativeIdr = Math.min(Math.max(refundedIdr, 0), order.amountIdr);
  // Exact: credited × refunded can pass 2^53 for a large campaign deposit, where a float ceil overshoots.
  const target = Math.min(credited, ceilMulDiv(credited, cumulativeIdr, order.amountIdr));
  return {
    cumulativeIdr,
    reversedTotal: Math.max(target, order.reversedAmount),
    amount: Math.max(0, target - order.reversedAmount),
    idrAmount: Math.max(0, cumulativeIdr - order.refundedIdr),
    // Final only once every coin AND every rupiah is back: rounding may take the last coin before the last rupiah is refunded.
    complete: target >= credited && cumulativeIdr >= order.amountIdr,
  };
}

/**
 * The opposite of (part of) the credit: `amount` of the credited asset and `idrAmount` of the rupiah
 * received. Whatever the wallet (or budget) no longer holds is booked to the owner's debt account
 * instead of failing: `available` is what can still be taken.
 */
export function reversalPostings(order: PaymentOrderRow, available: number, step: { amount: number; idrAmount: number } = { amount: creditedAmount(order), idrAmount: order.amountIdr }): Posting[] {
  const take = Math.max(0, Math.min(available, step.amount));
  const debt = step.amount - take;
  if (order.kind === "campaign_deposit") {
    return [
      { accountId: systemAccountId("gateway_clearing", "IDR"), asset: "IDR", amount: step.amount },
      { accountId: campaignAccountId(order.campaignId!), asset: "IDR", amount: -take },
      { accountId: userDebtAccountId(order.userId, "IDR"), asset: "IDR", amount: -debt },
    ];
  }
  return [
    { accountId: systemAccountId("gateway_clearing", "IDR"), asset: "IDR", amount: step.idrAmount },
    { accountId: systemAccountId("platform_revenue", "IDR"), asset: "IDR", amount: -step.idrAmount },
    { accountId: systemAccountId("issuance", "COIN"), asset: "COIN", amount: step.amount },
    { accountId: userAccountId(order.userId, "COIN"), asset: "COIN", amount: -take },
    { accountId: userDebtAccountId(order.userId, "COIN"), asset: "COIN", amount: -debt },
  ];
}
