import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { errorResponses, problemFor } from "../lib/errors";
import { bearerSecurity, createRouter } from "../lib/router";
import { deviceFingerprint } from "../lib/request";
import { listPackages } from "./packages.service";
import { PackageSchema } from "./packages.schemas";
import { openOrder, type Gateway } from "./orders.service";
import { handleIrisNotification, handleMidtransNotification, handleXenditNotification, type WebhookContext } from "./webhooks.service";

export const CreateOrderBody = z.object({ packageId: z.string().min(1).max(64) }).strict().openapi("CreateOrderRequest", { example: { packageId: "pkg_500" } });
export const OrderCreatedSchema = z
  .object({ orderId: z.string(), token: z.string().optional(), redirectUrl: z.string(), invoiceUrl: z.string().optional() })
  .openapi("OrderCreated");
const AckSchema = z.object({ received: z.literal(true), outcome: z.enum(["credited", "duplicate", "failed", "reversed", "refunded", "ignored"]) }).openapi("WebhookAck");

export const orderResponses = {
  201: { description: "The pending order and where to pay it", content: { "application/json": { schema: OrderCreatedSchema } } },
  ...errorResponses,
  404: problemFor("No such active package, or no such campaign of yours."),
  502: problemFor("The gateway failed or timed out; the order is marked failed (`gateway_error`)."),
} as const;

/** Buying a coin package: shared by the gateway routes and POST /api/wallet/deposit. */
export async function buyPackage(c: Context<AppEnv>, packageId: string, gateway: Gateway) {
  return openOrder(c.var.db, c.var.config, c.env, { userId: c.var.user.id, gateway, subject: { kind: "coin_package", packageId }, deviceFingerprint: deviceFingerprint(c) });
}

const webhookContext = (c: Context<AppEnv>): WebhookContext => ({ db: c.var.db, config: c.var.config, env: c.env, clientIp: c.req.header("cf-connecting-ip") });

/** What every notification route may answer besides its own: 413 (a body over MAX_BODY_BYTES) and 500. */
const notificationErrors = { 413: errorResponses[413], 500: errorResponses[500] } as const;

const depositNotificationResponses = {
  200: { description: "Authentic notification processed (duplicates included)", content: { "application/json": { schema: AckSchema } } },
  ...notificationErrors,
  404: problemFor("Unknown order, or an order of the other gateway; nothing created."),
  422: problemFor("Amount or currency differs from the order (`amount_mismatch`); a fraud alert is raised."),
} as const;

const midtransResponses = {
  ...depositNotificationResponses,
  400: problemFor("Not a JSON object, or a status_code that does not agree with transaction_status, or a transaction_status that is not a string (`invalid_notification`)."),
  401: problemFor("Missing or wrong signature_key (`invalid_signature`); nothing changed."),
  403: problemFor("Source address not in MIDTRANS_ALLOWED_IPS."),
  502: problemFor("The status could not be confirmed with the Status API (`gateway_error`); Midtrans will retry."),
} as const;

const xenditResponses = {
  ...depositNotificationResponses,
  400: problemFor("Not a JSON object, or a status that is not a string (`invalid_notification`)."),
  401: problemFor("Missing or wrong x-callback-token (`invalid_signature`); nothing changed."),
} as const;

export const paymentRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/packages",
      tags: ["payments"],
      summary: "Active coin packages, in display order (public)",
      responses: { 200: { description: "Packages", content: { "application/json": { schema: z.object({ items: z.array(PackageSchema) }) } } }, 500: errorResponses[500] },
    }),
    async (c) => c.json({ items: await listPackages(c.var.db, true) }, 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/midtrans/create",
      tags: ["payments"],
      summary: "Buy a coin package through Midtrans Snap",
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: CreateOrderBody } } } },
      responses: orderResponses,
    }),
    async (c) => c.json(await buyPackage(c, c.req.valid("json").packageId, "midtrans"), 201),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/xendit/create",
      tags: ["payments"],
      summary: "Buy a coin package through a Xendit invoice",
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: CreateOrderBody } } } },
      responses: orderResponses,
    }),
    async (c) => c.json(await buyPackage(c, c.req.valid("json").packageId, "xendit"), 201),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/midtrans/webhook",
      tags: ["webhooks"],
      summary: "Midtrans HTTP notification (signature_key verified; no bearer token)",
      description:
        "signature_key must equal SHA-512(order_id + status_code + gross_amount + server key) over the strings as received. " +
        "status_code must agree with transaction_status (200 settlement/capture/refund/chargeback and their partial ones, 201 pending or a challenged capture, 200 or 201 authorize, 202 deny/failure, 200 or 202 cancel, 407 or 202 expire), else 400. " +
        "An order already final (fully reversed, or refunded before credit), or one the notification cannot change, is answered 200 without asking the Status API. " +
        "Otherwise the status is confirmed with the Get Status API first: settlement, or capture with fraud_status accept, credits once; pending changes nothing; " +
        "deny/cancel/expire/failure fail an order not yet paid, and a cancel of a paid order (a card capture voided before settlement) reverses its credit in full; refund/chargeback (partial too) reverse ceil((coins + bonus) × refunded / gross) coins in total, " +
        "refunded being the cumulative refund_amount the Status API confirms, each refund once (debt if already spent) with an alert; a refund confirmed before " +
        "the credit marks the order `refunded` and no credit follows.",
      responses: midtransResponses,
    }),
    async (c) => c.json({ received: true as const, outcome: await handleMidtransNotification(webhookContext(c), await c.req.text()) }, 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/xendit/webhook",
      tags: ["webhooks"],
      summary: "Xendit invoice callback (x-callback-token verified; no bearer token)",
      description: "PAID or SETTLED credits the order once (its paid amount and currency must be the order's); EXPIRED fails an order not yet paid. Unknown statuses change nothing.",
      responses: xenditResponses,
    }),
    async (c) => c.json({ received: true as const, outcome: await handleXenditNotification(webhookContext(c), await c.req.text(), c.req.header("x-callback-token")) }, 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/midtrans/iris-webhook",
      tags: ["webhooks"],
      summary: "Midtrans Iris payout notification (Iris-Signature verified; no bearer token)",
      description: "Iris-Signature must equal SHA-512(raw body + MIDTRANS_IRIS_MERCHANT_KEY). completed posts the withdrawal's hold; failed/rejected voids it; each at most once, in any order.",
      responses: {
        200: { description: "Processed (duplicates included)", content: { "application/json": { schema: z.object({ received: z.literal(true), outcome: z.enum(["completed", "failed", "duplicate", "ignored"]) }) } } },
        ...notificationErrors,
        400: problemFor("Not a JSON object."),
        401: problemFor("Missing or wrong Iris-Signature; nothing changed."),
        404: problemFor("Unknown payout reference."),
        422: problemFor("Iris' record of the payout differs from the withdrawal in amount or account (`amount_mismatch`); a critical alert is raised and nothing is settled."),
        502: problemFor("The payout could not be looked up at Iris (`gateway_error`); Iris will retry."),
      },
    }),
    async (c) => c.json({ received: true as const, outcome: await handleIrisNotification(webhookContext(c), await c.req.text(), c.req.header("iris-signature")) }, 200),
  );
