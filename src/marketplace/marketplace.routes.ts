import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, problemFor } from "../lib/errors";
import { decideOnce, moveOnce } from "../lib/idempotency";
import { bearerSecurity, createRouter, idempotencyHeader } from "../lib/router";
import { decodeCursor, encodeCursor, pageSchema, paginationQuery } from "../lib/pagination";
import { TransactionSchema, UserIdSchema } from "../wallet/wallet.schemas";
import {
  confirmOrder,
  listBusinessVerifications,
  orderView,
  placeOrder,
  referralCodeFor,
  refundOrderById,
  reviewBusinessVerification,
  sellerStanding,
  submitBusinessVerification,
  visibleOrder,
  type OrderBody,
} from "./marketplace.service";

const Slug = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "1–64 of A–Z, a–z, 0–9, _ and -");
const OrderId = z.object({ id: z.string().regex(/^[0-9A-Z]{26}$/, "an order id") });
const Tier = z.enum(["basic", "verified_business", "premium_partner"]);
const VerificationStatus = z.enum(["pending", "verified", "rejected"]);

const OrderSchema = z
  .object({
    id: z.string(),
    buyerId: z.string(),
    sellerId: z.string(),
    productId: z.string(),
    amount: z.number().int(),
    tier: Tier,
    rates: z.object({ commissionBps: z.number().int(), processingBps: z.number().int(), affiliateBps: z.number().int() }),
    shares: z.object({ seller: z.number().int(), platform: z.number().int(), processing: z.number().int(), affiliate: z.number().int() }),
    affiliateId: z.string().nullable(),
    status: z.enum(["escrow", "released", "refunded"]),
    releaseDueAt: z.string(),
    releasedAt: z.string().nullable(),
    refundedAt: z.string().nullable(),
    refundKind: z.enum(["before_release", "after_release"]).nullable(),
    refundAmount: z.number().int().nullable(),
    createdAt: z.string(),
  })
  .openapi("MarketplaceOrder");

const VerificationSchema = z
  .object({
    userId: z.string(),
    businessName: z.string(),
    licenseNumber: z.string(),
    taxId: z.string(),
    status: VerificationStatus,
    submittedAt: z.string(),
    reviewedBy: z.string().nullable(),
    reviewedAt: z.string().nullable(),
    note: z.string().nullable(),
  })
  .openapi("BusinessVerification");

const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });
const body = <T extends z.ZodTypeAny>(schema: T) => ({ required: true, content: { "application/json": { schema } } });

