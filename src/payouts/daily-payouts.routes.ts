import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt, sql, type SQLWrapper } from "drizzle-orm";
import { payouts, withdrawals, type PayoutRow } from "../db/schema";
import { decideHeldPayout } from "../jobs/batch-payouts";
import { errorResponses, problemFor } from "../lib/errors";
import { pageLimit } from "../lib/query";
import { decideOnce } from "../lib/idempotency";
import { decodeCursor, encodeCursor, pageSchema, paginationQuery } from "../lib/pagination";
import { bearerSecurity, createRouter, idempotencyHeader } from "../lib/router";
import { isRealDay } from "../lib/time";

const PayoutSchema = z
  .object({
    id: z.string(),
    day: z.string(),
    userId: z.string(),
    campaignId: z.string(),
    units: z.number().int(),
    amountIdr: z.number().int(),
    feeIdr: z.number().int(),
    cappedIdr: z.number().int().openapi({ description: "Rupiah over PAYOUT_DAILY_CAP_IDR for the day: recorded, never paid (status `capped` when nothing was left to pay)." }),
    status: z.enum(payouts.status.enumValues),
    decidedBy: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("Payout");

const view = (p: PayoutRow) => ({ id: p.id, day: p.day, userId: p.userId, campaignId: p.campaignId, units: p.units, amountIdr: p.amountIdr, feeIdr: p.feeIdr, cappedIdr: p.cappedIdr, status: p.status, decidedBy: p.decidedBy, createdAt: new Date(p.createdAt).toISOString() });

const WithdrawalSchema = z
  .object({ id: z.string(), asset: z.enum(["COIN", "IDR"]), amount: z.number().int(), grossIdr: z.number().int(), platformFeeIdr: z.number().int(), taxIdr: z.number().int(), netIdr: z.number().int(), status: z.enum(["pending", "completed", "failed"]), createdAt: z.string(), completedAt: z.string().nullable() })
  .openapi("Withdrawal");

type WithdrawalRow = typeof withdrawals.$inferSelect;
const withdrawalView = (x: WithdrawalRow) => ({
  id: x.id, asset: x.asset, amount: x.amount, grossIdr: x.grossIdr, platformFeeIdr: x.platformFeeIdr, taxIdr: x.taxIdr, netIdr: x.netIdr, status: x.status,
  createdAt: new Date(x.createdAt).toISOString(), completedAt: x.completedAt === null ? null : new Date(x.completedAt).toISOString(),
});

/** A page position: the last item's (createdAt, kind, id), the list's order key. */
const POSITION = /^(\d{1,15}):(payout|withdrawal):([A-Za-z0-9_-]{1,160})$/;
const positionOf = (item: { kind: "payout" | "withdrawal"; id: string; createdAt: string }) => `${Date.parse(item.createdAt)}:${item.kind}:${item.id}`;

/** Mounted at /api/payouts: the caller's daily activity payouts and withdrawals, one list (SPEC §3 pagination). */
export const myPayoutsRouter = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["payouts"],
    summary: "The caller's daily activity payouts and withdrawals, newest first, in one paged list",
    description: "Each item has `kind` (`payout` or `withdrawal`) and that record's fields. Ordered by creation time (then kind and id), newest first; `nextCursor` continues after the last item, stable under concurrent inserts.",
    security: bearerSecurity,
    request: { query: z.object(paginationQuery) },
    responses: {
      200: {
        description: "A page of payouts and withdrawals",
        content: { "application/json": { schema: pageSchema(z.discriminatedUnion("kind", [PayoutSchema.extend({ kind: z.literal("payout") }), WithdrawalSchema.extend({ kind: z.literal("withdrawal") })]).openapi("PayoutOrWithdrawal")) } },
      },
      ...errorResponses,
    },
  }),
  async (c) => {
    const id = c.var.user.id;
    const { limit, cursor } = c.req.valid("query");
    const at = POSITION.exec(decodeCursor(cursor, POSITION) ?? "");
    // Rows strictly after the cursor in (createdAt, kind, id) descending order: of each table, at most a page and one.
    const after = (createdAt: SQLWrapper, kind: string, rowId: SQLWrapper) => (at ? sql`(${createdAt}, ${kind}, ${rowId}) < (${Number(at[1])}, ${at[2]}, ${at[3]})` : undefined);
    const [p, w] = await c.var.db.batch([
      c.var.db.select().from(payouts).where(and(eq(payouts.userId, id), after(payouts.createdAt, "payout", payouts.id))).orderBy(desc(payouts.createdAt), desc(payouts.id)).limit(limit + 1),
      c.var.db.select().from(withdrawals).where(and(eq(withdrawals.userId, id), after(withdrawals.createdAt, "withdrawal", withdrawals.id))).orderBy(desc(withdrawals.createdAt), desc(withdrawals.id)).limit(limit + 1),
    ]);
    const merged = [...p.map((x) => ({ kind: "payout" as const, ...view(x) })), ...w.map((x) => ({ kind: "withdrawal" as const, ...withdrawalView(x) }))].sort((a, b) => compare(b, a));
    const page = merged.slice(0, limit);
    return c.json({ items: page, nextCursor: merged.length > limit ? encodeCursor(positionOf(page.at(-1)!)) : null }, 200);
  },
);

