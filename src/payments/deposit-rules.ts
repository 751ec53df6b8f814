import type { PaymentOrderRow } from "../db/schema";
import { campaignAccountId, systemAccountId, userAccountId, userDebtAccountId } from "../ledger/accounts";
import type { Posting } from "../ledger/plan";

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

/**
 * The exact opposite of the credit, except that whatever the wallet (or budget) no longer holds is
 * booked to the owner's debt account instead of failing: `available` is what can still be taken.
 */
export function reversalPostings(order: PaymentOrderRow, available: number): Posting[] {
  const credited = creditPostings(order);
  const walletLeg = credited[credited.length - 1]!;
  const take = Math.max(0, Math.min(available, walletLeg.amount));
  const debt = walletLeg.amount - take;
  return [
    ...credited.slice(0, -1).map((p) => ({ ...p, amount: -p.amount })),
    { ...walletLeg, amount: -take },
    { accountId: userDebtAccountId(order.userId, walletLeg.asset), asset: walletLeg.asset, amount: -debt },
  ];
}