/** Mounted at /api/marketplace. */
export const marketplaceRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/orders",
      tags: ["marketplace"],
      summary: "Buy a product in coins: processing 300 bps, commission by the seller's tier (frozen on the order), the seller's share held in escrow",
      description:
        "Commission: Basic 1200 bps; Verified Business 800 (≥ 100 sales in 30 days and business-verified); Premium Partner 500 (≥ 1,000). A valid `referralCode` (not yours, not the seller's) " +
        "pays its owner 500 bps out of the seller's share. The seller's and affiliate's shares wait in escrow until the buyer confirms or MARKETPLACE_ESCROW_DAYS pass. " +
        "Counts against the spending limits and the rate limit.",
      security: bearerSecurity,
      request: {
        headers: idempotencyHeader,
        body: body(
          z
            .object({ sellerId: UserIdSchema, productId: Slug, amount: z.number().int().min(1).max(1_000_000_000), referralCode: z.string().regex(/^[A-Z0-9]{4,16}$/, "a referral code").optional() })
            .strict()
            .openapi({ example: { sellerId: "seller-1", productId: "sku-42", amount: 1000, referralCode: "K7QX2M9A" } }),
        ),
      },
      responses: {
        201: json(z.object({ order: OrderSchema, transaction: TransactionSchema }).openapi("MarketplaceOrderPlaced"), "Ordered"),
        ...errorResponses,
        404: problemFor("No such seller (`recipient_not_found`)."),
        409: problemFor("The Idempotency-Key was used with another request (`idempotency_conflict`), or the seller's tier kept changing while ordering (`conflict`, transient: try again)."),
        422: problemFor("`self_order`, `invalid_referral_code`, `insufficient_funds`, `debt_outstanding`, `recipient_unavailable`, `below_minimum` (an amount whose floored seller share is 0: 1 coin)."),
      },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const outcome = await moveOnce<OrderBody>(c, input, (ctx) => placeOrder(c.var.db, c.var.config, c.var.user.id, input, ctx));
      return c.json(outcome.body, outcome.status);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/orders/{id}",
      tags: ["marketplace"],
      summary: "An order (its buyer, seller, affiliate or an admin)",
      security: bearerSecurity,
      request: { params: OrderId },
      responses: { 200: json(OrderSchema, "The order"), ...errorResponses, 404: problemFor("No such order (or not yours).") },
    }),
    async (c) => c.json(orderView(await visibleOrder(c.var.db, c.req.valid("param").id, c.var.user)), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/orders/{id}/confirm",
      tags: ["marketplace"],
      summary: "The buyer confirms delivery: the escrow goes to the seller (and affiliate) at once",
      description:
        "The escrow is still the buyer's coins: a buyer who is frozen, banned or awaiting verification is refused 403 (recorded debt does not stop a confirm: the coins left the wallet at purchase). " +
        "A banned seller earns nothing: 422 `recipient_unavailable`, and the order stays in escrow until an admin refunds it. A banned affiliate does not hold the sale up: their share goes to the seller (the order's shares say so). All decided inside the release batch.",
      security: bearerSecurity,
      request: { params: OrderId, headers: idempotencyHeader },
      responses: {
        200: json(OrderSchema, "Released"),
        ...errorResponses,
        404: problemFor("No such order."),
        409: problemFor("The order is no longer in escrow (`conflict`), or the Idempotency-Key was used with another request."),
        422: problemFor("`recipient_unavailable`: the seller is banned; the order stays in escrow until an admin refunds it."),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json(await decideOnce<ReturnType<typeof orderView>>(c, { id }, async (record) => orderView(await confirmOrder(c.var.db, c.var.config, id, c.var.user, Date.now(), (o) => record(orderView(o))))), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/orders/{id}/refund",
      tags: ["marketplace"],
      summary: "Refund an order: in escrow (seller or admin) everything back; after release (admin) seller and affiliate clawed back, commission returned",
      description:
        "After release the seller's and affiliate's shares are taken back at the order's frozen rates (what their wallets cannot cover when the refund commits becomes recorded debt) and the platform's commission " +
        "is returned; the payment processing share is kept, so the buyer gets the amount minus processing. Each order is refunded once; a refund racing a confirm: one wins, the other is 409.",
      security: bearerSecurity,
      request: { params: OrderId, headers: idempotencyHeader },
      responses: { 200: json(OrderSchema, "Refunded"), ...errorResponses, 404: problemFor("No such order (or not yours)."), 409: problemFor("Already refunded, or released meanwhile (`conflict`), or the Idempotency-Key was used with another request.") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const answer = await decideOnce<ReturnType<typeof orderView>>(c, { id }, async (record) => orderView(await refundOrderById(c.var.db, c.var.config, id, c.var.user, (o) => record(orderView(o)))));
      return c.json(answer, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/referral-codes",
      tags: ["marketplace"],
      summary: "The caller's referral code (one per user; created on the first call)",
      security: bearerSecurity,
      responses: { 200: json(z.object({ code: z.string() }), "Your existing code"), 201: json(z.object({ code: z.string() }).openapi("ReferralCode"), "Created"), ...errorResponses },
    }),
    async (c) => {
      const { code, created } = await referralCodeFor(c.var.db, c.var.user.id, Date.now());
      return created ? c.json({ code }, 201) : c.json({ code }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/business-verification",
      tags: ["marketplace"],
      summary: "Submit (or, after a rejection, resubmit) business verification: business name, license number (NIB), tax id (NPWP); an admin reviews it",
      security: bearerSecurity,
      request: {
        body: body(
          z
            .object({
              businessName: z.string().trim().min(2).max(120),
              licenseNumber: z.string().regex(/^[0-9]{13}$/, "an NIB: 13 digits"),
              taxId: z.string().regex(/^[0-9]{15,16}$/, "an NPWP: 15 or 16 digits"),
            })
            .strict()
            .openapi({ example: { businessName: "Toko Sinar Jaya", licenseNumber: "9120001234567", taxId: "0123456789012345" } }),
        ),
      },
      responses: { 201: json(VerificationSchema, "Submitted, pending review"), ...errorResponses, 409: problemFor("Already verified, or pending review (a submission under review cannot be changed: an admin approves what they saw).") },
    }),
    async (c) => c.json(await submitBusinessVerification(c.var.db, c.var.user.id, c.req.valid("json"), Date.now()), 201),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/sellers/{id}",
      tags: ["marketplace"],
      summary: "A seller's tier, sales in the last 30 days, commission and business verification",
      security: bearerSecurity,
      request: { params: z.object({ id: UserIdSchema }) },
      responses: {
        200: json(z.object({ sellerId: z.string(), tier: Tier, commissionBps: z.number().int(), sales30d: z.number().int(), verification: z.enum(["none", "pending", "verified", "rejected"]) }).openapi("Seller"), "Seller"),
        ...errorResponses,
      },
    }),
    async (c) => c.json(await sellerStanding(c.var.db, c.var.config, c.req.valid("param").id, Date.now()), 200),
  );

