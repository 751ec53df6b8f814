import { and, count, eq, gte } from "drizzle-orm";
import type { Config } from "../config";
import { checkRules } from "../fraud/engine";
import type { Db } from "../db/client";
import { accounts, paymentOrders, type PaymentOrderRow } from "../db/schema";
import { alertStatement } from "../fraud/alerts";
import { campaignAccountId, userAccountId } from "../ledger/accounts";
import { applyPlan } from "../ledger/executor";
import { entryPlan } from "../ledger/plan";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { creditPostings, reversalPostings, type GatewayAction } from "./deposit-rules";

export type SettleOutcome = "credited" | "duplicate" | "failed" | "reversed" | "ignored";

/** multiple_failed_payments: failed orders of the user in the last hour, after each new failure. */
export async function checkFailedPayments(db: Db, config: Config, userId: string, now: number) {
  const [row] = await db
    .select({ n: count() })
    .from(paymentOrders)
    .where(and(eq(paymentOrders.userId, userId), eq(paymentOrders.status, "failed"), gte(paymentOrders.failedAt, now - 3_600_000)));
  await checkRules(db, config, { userId, deviceFingerprint: null }, { event: "payment_failed", failedLastHour: row?.n ?? 0 }, now);
}

const walletOf = (order: PaymentOrderRow) => (order.kind === "campaign_deposit" ? campaignAccountId(order.campaignId!) : userAccountId(order.userId, "COIN"));

/**
 * Applies what a confirmed gateway status means to an order. Each outcome happens at most once:
 * the credit under once-key `deposit:<order>`, the reversal under `reversal:<order>`, so any number
 * of notifications in any order credit once and reverse once.
 */
export async function settleOrder(db: Db, config: Config, order: PaymentOrderRow, action: GatewayAction, gatewayStatus: string): Promise<SettleOutcome> {
  const now = Date.now();
  if (action === "wait") return "ignored";
  if (action === "fail") {
    // A late failure cannot undo money already received; only a pending order fails.
    const failed = await db
      .update(paymentOrders)
      .set({ status: "failed", gatewayStatus, failureReason: `gateway_${gatewayStatus}`, failedAt: now, updatedAt: now })
      .where(and(eq(paymentOrders.id, order.id), eq(paymentOrders.status, "pending")))
      .returning({ id: paymentOrders.id });
    if (failed.length === 0) return "ignored";
    await checkFailedPayments(db, config, order.userId, now);
    return "failed";
  }
  if (action === "credit") return credit(db, order, gatewayStatus, now);
  return reverse(db, order, gatewayStatus, now);
}

async function credit(db: Db, order: PaymentOrderRow, gatewayStatus: string, now: number): Promise<SettleOutcome> {
  const coinPackage = order.kind === "coin_package";
  const plan = entryPlan({
    tx: {
      id: newId(now),
      type: "deposit",
      asset: coinPackage ? "COIN" : "IDR",
      amount: coinPackage ? order.coins + order.bonusCoins : order.amountIdr,
      userId: order.userId,
      metadata: {
        orderId: order.id,
        paymentMethod: order.gateway,
        priceIdr: order.amountIdr,
        ...(coinPackage ? { packageId: order.packageId, coinsCredited: order.coins + order.bonusCoins, bonusCoins: order.bonusCoins } : { campaignId: order.campaignId }),
      },
      deviceFingerprint: order.deviceFingerprint,
    },
    postings: creditPostings(order),
    sideAccountId: walletOf(order),
    onceKeys: [`deposit:${order.id}`],
    audit: { actorId: `gateway:${order.gateway}`, action: "payment.credit", subjectType: "payment_order", subjectId: order.id, details: { gatewayStatus } },
    now,
  });
  try {
    await applyPlan(db, plan, {
      // An order that failed earlier (e.g. an expire that arrived before a confirmed settlement) is paid now.
      alongside: [db.update(paymentOrders).set({ status: "paid", gatewayStatus, paidAt: now, failureReason: null, updatedAt: now }).where(eq(paymentOrders.id, order.id))],
    });
    return "credited";
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_applied") return "duplicate";
    throw error;
  }
}

/**
 * Refund or chargeback after a credit: the credit is reversed. What the wallet no longer holds
 * becomes recorded debt instead of a silent failure; an alert goes to the admins. The balance read
 * only sizes the split: the batch's CHECK still guards it, and a race simply retries.
 */
async function reverse(db: Db, order: PaymentOrderRow, gatewayStatus: string, now: number): Promise<SettleOutcome> {
  if (order.status !== "paid") return "ignored";
  for (let attempt = 0; attempt < 3; attempt++) {
    const wallet = await db.query.accounts.findFirst({ where: eq(accounts.id, walletOf(order)) });
    const available = wallet ? wallet.balance - wallet.locked : 0;
    const postings = reversalPostings(order, available);
    const debt = -(postings.at(-1)?.amount ?? 0);
    const coinPackage = order.kind === "coin_package";
    const plan = entryPlan({
      tx: {
        id: newId(now),
        type: "refund",
        asset: coinPackage ? "COIN" : "IDR",
        amount: coinPackage ? order.coins + order.bonusCoins : order.amountIdr,
        userId: order.userId,
        metadata: { orderId: order.id, paymentMethod: order.gateway, gatewayStatus, debtRecorded: debt },
      },
      postings,
      sideAccountId: walletOf(order),
      onceKeys: [`reversal:${order.id}`],
      audit: { actorId: `gateway:${order.gateway}`, action: "payment.reverse", subjectType: "payment_order", subjectId: order.id, details: { gatewayStatus, debt } },
      now,
    });
    try {
      await applyPlan(db, plan, {
        alongside: [
          db.update(paymentOrders).set({ status: "reversed", gatewayStatus, updatedAt: now }).where(eq(paymentOrders.id, order.id)),
          alertStatement(db, {
            userId: order.userId,
            alertType: gatewayStatus.includes("chargeback") ? "chargeback" : "payment_refunded",
            severity: "high",
            details: { orderId: order.id, amountIdr: order.amountIdr, gatewayStatus, debtRecorded: debt },
          }, now),
        ],
      });
      return "reversed";
    } catch (error) {
      if (error instanceof ApiError && error.code === "already_applied") return "duplicate";
      if (!(error instanceof ApiError && error.code === "insufficient_funds")) throw error;
    }
  }
  throw new Error(`reversal of ${order.id} kept racing with spends`);
}
