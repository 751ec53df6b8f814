import { eq } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { paymentNotifications, paymentOrders, withdrawals, type PaymentOrderRow, type WithdrawalRow } from "../db/schema";
import { dedupeKey, raiseAlert } from "../fraud/alerts";
import { GatewayError, midtransGateway } from "../integrations/midtrans";
import { ApiError } from "../lib/errors";
import { actionForOrder, CANCELLED, midtransAction, parseGatewayAmount, statusCodeAgrees, xenditAction, type GatewayAction } from "./deposit-rules";
import { CREDITABLE, creditable, FINAL, settleOrder, type Confirmed, type SettleOutcome } from "./settlement.service";
import { ipAllowed, verifyIrisSignature, verifyMidtransSignature, verifyXenditToken } from "./signatures";
import { findWithdrawal, findWithdrawalByReference, irisOutcome, settleWithdrawal, withdrawalIdFromNotes } from "../payouts/withdrawals.service";

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

/** The order a notification names; an order of the other gateway is as unknown as a missing one. */
async function findOrder(db: Db, id: unknown, gateway: PaymentOrderRow["gateway"]): Promise<PaymentOrderRow> {
  const order = typeof id === "string" && id.length <= 64 ? await db.query.paymentOrders.findFirst({ where: eq(paymentOrders.id, id) }) : undefined;
  if (!order || order.gateway !== gateway) throw new ApiError("not_found", "No such order.");
  return order;
}

/**
 * An authentic notification whose amount differs from the order, or is in another currency than rupiah (when
 * it names one), is refused and flagged (once per order and amount, however often it is retried).
 */
async function assertAmount(db: Db, order: PaymentOrderRow, gateway: string, received: unknown, currency: unknown): Promise<void> {
  const rupiah = currency === undefined || currency === null || currency === "IDR";
  if (rupiah && parseGatewayAmount(received) === order.amountIdr) return;
  const printable = (v: unknown) => (typeof v === "string" || typeof v === "number" ? String(v) : typeof v);
  const shown = `${printable(received)}${rupiah ? "" : ` ${printable(currency)}`}`.slice(0, 40);
  await raiseAlert(db, {
    userId: order.userId,
    alertType: "webhook_amount_mismatch",
    severity: "critical",
    details: { gateway, orderId: order.id, expectedIdr: order.amountIdr, received: shown },
    dedupeKey: await dedupeKey("webhook_amount_mismatch", gateway, order.id, shown),
  });
  throw new ApiError("amount_mismatch", "The notified amount does not match the order.");
}

async function record(db: Db, gateway: "midtrans" | "xendit" | "iris", orderId: string, status: string, outcome: string, raw: string) {
  await db.insert(paymentNotifications).values({ gateway, orderId, status, outcome, payload: raw.slice(0, 8192), receivedAt: Date.now() });
}

/** Whether an action could still change this order; if not, nothing (not even the Status API) is asked. */
function canChange(order: PaymentOrderRow, action: GatewayAction): boolean {
  if (FINAL.includes(order.status) || action === "wait") return false;
  if (action === "credit") return creditable(order);
  // A cancelled order is final: a repeated cancel, or a later failure, has nothing left to change.
  if (action === "fail") return CREDITABLE.includes(order.status) && order.gatewayStatus !== CANCELLED;
  return true;
}

/** What a notification that cannot change its order answers: a repeat of what happened, or nothing to do. */
const unchanged = (action: GatewayAction): SettleOutcome => (action === "credit" || action === "reverse" ? "duplicate" : "ignored");

/**
 * SPEC §6.2: verify the signature and that status_code agrees with transaction_status, find the order
 * (of this gateway), check the amount, and — unless the notification cannot change the order — confirm
 * the status (and the refunded amount) with the Get Status API, then settle once.
 */
export async function handleMidtransNotification(ctx: WebhookContext, raw: string): Promise<SettleOutcome> {
  if (!ipAllowed(ctx.clientIp, ctx.config.MIDTRANS_ALLOWED_IPS)) throw new ApiError("forbidden", "This source address may not send notifications.");
  const n = parseJson(raw);
  if (!(await verifyMidtransSignature(n, ctx.env.MIDTRANS_SERVER_KEY))) throw new ApiError("invalid_signature", "The notification signature is missing or wrong.");
  if (typeof n.transaction_status !== "string") throw new ApiError("invalid_notification", "transaction_status is missing or not a string.");
  const notified = n.transaction_status;
  const fraud = typeof n.fraud_status === "string" ? n.fraud_status : undefined;
  if (!statusCodeAgrees(notified, String(n.status_code), fraud)) throw new ApiError("invalid_notification", "status_code does not agree with transaction_status.");
  const order = await findOrder(ctx.db, n.order_id, "midtrans");
  await assertAmount(ctx.db, order, "midtrans", n.gross_amount, n.currency);
  let action: GatewayAction = actionForOrder(order, notified, midtransAction(notified, fraud));
  if (!canChange(order, action)) {
    const outcome = unchanged(action);
    await record(ctx.db, "midtrans", order.id, notified, outcome, raw);
    return outcome;
  }
  let confirmed: Confirmed = { gatewayStatus: notified, refundedIdr: parseGatewayAmount(n.refund_amount) ?? undefined, gatewayRef: typeof n.transaction_id === "string" ? n.transaction_id.slice(0, 100) : undefined };
  if (ctx.config.MIDTRANS_VERIFY_STATUS) {
    let status;
    try {
      status = await midtransGateway(ctx.config, ctx.env).status(order.id);
    } catch (error) {
      if (error instanceof GatewayError) throw new ApiError("gateway_error", "Could not confirm the status with Midtrans; retry later.");
      throw error;
    }
    await assertAmount(ctx.db, order, "midtrans-status", status.grossAmount, status.currency);
    action = actionForOrder(order, status.transactionStatus, midtransAction(status.transactionStatus, status.fraudStatus));
    confirmed = { gatewayStatus: status.transactionStatus, refundedIdr: parseGatewayAmount(status.refundAmount) ?? undefined, gatewayRef: status.transactionId };
  }
  // A partial refund reverses what was refunded: without the amount, nothing is reversed until Midtrans says it.
  if (action === "reverse" && confirmed.gatewayStatus.startsWith("partial_") && confirmed.refundedIdr === undefined) {
    throw new ApiError("gateway_error", "Midtrans confirmed a partial refund without its amount; retry later.");
  }
  const outcome = await settleOrder(ctx.db, ctx.config, order, action, confirmed);
  await record(ctx.db, "midtrans", order.id, notified, outcome, raw);
  return outcome;
}