/** A position in the verification queue: submittedAt and user id. */
const QUEUE_POSITION = /^(\d{1,15}):([A-Za-z0-9_-]{1,64})$/;

/** Mounted at /api/admin/business-verifications. */
export const adminBusinessRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["admin", "marketplace"],
      summary: "Business verifications by status, oldest submission first (a review queue: the longest waiting come first)",
      security: bearerSecurity,
      request: { query: z.object({ status: VerificationStatus.default("pending"), ...paginationQuery }) },
      responses: { 200: json(pageSchema(VerificationSchema), "Verifications"), ...errorResponses },
    }),
    async (c) => {
      const { status, limit, cursor } = c.req.valid("query");
      const at = QUEUE_POSITION.exec(decodeCursor(cursor, QUEUE_POSITION) ?? "");
      const page = await listBusinessVerifications(c.var.db, status, limit, at ? { submittedAt: Number(at[1]), userId: at[2]! } : undefined);
      return c.json({ items: page.items, nextCursor: page.next === null ? null : encodeCursor(page.next) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{userId}/review",
      tags: ["admin", "marketplace"],
      summary: "Verify or reject a pending business verification (audited)",
      security: bearerSecurity,
      request: {
        params: z.object({ userId: UserIdSchema }),
        body: body(
          z
            .object({
              decision: z.enum(["verified", "rejected"]),
              note: z.string().trim().min(1).max(500).optional(),
              submittedAt: z.iso.datetime({ offset: true }).optional().openapi({ description: "The submission's `submittedAt` as the admin saw it: a submission sent since (after a rejection) is not decided on an earlier view (409)." }),
            })
            .strict()
            .openapi({ example: { decision: "verified", note: "NIB and NPWP checked", submittedAt: "2026-11-20T03:15:00.000Z" } }),
        ),
      },
      responses: {
        200: json(VerificationSchema, "Reviewed"),
        ...errorResponses,
        404: problemFor("No pending verification for that user."),
        409: problemFor("`conflict`: the pending submission is not the one `submittedAt` names (it was sent again since)."),
      },
    }),
    async (c) => {
      const { decision, note, submittedAt } = c.req.valid("json");
      return c.json(await reviewBusinessVerification(c.var.db, c.var.user.id, c.req.valid("param").userId, decision, note, Date.now(), submittedAt === undefined ? undefined : Date.parse(submittedAt)), 200);
    },
  );
