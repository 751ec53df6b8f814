import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { and, eq, isNull } from "drizzle-orm";
import { contentItems, contentPurchases, contentRefundRuns } from "../db/schema";
import { requireRole } from "../lib/auth";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
import { answerOnce, decideOnce, moveOnce } from "../lib/idempotency";
import { bearerSecurity, createRouter, idempotencyHeader } from "../lib/router";
import { startFanout } from "../jobs/fanout";
import { TransactionSchema, UserIdSchema } from "../wallet/wallet.schemas";
import { buyerRefundAllowed } from "./content-rules";
import { closeContent, contentAccess, contentView, findContent, reassignContent, refundProgress, refundPurchase, refundRun, registerContent, unlockContent, type RefundProgress, type UnlockBody } from "./content.service";
import { contentRevenue } from "./content-revenue";
import { notAboutThemselves } from "../lib/auth";

const IdParam = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "a content id: 1–64 of A–Z, a–z, 0–9, _ and -") });

const ContentSchema = z
  .object({
    id: z.string(),
    creatorId: z.string(),
    price: z.number().int().openapi({ description: "Coins per unlock." }),
    purchaseCount: z.number().int(),
    available: z.boolean(),
    status: z.enum(["available", "deleted", "removed"]),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("Content");

const UnlockSchema = z.object({ purchaseId: z.string(), contentId: z.string(), price: z.number().int(), transaction: TransactionSchema }).openapi("ContentUnlock");

const ProgressSchema = z
  .object({
    contentId: z.string(),
    kind: z.enum(["full", "creator_share"]),
    reason: z.string(),
    purchases: z.number().int(),
    refunded: z.number().int(),
    pending: z.number().int(),
    queueMessages: z.number().int(),
    status: z.enum(["refunding", "done"]),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
  })
  .openapi("ContentRefundProgress");

const json = <T extends z.ZodTypeAny>(schema: T, description: string) => ({ description, content: { "application/json": { schema } } });

/** Mounted at /api/content. */

/**
 * A deletion (its creator's) or removal (an admin's) asked again, with or without its Idempotency-Key: that
 * run's progress, and its fan-out sent now if it never left (the first attempt failed after its batch).
 * Null when the item has no such run (or, for a deletion, it is not the caller's).
 */
async function runAskedAgain(c: Context<AppEnv>, id: string, kind: "full" | "creator_share", requestedBy?: string): Promise<RefundProgress | null> {
  const run = await refundRun(c.var.db, id);
  if (!run || run.kind !== kind || (requestedBy !== undefined && run.requestedBy !== requestedBy)) return null;
  const progress = await refundProgress(c.var.db, id);
  // A fan-out that never left (the queue failed after the item closed) is sent now; one waiting in the queue is not sent twice.
  if (progress.status === "refunding" && progress.queueMessages === 0 && run.fanoutSentAt === null) await sendRefunds(c, id);
  return progress;
}

/** Sends an item's refund run to the queue, and notes that it left. */
async function sendRefunds(c: Context<AppEnv>, id: string) {
  await startFanout(c.env.BATCH_QUEUE, "content_refund", id);
  await c.var.db.update(contentRefundRuns).set({ fanoutSentAt: Date.now() }).where(eq(contentRefundRuns.contentId, id));
}

export const contentRouter = createRouter()
  .openapi(
    createRoute({
      method: "put",
      path: "/{id}/premium",
      tags: ["content"],
      summary: "Register or reprice a premium content item (coins)",
      description: "Content ids come from the platform's content service; the first caller who registers an id becomes its creator (an admin may reassign it). Only the creator reprices, while the item is available; past purchases keep the price they paid.",
      security: bearerSecurity,
      request: { params: IdParam, body: { required: true, content: { "application/json": { schema: z.object({ price: z.number().int().min(1).max(1_000_000) }).strict().openapi({ example: { price: 250 } }) } } } },
      responses: { 200: json(ContentSchema, "The item"), ...errorResponses, 409: problemFor("The item was deleted or removed (`conflict`).") },
    }),
    async (c) => c.json(await registerContent(c.var.db, c.var.user.id, c.req.valid("param").id, c.req.valid("json").price, Date.now()), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      tags: ["content"],
      summary: "A content item: price, creator, purchase count, availability",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: { 200: json(ContentSchema, "The item"), ...errorResponses, 404: problemFor("No such item.") },
    }),
    async (c) => {
      const item = await findContent(c.var.db, c.req.valid("param").id);
      if (!item) throw new ApiError("not_found", "No content with that id.");
      return c.json(contentView(item), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/access",
      tags: ["content"],
      summary: "Whether the caller may view the item (its creator, or a buyer whose purchase stands)",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: {
        200: json(z.object({ access: z.boolean(), purchasedAt: z.string().optional(), refunded: z.boolean().optional() }).openapi("ContentAccess"), "Access"),
        ...errorResponses,
        404: problemFor("No such item."),
      },
    }),
    async (c) => c.json(await contentAccess(c.var.db, c.req.valid("param").id, c.var.user.id), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/unlock",
      tags: ["content"],
      summary: "Unlock a premium item: pay its price in coins, split 7000/2500/500 bps creator / platform / processing",
      description:
        "The price and split are frozen on the purchase. One live purchase per buyer and item: a repeat (or a concurrent one) is 409 `already_unlocked` and moves nothing. " +
        "The creator cannot unlock their own item (422 `own_content`). Counts against the spending limits (rupiah value) and the rate limit; refused while the buyer has " +
        "recorded debt (422 `debt_outstanding`). The item's terms are read, then ONE batch is guarded by them (a reprice in between re-reads and charges the new price).",
      security: bearerSecurity,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: {
        201: json(UnlockSchema, "Unlocked"),
        ...errorResponses,
        404: problemFor("No available item with that id."),
        409: problemFor("`already_unlocked`, or the Idempotency-Key was used with another body, or (`conflict`, transient: try again) the item's price or creator kept changing while unlocking."),
        422: problemFor("`insufficient_funds`, `own_content`, `debt_outstanding`, `recipient_unavailable` (the creator is banned)."),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const outcome = await moveOnce<UnlockBody>(c, { contentId: id }, (ctx) => unlockContent(c.var.db, c.var.config, c.var.user.id, id, ctx));
      return c.json(outcome.body, outcome.status);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      tags: ["content"],
      summary: "The creator deletes the item: it goes off sale and every buyer is refunded in full (through the queue)",
      description:
        "Each purchase is refunded once, in its own batch: the buyer gets the whole price; the creator's, platform's and processing's shares are taken back (what the creator's wallet no longer holds becomes recorded debt). Progress: GET /api/admin/content/{id}/refunds. " +
        "Asked again by its creator: 202 with that deletion's progress (its refunds sent now if the first attempt failed after closing the item).",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: {
        202: json(ProgressSchema, "Deleted; refunds queued"),
        ...errorResponses,
        404: problemFor("No available item with that id."),
        409: problemFor("`conflict`: buyers hold purchases paid to the item's previous creator (it was reassigned); an admin can remove it."),
        422: problemFor("`debt_outstanding`: the creator has recorded debt (the refunds take their share back: money out, refused like any other)."),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      try {
        await closeContent(c.var.db, id, "full", c.var.user.id, "creator_deleted", { asCreator: true }, Date.now());
      } catch (error) {
        const again = error instanceof ApiError && error.code === "not_found" ? await runAskedAgain(c, id, "full", c.var.user.id) : null;
        if (!again) throw error;
        return c.json(again, 202);
      }
      await sendRefunds(c, id);
      return c.json(await refundProgress(c.var.db, id), 202);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/refund",
      tags: ["content", "admin"],
      summary: "Admin refunds: remove the item (each buyer gets the creator's share back), or one buyer's purchase",
      description:
        "`admin_removed`: the item goes off sale and each buyer gets back the creator's share, clawed back from the creator (debt if short); platform and processing keep theirs (through the queue, 202). " +
        "`buyer_request` with `userId`: that buyer's purchase is refunded in full, within 24 hours of the purchase, or later only if the item is no longer available (else 422 `refund_window_closed`). " +
        "An admin never refunds their own purchase: a removal of an item they bought, or a `buyer_request` for themselves, is 403. " +
        "With an Idempotency-Key a removal answers once: a repeat replays the progress as the removal started.",
      security: bearerSecurity,
      middleware: [requireRole("admin")] as const,
      request: {
        headers: idempotencyHeader,
        params: IdParam,
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z
                .discriminatedUnion("reason", [z.object({ reason: z.literal("admin_removed") }).strict(), z.object({ reason: z.literal("buyer_request"), userId: UserIdSchema }).strict()])
                .openapi({ example: { reason: "buyer_request", userId: "buyer-123" } }),
            },
          },
        },
      },
      responses: {
        200: json(z.object({ purchaseId: z.string(), refunded: z.number().int(), outcome: z.enum(["refunded"]) }), "One purchase refunded"),
        202: json(ProgressSchema, "Removed; refunds queued (asked again: that removal's progress)"),
        ...errorResponses,
        404: problemFor("No available item, or no live purchase of that buyer."),
        409: problemFor("`already_applied`: the purchase was refunded meanwhile by another refund; or the Idempotency-Key was used with another request; or (`conflict`, transient) a removal with the same key is still in progress."),
        422: problemFor("`refund_window_closed`."),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const body = c.req.valid("json");
      const { db } = c.var;
      if (body.reason === "admin_removed") {
        // Once per Idempotency-Key (looked up first, recorded after: the answer is the removal's progress,
        // known only once its batch committed). A removal is safe to repeat: asked again, it answers with its
        // progress and sends a fan-out that never left.
        const outcome = await answerOnce<{ status: 202; body: RefundProgress }>(c, { id, ...body }, async () => {
          try {
            await closeContent(db, id, "creator_share", c.var.user.id, "admin_removed", { asCreator: false }, Date.now());
          } catch (error) {
            const again = error instanceof ApiError && error.code === "not_found" ? await runAskedAgain(c, id, "creator_share") : null;
            if (!again) throw error;
            return { status: 202, body: again };
          }
          await sendRefunds(c, id);
          return { status: 202, body: await refundProgress(db, id) };
        });
        return c.json(outcome.body, 202);
      }
      // Once per Idempotency-Key: the answer is recorded in the refund's own batch, so a retry after the
      // buyer bought the item again replays it instead of refunding the new purchase.
      const answer = await decideOnce(c, { id, ...body }, async (record) => {
        notAboutThemselves(c.var.user.id, body.userId, "refund a purchase");
        const [[item], [purchase]] = await db.batch([
          db.select().from(contentItems).where(eq(contentItems.id, id)),
          db.select().from(contentPurchases).where(and(eq(contentPurchases.contentId, id), eq(contentPurchases.buyerId, body.userId), isNull(contentPurchases.refundedAt))).limit(1),
        ]);
        if (!item || !purchase) throw new ApiError("not_found", "No live purchase of that buyer for that item.");
        if (!buyerRefundAllowed(purchase.purchasedAt, Date.now(), item.status === "available")) {
          throw new ApiError("refund_window_closed", "A buyer's refund is granted within 24 hours of the purchase while the item is available.");
        }
        const refunded = { purchaseId: purchase.id, refunded: purchase.price };
        const outcome = await refundPurchase(db, c.var.config, purchase, "full", c.var.user.id, "buyer_request", { idempotency: record({ ...refunded, outcome: "refunded" }) });
        // Another refund of the purchase (an admin removal's queue) committed first: this one moved nothing.
        if (outcome === "already_refunded") throw new ApiError("already_applied", "This purchase was refunded meanwhile by another refund.");
        return { ...refunded, outcome };
      });
      return c.json(answer, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/revenue",
      tags: ["content"],
      summary: "The item's purchases, revenue by share and refunds (its creator only: their own sales of it)",
      description: "Revenue is what the ledger holds after refunds: total = creator + platform + processing.",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: {
        200: json(
          z
            .object({
              purchaseCount: z.number().int(),
              revenue: z.object({ total: z.number().int(), creator: z.number().int(), platform: z.number().int(), processing: z.number().int() }),
              refunds: z.object({ count: z.number().int(), total: z.number().int() }),
            })
            .openapi("ContentRevenue"),
          "Revenue",
        ),
        ...errorResponses,
        404: problemFor("No such item."),
      },
    }),
    async (c) => c.json(await contentRevenue(c.var.db, c.req.valid("param").id, c.var.user.id), 200),
  );

/** Mounted at /api/admin/content. */
export const adminContentRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/owner",
      tags: ["admin", "content"],
      summary: "Reassign a content item to another creator (audited)",
      security: bearerSecurity,
      request: { params: IdParam, body: { required: true, content: { "application/json": { schema: z.object({ creatorId: UserIdSchema }).strict().openapi({ example: { creatorId: "carol" } }) } } } },
      responses: { 200: json(ContentSchema, "The item"), ...errorResponses, 404: problemFor("No such item.") },
    }),
    async (c) => c.json(await reassignContent(c.var.db, c.var.user.id, c.req.valid("param").id, c.req.valid("json").creatorId, Date.now()), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/refunds",
      tags: ["admin", "content"],
      summary: "Progress of an item's refund run (creator deletion or admin removal)",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: { 200: json(ProgressSchema, "Progress"), ...errorResponses, 404: problemFor("No refund run for that item.") },
    }),
    async (c) => c.json(await refundProgress(c.var.db, c.req.valid("param").id), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/refunds/resume",
      tags: ["admin", "content"],
      summary: "Send what is still unrefunded of a run to the queue again (after a chunk reached the dead-letter queue); safe to repeat",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: { 202: json(ProgressSchema, "Queued"), ...errorResponses, 404: problemFor("No refund run for that item.") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await refundProgress(c.var.db, id);
      await sendRefunds(c, id);
      return c.json(await refundProgress(c.var.db, id), 202);
    },
  );

