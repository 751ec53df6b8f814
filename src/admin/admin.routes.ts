import { createRoute, z } from "@hono/zod-openapi";
import { userAccountId, systemAccountId } from "../ledger/accounts";
import { applyPlan } from "../ledger/executor";
import { movePlan, previewRow } from "../ledger/plan";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
import { idempotencyScope, idempotent } from "../lib/idempotency";
import { newId } from "../lib/ids";
import { MAX_AMOUNT } from "../lib/money";
import { deviceFingerprint } from "../lib/request";
import { bearerSecurity, createRouter, idempotencyHeader } from "../lib/router";
import { findUser } from "../users/users.service";
import { AssetSchema, TransactionSchema, UserIdSchema } from "../wallet/wallet.schemas";
import { transactionView, type TransactionView } from "../wallet/wallet.view";
import { checkLedger } from "./ledger-check";
import { notAboutThemselves } from "../lib/auth";

const AdjustmentSchema = z
  .object({
    userId: UserIdSchema,
    asset: AssetSchema,
    amount: z
      .number()
      .int()
      .min(-MAX_AMOUNT)
      .max(MAX_AMOUNT)
      .refine((n) => n !== 0, "must not be zero")
      .openapi({ description: "Positive credits the user, negative debits; the other side is the platform adjustments account." }),
    category: z
      .enum(["correction", "goodwill", "promotion", "chargeback_recovery", "fraud_recovery"])
      .default("correction")
      .openapi({ description: "What the user sees in their history as the reason (the only detail shown to them)." }),
    reason: z.string().trim().min(3).max(500).openapi({ description: "Internal note, kept in the audit log with the admin's id; never shown to the user." }),
  })
  .strict()
  .openapi("AdjustmentRequest", { example: { userId: "alice", asset: "COIN", amount: 500, category: "goodwill", reason: "Compensation for ticket #4411" } });

const CountRow = z.record(z.string(), z.union([z.string(), z.number()]));
const LedgerCheckSchema = z
  .object({
    ok: z.boolean(),
    checkedAt: z.string(),
    assets: z.array(CountRow),
    negativeAccounts: z.array(CountRow),
    balanceMismatches: z.array(CountRow),
    unbalancedTransactions: z.array(CountRow),
    lockMismatches: z.array(CountRow),
    assetMismatches: z.array(CountRow).openapi({ description: "Accounts holding postings of another asset than their own." }),
    positiveDebts: z.array(CountRow).openapi({ description: "Debt accounts above zero (debt is only ever owed to the platform)." }),
  })
  .openapi("LedgerCheck");

export const adminRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/adjustments",
      tags: ["admin"],
      summary: "Manual ledger correction (audited, idempotent)",
      security: bearerSecurity,
      request: { headers: idempotencyHeader, body: { required: true, content: { "application/json": { schema: AdjustmentSchema } } } },
      responses: {
        201: { description: "The adjustment as the adjusted user sees it", content: { "application/json": { schema: TransactionSchema } } },
        ...errorResponses,
        404: problemFor("No such user."),
        409: problemFor("Idempotency-Key reused with another body."),
        422: problemFor("A debit larger than the user's available balance."),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const admin = c.var.user;
      const db = c.var.db;
      const outcome = await idempotent<{ status: 201; body: TransactionView }>(c, await idempotencyScope(c, body), async (record) => {
        notAboutThemselves(admin.id, body.userId, "adjust a balance");
        const target = await findUser(db, body.userId);
        if (!target) throw new ApiError("not_found", "No user with that id.");
        const now = Date.now();
        const wallet = userAccountId(target.id, body.asset);
        const platform = systemAccountId("adjustments", body.asset);
        const amount = Math.abs(body.amount);
        const tx = {
          id: newId(now),
          type: "adjustment" as const,
          asset: body.asset,
          amount,
          userId: target.id,
          metadata: { category: body.category },
          // The admin's device is theirs, not the adjusted user's: it goes to the audit entry.
          deviceFingerprint: null,
        };
        const plan = movePlan({
          tx,
          from: body.amount > 0 ? platform : wallet,
          to: body.amount > 0 ? wallet : platform,
          sideAccountId: wallet,
          audit: { actorId: admin.id, action: "ledger.adjustment", subjectType: "user", subjectId: target.id, details: { asset: body.asset, amount: body.amount, category: body.category, reason: body.reason, deviceFingerprint: deviceFingerprint(c) } },
          now,
        });
        const leg = { amount: body.amount, balanceAfter: 0 };
        const row = await applyPlan(db, plan, { idempotency: record({ status: 201, body: transactionView(previewRow(plan), target.id, leg) }) });
        return { status: 201 as const, body: transactionView(row, target.id, leg) };
      });
      return c.json(outcome.body, outcome.status);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/ledger/check",
      tags: ["admin"],
      summary: "Reconciliation: the ledger's invariants over the whole database",
      description:
        "Runs the check now (a scan of every account, posting and hold) and answers its report without keeping it. The daily cron and the console's " +
        "*Check now* keep reports (the console overview shows the latest); a failed kept check raises one critical `ledger_check_failed` alert per business day (BUSINESS_TZ_OFFSET), " +
        "and so does a kept check that cannot run (details `ran: false`).",
      security: bearerSecurity,
      responses: { 200: { description: "Invariant report; `ok` is true when all hold", content: { "application/json": { schema: LedgerCheckSchema } } }, ...errorResponses },
    }),
    async (c) => c.json(await checkLedger(c.var.db), 200),
  );
