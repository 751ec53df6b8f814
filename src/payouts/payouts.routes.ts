import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt, sql } from "drizzle-orm";
import { withdrawMethods, withdrawals, type WithdrawalRow } from "../db/schema";
import { alertWhen } from "../fraud/alerts";
import { applyStatements } from "../ledger/executor";
import { errorResponses, problemFor } from "../lib/errors";
import { pageLimit } from "../lib/query";
import { decideOnce, idempotencyScope, idempotent } from "../lib/idempotency";
import { MAX_AMOUNT } from "../lib/money";
import { deviceFingerprint } from "../lib/request";
import { bearerSecurity, createRouter, idempotencyHeader } from "../lib/router";
import { requestWithdrawal, resolveWithdrawal, type WithdrawResponse } from "./withdrawals.service";

/** An admin's settlement of an unconfirmed withdrawal, as the API and the console both take it. */
export const WithdrawalResolution = z.object({ outcome: z.enum(["completed", "failed"]), reason: z.string().trim().min(3).max(500) }).strict();

const WithdrawMethodSchema = z
  .object({
    bankName: z.string().regex(/^[a-z][a-z0-9_]{1,29}$/, "an Iris bank code such as bca, bni, mandiri, bri"),
    accountNumber: z.string().regex(/^\d{5,20}$/, "5–20 digits"),
    accountName: z.string().trim().min(2).max(100).regex(/^[\p{L} .,'-]+$/u, "letters, spaces and . , ' -"),
  })
  .strict()
  .openapi("WithdrawMethod", { example: { bankName: "bca", accountNumber: "8800123456", accountName: "Siti Rahma" } });

const WithdrawResponseSchema = z
  .object({
    withdrawalId: z.string(),
    grossIdr: z.number().int(),
    platformFeeIdr: z.number().int(),
    taxIdr: z.number().int(),
    netIdr: z.number().int(),
    status: z.literal("pending"),
    unconfirmed: z.literal(true).optional().openapi({ description: "Iris' answer was ambiguous (timeout, 5xx, unreadable): the amount stays held until reconciliation or an admin settles it." }),
  })
  .openapi("WithdrawalAccepted");

/** Mounted under /api/wallet. */
export const withdrawRouter = createRouter()
  .openapi(
    createRoute({
      method: "put",
      path: "/withdraw-method",
      tags: ["wallet", "payouts"],
      summary: "Set the bank account withdrawals are paid to",
      description:
        "The first account is usable at once. A changed one is usable after WITHDRAW_METHOD_COOLDOWN_HOURS (24) and raises a low `withdraw_method_changed` " +
        "alert, so a stolen session cannot redirect a withdrawal at once. At most WITHDRAW_METHOD_CHANGES_PER_DAY (5) changes a day (429).",
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: WithdrawMethodSchema } } } },
      responses: {
        200: { description: "Saved", content: { "application/json": { schema: WithdrawMethodSchema.extend({ usableFrom: z.string().openapi({ format: "date-time" }) }) } } },
        ...errorResponses,
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const { db, config, user } = c.var;
      const now = Date.now();
      const cooled = now + config.WITHDRAW_METHOD_COOLDOWN_HOURS * 3_600_000;
      const same = and(eq(withdrawMethods.bankName, body.bankName), eq(withdrawMethods.accountNumber, body.accountNumber), eq(withdrawMethods.accountName, body.accountName));
      // Decided in SQL, in one batch: a first account is usable at once, the same one again keeps its
      // usableFrom, a different one cools off and raises an alert (evaluated before the upsert).
      const changed = sql`exists (select 1 from ${withdrawMethods} where ${withdrawMethods.userId} = ${user.id} and not (${same}))`;
      const [, [saved]] = (await applyStatements(db, [
        alertWhen(
          db,
          { userId: user.id, alertType: "withdraw_method_changed", severity: "low", details: { bankName: body.bankName, accountLast4: body.accountNumber.slice(-4), usableFrom: new Date(cooled).toISOString() }, deviceFingerprint: deviceFingerprint(c) },
          now,
          changed,
        ),
        db
          .insert(withdrawMethods)
          .values({ userId: user.id, ...body, updatedAt: now, usableFrom: now })
          .onConflictDoUpdate({ target: withdrawMethods.userId, set: { ...body, updatedAt: now, usableFrom: sql`case when ${same} then ${withdrawMethods.usableFrom} else ${cooled} end` } })
          .returning(),
      ])) as [unknown, (typeof withdrawMethods.$inferSelect)[]];
      return c.json({ ...body, usableFrom: new Date(saved!.usableFrom).toISOString() }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/withdraw",
      tags: ["wallet", "payouts"],
      summary: "Withdraw coins or rupiah to the bank (KYC verified)",
      description:
        "Coins convert at COIN_VALUE_IDR. From the gross G: platform fee floor(G × WITHDRAW_PLATFORM_FEE_BPS / 10000), PPh tax " +
        "floor(G × WITHDRAW_PPH_BPS / 10000), net = G − fee − tax (1,000 coins → 100,000 / 10,000 / 2,000 / 88,000). Minimum G: " +
        "WITHDRAW_MIN_GROSS_IDR. One batch checks the account (active, KYC verified, bank account usable, no unusual pattern), holds the amount and " +
        "records the withdrawal; then an Iris payout of the net is created under an idempotency key. A definite refusal by Iris (4xx with its error body) " +
        "releases the hold (502). A timeout, 5xx or unreadable answer may hide an accepted payout: the answer is 202 with `unconfirmed: true` and the " +
        "amount stays held until reconciliation (which repeats the create under the same key) or an admin settles it.",
      security: bearerSecurity,
      request: {
        headers: idempotencyHeader,
        body: { required: true, content: { "application/json": { schema: z.object({ asset: z.enum(["COIN", "IDR"]), amount: z.number().int().min(1).max(MAX_AMOUNT) }).strict().openapi({ example: { asset: "COIN", amount: 1000 } }) } } },
      },
      responses: {
        202: { description: "Held and sent to Iris (or unconfirmed)", content: { "application/json": { schema: WithdrawResponseSchema } } },
        ...errorResponses,
        409: problemFor("Idempotency-Key reused with another body (`idempotency_conflict`), or a request with this key is still waiting on Iris (`conflict`, with Retry-After: the answer stays open for GATEWAY_TIMEOUT_MS plus 5 s)."),
        422: problemFor("`insufficient_funds`, `below_minimum`, `amount_too_large`, `withdraw_method_required`, `withdraw_method_cooldown` or `debt_outstanding`."),
        502: problemFor("Iris refused the payout; the hold was released (`gateway_error`)."),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const scope = await idempotencyScope(c, body);
      const outcome = await idempotent<{ status: 202; body: WithdrawResponse }>(c, scope, (record) =>
        requestWithdrawal(c.var.db, c.var.config, c.env, c.var.user.id, body, { deviceFingerprint: deviceFingerprint(c), scope, record }),
      );
      return c.json(outcome.body, outcome.status);
    },
  );

const AdminWithdrawalSchema = z
  .object({
    id: z.string(),
    userId: z.string(),
    asset: z.enum(["COIN", "IDR"]),
    amount: z.number().int(),
    grossIdr: z.number().int(),
    netIdr: z.number().int(),
    status: z.enum(["pending", "completed", "failed"]),
    unconfirmed: z.boolean(),
    irisReference: z.string().nullable(),
    failureReason: z.string().nullable(),
    bankName: z.string(),
    accountLast4: z.string(),
    resolvedBy: z.string().nullable(),
    createdAt: z.string(),
    completedAt: z.string().nullable(),
  })
  .openapi("AdminWithdrawal");

export const adminWithdrawalView = (w: WithdrawalRow) => ({
  id: w.id,
  userId: w.userId,
  asset: w.asset,
  amount: w.amount,
  grossIdr: w.grossIdr,
  netIdr: w.netIdr,
  status: w.status,
  unconfirmed: w.unconfirmed,
  irisReference: w.irisReference,
  failureReason: w.failureReason,
  bankName: w.bankName,
  accountLast4: w.accountNumber.slice(-4),
  resolvedBy: w.resolvedBy,
  createdAt: new Date(w.createdAt).toISOString(),
  completedAt: w.completedAt === null ? null : new Date(w.completedAt).toISOString(),
});

const IdParam = z.object({ id: z.string().regex(/^[0-9A-Z]{26}$/, "a withdrawal id") });

/** Mounted at /api/admin/withdrawals. */
export const adminWithdrawalsRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["admin", "payouts"],
      summary: "Pending withdrawals, oldest first (optionally only unconfirmed ones)",
      security: bearerSecurity,
      request: {
        query: z.object({
          unconfirmed: z.enum(["true", "false"]).optional(),
          limit: pageLimit(20),
          cursor: z.string().regex(/^[0-9A-Z]{26}$/).optional().openapi({ description: "The id of the last withdrawal of the previous page." }),
        }),
      },
      responses: { 200: { description: "Withdrawals", content: { "application/json": { schema: z.object({ items: z.array(AdminWithdrawalSchema), nextCursor: z.string().nullable() }) } } }, ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const rows = await c.var.db
        .select()
        .from(withdrawals)
        .where(and(eq(withdrawals.status, "pending"), q.unconfirmed ? eq(withdrawals.unconfirmed, q.unconfirmed === "true") : undefined, q.cursor ? gt(withdrawals.id, q.cursor) : undefined))
        .orderBy(asc(withdrawals.id))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit);
      return c.json({ items: page.map(adminWithdrawalView), nextCursor: rows.length > q.limit ? page.at(-1)!.id : null }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/resolve",
      tags: ["admin", "payouts"],
      summary: "Settle a pending withdrawal by hand: completed posts the hold, failed releases it (once; audited)",
      description:
        "Only for withdrawals Iris' answer left unconfirmed (`unconfirmed: true`); one Iris accepted is settled by Iris' own outcome, never by hand (409). Check the payout in the Iris dashboard first: `failed` releases the amount to the user.",
      security: bearerSecurity,
      request: {
        params: IdParam,
        headers: idempotencyHeader,
        body: { required: true, content: { "application/json": { schema: WithdrawalResolution.openapi({ example: { outcome: "completed", reason: "Iris dashboard shows the payout completed" } }) } } },
      },
      responses: {
        200: { description: "The settled withdrawal", content: { "application/json": { schema: AdminWithdrawalSchema } } },
        ...errorResponses,
        404: problemFor("No such withdrawal."),
        409: problemFor("Already completed or failed, or Iris accepted it (`conflict`); or the Idempotency-Key was used with another request."),
      },
    }),
    async (c) => {
      const { outcome, reason } = c.req.valid("json");
      const { id } = c.req.valid("param");
      const answer = await decideOnce<ReturnType<typeof adminWithdrawalView>>(c, { id, outcome, reason }, async (record) => adminWithdrawalView(await resolveWithdrawal(c.var.db, id, outcome, reason, c.var.user.id, (settled) => record(adminWithdrawalView(settled)))));
      return c.json(answer, 200);
    },
  );
