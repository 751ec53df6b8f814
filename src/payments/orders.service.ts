import { eq, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { campaigns, coinPackages, paymentOrders, type PaymentOrderRow } from "../db/schema";
import { applyStatements } from "../ledger/executor";
import { checkGuards } from "../ledger/guards";
import { callerNotBanned, firstSight } from "../users/users.guards";
import { GatewayError, midtransGateway } from "../integrations/midtrans";
import { xenditGateway } from "../integrations/xendit";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";

export type Gateway = "midtrans" | "xendit";

/** What an order buys: an active coin package, or rupiah for one of the caller's own campaigns. */
export type OrderSubject = { kind: "coin_package"; packageId: string } | { kind: "campaign_deposit"; campaignId: string; amountIdr: number };

/** Order ids are what the gateways see as order_id / external_id (Midtrans allows up to 50 chars). */
const orderId = (now: number) => `ORD-${newId(now)}`;

/**
 * The pending order's insert, decided in SQL: it copies the package's price and coins only while the
 * package is active, or names the campaign only if the caller owns it. No row inserted means no such
 * package or campaign (of theirs).
 */
function orderInsert(db: Db, userId: string, gateway: Gateway, subject: OrderSubject, deviceFingerprint: string | null, now: number) {
  const base = { id: orderId(now), userId, gateway, status: "pending" as const, deviceFingerprint, createdAt: now, updatedAt: now };
  if (subject.kind === "coin_package") {
    return insertWhere(
      db,
      paymentOrders,
      { ...base, kind: "coin_package", packageId: sql`${coinPackages.id}`, amountIdr: sql`${coinPackages.price}`, coins: sql`${coinPackages.coins}`, bonusCoins: sql`${coinPackages.bonusCoins}` },
      sql`from ${coinPackages} where ${coinPackages.id} = ${subject.packageId} and ${coinPackages.isActive} = 1`,
    ).returning();
  }
  return insertWhere(
    db,
    paymentOrders,
    { ...base, kind: "campaign_deposit", campaignId: sql`${campaigns.id}`, amountIdr: subject.amountIdr },
    sql`from ${campaigns} where ${campaigns.id} = ${subject.campaignId} and ${campaigns.ownerId} = ${userId}`,
  ).returning();
}

function itemFor(order: PaymentOrderRow) {
  if (order.kind === "campaign_deposit") return { id: `campaign-${order.campaignId}`, price: order.amountIdr, quantity: 1, name: "Campaign budget deposit" };
  const bonus = order.bonusCoins > 0 ? ` + ${order.bonusCoins} bonus` : "";
  return { id: order.packageId ?? "package", price: order.amountIdr, quantity: 1, name: `${order.coins} coins${bonus}`.slice(0, 50) };
}

/**
 * Records a pending order in ONE batch (first sight of the caller, a guard refusing a banned one, the
 * order copied from the package or campaign in SQL), then opens it at the gateway. The gateway's own
 * reference arrives with its notification. A gateway that fails, times out or refuses leaves the order
 * failed and answers 502; nothing is credited until an authentic notification.
 */
export async function openOrder(
  db: Db,
  config: Config,
  env: Env,
  input: { userId: string; gateway: Gateway; subject: OrderSubject; deviceFingerprint: string | null },
): Promise<{ orderId: string; token?: string; redirectUrl: string; invoiceUrl?: string }> {
  const now = Date.now();
  const [, , inserted] = await applyStatements(db, [firstSight(db, input.userId, now), checkGuards(db, callerNotBanned(input.userId)), orderInsert(db, input.userId, input.gateway, input.subject, input.deviceFingerprint, now)]);
  const order = (inserted as PaymentOrderRow[])[0];
  if (!order) throw new ApiError("not_found", input.subject.kind === "coin_package" ? "No active coin package with that id." : "No such campaign of yours.");
  try {
    if (input.gateway === "midtrans") {
      const snap = await midtransGateway(config, env).createSnap({ orderId: order.id, grossAmount: order.amountIdr, items: [itemFor(order)], customerId: order.userId });
      return { orderId: order.id, token: snap.token, redirectUrl: snap.redirectUrl };
    }
    const invoice = await xenditGateway(config, env).createInvoice({ externalId: order.id, amount: order.amountIdr, description: itemFor(order).name });
    return { orderId: order.id, redirectUrl: invoice.invoiceUrl, invoiceUrl: invoice.invoiceUrl };
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    const failedAt = Date.now();
    await db
      .update(paymentOrders)
      // `create_*`: our side of opening the order failed; it does not count as the user's failed payment.
      .set({ status: "failed", failureReason: `create_${error.reason}`, failedAt, updatedAt: failedAt })
      .where(eq(paymentOrders.id, order.id));
    throw new ApiError("gateway_error", `${error.message} The order ${order.id} was marked failed; nothing was charged.`);
  }
}