/** SPEC §6.3: x-callback-token, then the same once-only settlement keyed by our order id (Xendit orders only). */
export async function handleXenditNotification(ctx: WebhookContext, raw: string, callbackToken: string | undefined): Promise<SettleOutcome> {
  if (!verifyXenditToken(callbackToken, ctx.env.XENDIT_CALLBACK_TOKEN)) throw new ApiError("invalid_signature", "The callback token is missing or wrong.");
  const n = parseJson(raw);
  const order = await findOrder(ctx.db, n.external_id, "xendit");
  if (typeof n.status !== "string") throw new ApiError("invalid_notification", "status is missing or not a string.");
  const status = n.status;
  const action = xenditAction(status);
  if (action === "credit") await assertAmount(ctx.db, order, "xendit", n.paid_amount ?? n.amount, n.currency);
  const outcome = canChange(order, action)
    ? await settleOrder(ctx.db, ctx.config, order, action, { gatewayStatus: status, gatewayRef: typeof n.id === "string" ? n.id.slice(0, 100) : undefined })
    : unchanged(action);
  await record(ctx.db, "xendit", order.id, status, outcome, raw);
  return outcome;
}

/**
 * The withdrawal an Iris notification is about. Its reference is stored once learned; before that the
 * notification (signed, but naming only Iris' reference) is matched through Iris' own record of the
 * payout, whose notes name the withdrawal, and whose amount and account must be the withdrawal's.
 */
async function withdrawalForReference(ctx: WebhookContext, reference: string): Promise<WithdrawalRow> {
  const known = await findWithdrawalByReference(ctx.db, reference);
  if (known) return known;
  let details;
  try {
    details = await midtransGateway(ctx.config, ctx.env).payoutDetails(reference);
  } catch (error) {
    if (error instanceof GatewayError && error.definite) throw new ApiError("not_found", "No withdrawal with that reference.");
    if (error instanceof GatewayError) throw new ApiError("gateway_error", "Could not look the payout up at Iris; retry later.");
    throw error;
  }
  const id = withdrawalIdFromNotes(details.notes);
  const w = id ? await findWithdrawal(ctx.db, id) : undefined;
  if (!w || (w.irisReference !== null && w.irisReference !== reference)) throw new ApiError("not_found", "No withdrawal with that reference.");
  if (parseGatewayAmount(details.amount) !== w.netIdr || details.account !== w.accountNumber) {
    // One alert per withdrawal and payout, however often Iris retries the notification.
    await raiseAlert(ctx.db, {
      userId: w.userId,
      alertType: "iris_payout_mismatch",
      severity: "critical",
      details: { withdrawalId: w.id, netIdr: w.netIdr, irisAmount: details.amount.slice(0, 40) },
      dedupeKey: await dedupeKey("iris_payout_mismatch", w.id, reference),
    });
    throw new ApiError("amount_mismatch", "Iris' payout does not match the withdrawal.");
  }
  return w;
}

/** SPEC §7: Iris-Signature = SHA-512(raw body + merchant key); completed posts the hold, failed/rejected voids it, once. */
export async function handleIrisNotification(ctx: WebhookContext, raw: string, signature: string | undefined): Promise<"completed" | "failed" | "duplicate" | "ignored"> {
  if (!(await verifyIrisSignature(raw, signature, ctx.env.MIDTRANS_IRIS_MERCHANT_KEY))) throw new ApiError("invalid_signature", "The Iris-Signature is missing or wrong.");
  const n = parseJson(raw);
  if (typeof n.reference_no !== "string" || !/^[A-Za-z0-9_-]{1,100}$/.test(n.reference_no)) throw new ApiError("not_found", "No withdrawal with that reference.");
  const withdrawal = await withdrawalForReference(ctx, n.reference_no);
  const status = String(n.status ?? "");
  const outcome = irisOutcome(status);
  let result: Awaited<ReturnType<typeof handleIrisNotification>> = "ignored";
  if (outcome) {
    result = await settleWithdrawal(ctx.db, withdrawal, outcome, { reason: outcome === "failed" ? `iris_${status}` : null, actorId: "gateway:iris", reference: n.reference_no });
  } else if (withdrawal.irisReference === null) {
    await ctx.db.update(withdrawals).set({ irisReference: n.reference_no, unconfirmed: false }).where(eq(withdrawals.id, withdrawal.id));
  }
  await record(ctx.db, "iris", withdrawal.id, status, result, raw);
  return result;
}
