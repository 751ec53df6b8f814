import { eq } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { paymentNotifications, paymentOrders, type PaymentOrderRow } from "../db/schema";
import { raiseAlert } from "../fraud/alerts";
import { GatewayError, midtransGateway } from "../integrations/midtrans";
import { ApiError } from "../lib/errors";
import { midtransAction, parseGatewayAmount, xenditAction, type GatewayAction } from "./deposit-rules";
import { settleOrder, type SettleOutcome } from "./settlement.service";
import { ipAllowed, verifyIrisSignature, verifyMidtransSignature, verifyXenditToken } from "./signatures";
import { findWithdrawalByReference, irisOutcome, settleWithdrawal } from "../payouts/withdrawals.service";

export interface WebhookContext {
  db: Db;
  config: Config;
  env: Env;
  clientIp: string | undefined;
}

function parseJson(raw: string): Record<string, unknown> {
  try {
    const value = JSON.parse(raw) as unknown;
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new ApiError("malformed_request", "The notification body is not a JSON object.");
}

async function findOrder(db: Db, id: unknown): Promise<PaymentOrderRow> {
  const order = typeof id === "string" && id.length <= 64 ? await db.query.paymentOrders.findFirst({ where: eq(paymentOrders.id, id) }) : undefined;
  if (!order) throw new ApiError("not_found", "No such order.");
  return order;
}

/** An authentic notification whose amount differs from the order is refused and flagged. */
async function assertAmount(db: Db, order: PaymentOrderRow, gateway: string, received: unknown): Promise<void> {
  if (parseGatewayAmount(received) === order.amountIdr) return;
  await raiseAlert(db, {
    userId: order.userId,
    alertType: "webhook_amount_mismatch",
    severity: "critical",
    details: { gateway, orderId: order.id, expectedIdr: order.amountIdr, received: String(received).slice(0, 40) },
  });
  throw new ApiError("amount_mismatch", "The notified amount does not match the order.");
}

async function record(db: Db, gateway: "midtrans" | "xendit" | "iris", orderId: string, status: string, outcome: string, raw: string) {
  await db.insert(paymentNotifications).values({ gateway, orderId, status, outcome, payload: raw.slice(0, 8192), receivedAt: Date.now() });
}

/** SPEC §6.2: verify, find, check the amount, confirm with the Get Status API, then settle once. */
export async function handleMidtransNotification(ctx: WebhookContext, raw: string): Promise<SettleOutcome> {
  if (!ipAllowed(ctx.clientIp, ctx.config.MIDTRANS_ALLOWED_IPS)) throw new ApiError("forbidden", "This source address may not send notifications.");
  const n = parseJson(raw);
  if (!(await verifyMidtransSignature(n, ctx.env.MIDTRANS_SERVER_KEY))) throw new ApiError("invalid_signature", "The notification signature is missing or wrong.");
  const order = await findOrder(ctx.db, n.order_id);
  await assertAmount(ctx.db, order, "midtrans", n.gross_amount);
  const notified = String(n.transaction_status ?? "");
  let status = notified;
  let action: GatewayAction = midtransAction(notified, typeof n.fraud_status === "string" ? n.fraud_status : undefined);

  if (ctx.config.MIDTRANS_VERIFY_STATUS && (action === "credit" || action === "reverse")) {
    let confirmed;
    try {
      confirmed = await midtransGateway(ctx.config, ctx.env).status(order.id);
    } catch (error) {
      if (error instanceof GatewayError) throw new ApiError("gateway_error", "Could not confirm the status with Midtrans; retry later.");
      throw error;
    }
    await assertAmount(ctx.db, order, "midtrans-status", confirmed.grossAmount);
    status = confirmed.transactionStatus;
    action = midtransAction(confirmed.transactionStatus, confirmed.fraudStatus);
  }
  const outcome = await settleOrder(ctx.db, ctx.config, order, action, status);
  await record(ctx.db, "midtrans", order.id, notified, outcome, raw);
  return outcome;
}

/** SPEC §6.3: x-callback-token, then the same once-only settlement keyed by our order id. */
export async function handleXenditNotification(ctx: WebhookContext, raw: string, callbackToken: string | undefined): Promise<SettleOutcome> {
  if (!verifyXenditToken(callbackToken, ctx.env.XENDIT_CALLBACK_TOKEN)) throw new ApiError("invalid_signature", "The callback token is missing or wrong.");
  const n = parseJson(raw);
  const order = await findOrder(ctx.db, n.external_id);
  const status = String(n.status ?? "");
  const action = xenditAction(status);
  if (action === "credit") await assertAmount(ctx.db, order, "xendit", n.paid_amount ?? n.amount);
  const outcome = await settleOrder(ctx.db, ctx.config, order, action, status);
  await record(ctx.db, "xendit", order.id, status, outcome, raw);
  return outcome;
}

/** SPEC §7: Iris-Signature = SHA-512(raw body + merchant key); completed posts the hold, failed/rejected voids it, once. */
export async function handleIrisNotification(ctx: WebhookContext, raw: string, signature: string | undefined): Promise<"completed" | "failed" | "duplicate" | "ignored"> {
  if (!(await verifyIrisSignature(raw, signature, ctx.env.MIDTRANS_IRIS_MERCHANT_KEY))) throw new ApiError("invalid_signature", "The Iris-Signature is missing or wrong.");
  const n = parseJson(raw);
  const withdrawal = typeof n.reference_no === "string" && n.reference_no.length <= 100 ? await findWithdrawalByReference(ctx.db, n.reference_no) : undefined;
  if (!withdrawal) throw new ApiError("not_found", "No withdrawal with that reference.");
  const status = String(n.status ?? "");
  const outcome = irisOutcome(status);
  const result = outcome ? await settleWithdrawal(ctx.db, withdrawal, outcome, outcome === "failed" ? `iris_${status}` : null) : "ignored";
  await record(ctx.db, "iris", withdrawal.id, status, result, raw);
  return result;
}