/** (createdAt, kind, id) order, as SQLite compares the row values above. */
function compare(a: { kind: string; id: string; createdAt: string }, b: { kind: string; id: string; createdAt: string }): number {
  const t = Date.parse(a.createdAt) - Date.parse(b.createdAt);
  if (t !== 0) return t;
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const IdParam = z.object({ id: z.string().regex(/^po_[A-Za-z0-9_-]{1,140}$/) });

/** Mounted at /api/admin/payouts. */
export const adminPayoutsRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["admin", "payouts"],
      summary: "Daily payouts by day and status",
      security: bearerSecurity,
      request: {
        query: z.object({
          date: z.string().refine(isRealDay, "a date YYYY-MM-DD").optional().openapi({ description: "One business day; without it, every day (newest day first), e.g. all held payouts with `status=held`." }),
          status: z.enum(payouts.status.enumValues).optional(),
          limit: pageLimit(20),
          cursor: z.string().regex(/^po_[A-Za-z0-9_-]{1,140}$/).optional(),
        }),
      },
      responses: { 200: { description: "Payouts", content: { "application/json": { schema: z.object({ items: z.array(PayoutSchema), nextCursor: z.string().nullable() }) } } }, ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const rows = await c.var.db
        .select()
        .from(payouts)
        .where(and(q.date ? eq(payouts.day, q.date) : undefined, q.status ? eq(payouts.status, q.status) : undefined, q.cursor ? lt(payouts.id, q.cursor) : undefined))
        .orderBy(desc(payouts.id))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit);
      return c.json({ items: page.map(view), nextCursor: rows.length > q.limit ? page.at(-1)!.id : null }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/release",
      tags: ["admin", "payouts"],
      summary: "Release a held payout: it is paid once from the campaign budget (payout + fee)",
      security: bearerSecurity,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: { description: "The payout", content: { "application/json": { schema: PayoutSchema } } }, ...errorResponses, 404: problemFor("No such payout."), 409: problemFor("Not held (decided already, or concurrently), or the Idempotency-Key was used with another request."), 422: problemFor("Budget too small, the campaign's owner frozen or banned (`campaign_suspended`), or the earner banned (`recipient_unavailable`); it stays held.") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json(await decideOnce<ReturnType<typeof view>>(c, { id }, async (record) => view(await decideHeldPayout(c.var.db, id, "release", c.var.user.id, (decided) => record(view(decided))))), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/reject",
      tags: ["admin", "payouts"],
      summary: "Reject a held payout: nothing is paid",
      security: bearerSecurity,
      request: { params: IdParam, headers: idempotencyHeader },
      responses: { 200: { description: "The payout", content: { "application/json": { schema: PayoutSchema } } }, ...errorResponses, 404: problemFor("No such payout."), 409: problemFor("Not held (decided already, or concurrently), or the Idempotency-Key was used with another request.") },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json(await decideOnce<ReturnType<typeof view>>(c, { id }, async (record) => view(await decideHeldPayout(c.var.db, id, "reject", c.var.user.id, (decided) => record(view(decided))))), 200);
    },
  );
