import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import { payouts, withdrawals, type PayoutRow } from "../db/schema";
import { decideHeldPayout } from "../jobs/batch-payouts";
import { errorResponses, problemFor } from "../lib/errors";
import { decideOnce } from "../lib/idempotency";
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

/** Mounted at /api/payouts: the caller's daily activity payouts and withdrawals (the latest 100 of each). */
export const myPayoutsRouter = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/",
    tags: ["payouts"],
    summary: "The caller's daily activity payouts and withdrawals, newest first",
    security: bearerSecurity,
    responses: { 200: { description: "Payouts and withdrawals", content: { "application/json": { schema: z.object({ payouts: z.array(PayoutSchema), withdrawals: z.array(WithdrawalSchema) }) } } }, ...errorResponses },
  }),
  async (c) => {
    const id = c.var.user.id;
    const [p, w] = await c.var.db.batch([
      c.var.db.select().from(payouts).where(eq(payouts.userId, id)).orderBy(desc(payouts.day)).limit(100),
      c.var.db.select().from(withdrawals).where(eq(withdrawals.userId, id)).orderBy(desc(withdrawals.id)).limit(100),
    ]);
    return c.json(
      {
        payouts: p.map(view),
        withdrawals: w.map((x) => ({ id: x.id, asset: x.asset, amount: x.amount, grossIdr: x.grossIdr, platformFeeIdr: x.platformFeeIdr, taxIdr: x.taxIdr, netIdr: x.netIdr, status: x.status, createdAt: new Date(x.createdAt).toISOString(), completedAt: x.completedAt === null ? null : new Date(x.completedAt).toISOString() })),
      },
      200,
    );
  },
);

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
          date: z.string().refine(isRealDay, "a date YYYY-MM-DD"),
          status: z.enum(payouts.status.enumValues).optional(),
          limit: z.coerce.number().int().min(1).max(100).default(20),
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
        .where(and(eq(payouts.day, q.date), q.status ? eq(payouts.status, q.status) : undefined, q.cursor ? lt(payouts.id, q.cursor) : undefined))
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
