import { eq } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { paymentOrders, type CampaignRow, type CoinPackageRow, type PaymentOrderRow } from "../db/schema";
import { GatewayError, midtransGateway } from "../integrations/midtrans";
import { xenditGateway } from "../integrations/xendit";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { checkFailedPayments } from "./settlement.service";

export type Gateway = "midtrans" | "xendit";

export type OrderSubject = { kind: "coin_package"; pkg: CoinPackageRow } | { kind: "campaign_deposit"; campaign: CampaignRow; amountIdr: number };

/** Order ids are what the gateways see as order_id / external_id (Midtrans allows up to 50 chars). */
const orderId = (now: number) => `ORD-${newId(now)}`;

function orderValues(userId: string, gateway: Gateway, subject: OrderSubject, deviceFingerprint: string | null, now: number): PaymentOrderRow {
  const base = { id: orderId(now), userId, gateway, status: "pending" as const, deviceFingerprint, createdAt: now, updatedAt: now };
  const empty = { gatewayStatus: null, gatewayRef: null, redirectUrl: null, failureReason: null, paidAt: null, failedAt: null, reversedAmount: 0, refundedIdr: 0 };
  if (subject.kind === "coin_package") {
    const p = subject.pkg;
    return { ...base, ...empty, kind: "coin_package", packageId: p.id, campaignId: null, amountIdr: p.price, coins: p.coins, bonusCoins: p.bonusCoins };
  }
  return { ...base, ...empty, kind: "campaign_deposit", packageId: null, campaignId: subject.campaign.id, amountIdr: subject.amountIdr, coins: 0, bonusCoins: 0 };
}

function itemFor(order: PaymentOrderRow) {
  if (order.kind === "campaign_deposit") return { id: `campaign-${order.campaignId}`, price: order.amountIdr, quantity: 1, name: "Campaign budget deposit" };
  const bonus = order.bonusCoins > 0 ? ` + ${order.bonusCoins} bonus` : "";
  return { id: order.packageId ?? "package", price: order.amountIdr, quantity: 1, name: `${order.coins} coins${bonus}`.slice(0, 50) };
}

/**
 * Records a pending order, then opens it at the gateway. A gateway that fails, times out or refuses
 * leaves the order failed and answers 502; nothing is credited until an authentic notification.
 */
export async function openOrder(
  db: Db,
  config: Config,
  env: Env,
  input: { userId: string; gateway: Gateway; subject: OrderSubject; deviceFingerprint: string | null },
): Promise<{ orderId: string; token?: string; redirectUrl: string; invoiceUrl?: string }> {
  const now = Date.now();
  const order = orderValues(input.userId, input.gateway, input.subject, input.deviceFingerprint, now);
  await db.insert(paymentOrders).values(order);
  try {
    if (input.gateway === "midtrans") {
      const snap = await midtransGateway(config, env).createSnap({ orderId: order.id, grossAmount: order.amountIdr, items: [itemFor(order)], customerId: order.userId });
      await db.update(paymentOrders).set({ gatewayRef: snap.token, redirectUrl: snap.redirectUrl, updatedAt: Date.now() }).where(eq(paymentOrders.id, order.id));
      return { orderId: order.id, token: snap.token, redirectUrl: snap.redirectUrl };
    }
    const invoice = await xenditGateway(config, env).createInvoice({ externalId: order.id, amount: order.amountIdr, description: itemFor(order).name });
    await db.update(paymentOrders).set({ gatewayRef: invoice.id, redirectUrl: invoice.invoiceUrl, updatedAt: Date.now() }).where(eq(paymentOrders.id, order.id));
    return { orderId: order.id, redirectUrl: invoice.invoiceUrl, invoiceUrl: invoice.invoiceUrl };
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    const failedAt = Date.now();
    await db
      .update(paymentOrders)
      // `create_*`: our side of opening the order failed; it does not count as the user's failed payment.
      .set({ status: "failed", failureReason: `create_${error.reason}`, failedAt, updatedAt: failedAt })
      .where(eq(paymentOrders.id, order.id));
    await checkFailedPayments(db, config, order.userId, failedAt);
    throw new ApiError("gateway_error", `${error.message} The order ${order.id} was marked failed; nothing was charged.`);
  }
}
