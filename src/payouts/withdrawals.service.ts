import { and, eq, isNotNull, isNull, lt } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { idempotencyKeys, withdrawMethods, withdrawals, type WithdrawalRow } from "../db/schema";
import type { AuthUser } from "../env";
import { raiseAlert } from "../fraud/alerts";
import { GatewayError, midtransGateway } from "../integrations/midtrans";
import { userAccountId } from "../ledger/accounts";
import { applyPlan, type IdempotencyWrite, type Statement } from "../ledger/executor";
import { holdPlan, postHoldPlan, voidHoldPlan, type HoldRef } from "../ledger/plan";
import { assertMayMoveOut } from "../lib/auth";
import { ApiError, problemBody } from "../lib/errors";
import type { IdempotencyScope } from "../lib/idempotency";
import { newId } from "../lib/ids";
import type { Asset } from "../lib/money";
import { withdrawalBreakdown, withdrawalCredits } from "./withdrawal-rules";
import { checkRules } from "../fraud/engine";
import { median } from "../activity/bot-rules";

export interface WithdrawResponse {
  withdrawalId: string;
  grossIdr: number;
  platformFeeIdr: number;
  taxIdr: number;
  netIdr: number;
  status: "pending";
}

const holdOf = (w: WithdrawalRow): HoldRef => ({ id: w.holdId, transactionId: w.transactionId, accountId: userAccountId(w.userId, w.asset), asset: w.asset, amount: w.amount });

/**
 * SPEC §7. One batch holds the amount and records the withdrawal (and the idempotent answer); then
 * Iris is asked to pay the net. If Iris fails, the hold is voided in one more batch and the answer
 * (remembered under the same Idempotency-Key) is 502: nothing stays locked and nothing is paid twice.
 */
export async function requestWithdrawal(
  db: Db,
  config: Config,
  env: Env,
  user: AuthUser,
  input: { asset: Asset; amount: number },
  ctx: { deviceFingerprint: string | null; scope: IdempotencyScope | undefined; record: (o: { status: 202; body: WithdrawResponse }) => IdempotencyWrite | undefined },
): Promise<{ status: 202; body: WithdrawResponse }> {
  assertMayMoveOut(user);
  if (user.record.kycStatus !== "verified") throw new ApiError("kyc_required", "Withdrawals need a verified KYC.");
  const method = await db.query.withdrawMethods.findFirst({ where: eq(withdrawMethods.userId, user.id) });
  if (!method) throw new ApiError("withdraw_method_required", "Set a bank account with PUT /api/wallet/withdraw-method first.");
  const b = withdrawalBreakdown(input.asset, input.amount, { coinValueIdr: config.COIN_VALUE_IDR, feeBps: config.WITHDRAW_PLATFORM_FEE_BPS, taxBps: config.WITHDRAW_PPH_BPS });
  if (b.grossIdr < config.WITHDRAW_MIN_GROSS_IDR) throw new ApiError("below_minimum", `The minimum withdrawal is Rp ${config.WITHDRAW_MIN_GROSS_IDR} gross.`);
  const findings = await checkRules(db, config, { userId: user.id, deviceFingerprint: ctx.deviceFingerprint }, { event: "withdrawal", grossIdr: b.grossIdr, medianPastGrossIdr: await medianPastWithdrawal(db, user.id) });
  if (findings.some((f) => f.level >= 3)) throw new ApiError("verification_required", "This withdrawal needs additional verification; an administrator will review it.");

  const now = Date.now();
  const withdrawalId = newId(now);
  const hold = { id: newId(now), transactionId: newId(now), accountId: userAccountId(user.id, input.asset), asset: input.asset, amount: input.amount };
  const body: WithdrawResponse = { withdrawalId, ...b, status: "pending" };
  const row: WithdrawalRow = {
    id: withdrawalId, userId: user.id, asset: input.asset, amount: input.amount, ...b, status: "pending", holdId: hold.id, transactionId: hold.transactionId,
    irisReference: null, bankName: method.bankName, accountNumber: method.accountNumber, accountName: method.accountName, failureReason: null, createdAt: now, updatedAt: now, completedAt: null,
  };
  await applyPlan(
    db,
    holdPlan({
      tx: { id: hold.transactionId, type: "withdraw", asset: input.asset, amount: input.amount, userId: user.id, metadata: { withdrawalId, ...b, bankName: method.bankName }, deviceFingerprint: ctx.deviceFingerprint },
      holdId: hold.id,
      accountId: hold.accountId,
      audit: { actorId: user.id, action: "withdrawal.requested", subjectType: "withdrawal", subjectId: withdrawalId, details: { ...b, asset: input.asset, amount: input.amount } },
      now,
    }),
    { alongside: [db.insert(withdrawals).values(row)], idempotency: ctx.record({ status: 202, body }) },
  );

  try {
    const payout = await midtransGateway(config, env).createPayout({ name: method.accountName, account: method.accountNumber, bank: method.bankName, amount: b.netIdr, notes: `Withdrawal ${withdrawalId}` });
    await db.update(withdrawals).set({ irisReference: payout.referenceNo, updatedAt: Date.now() }).where(eq(withdrawals.id, withdrawalId));
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    const failure = new ApiError("gateway_error", `The bank payout could not be created (${error.reason}); the amount was released. Nothing was withdrawn.`);
    const rememberFailure = ctx.scope
      ? [db.update(idempotencyKeys).set({ statusCode: failure.status, responseBody: JSON.stringify(problemBody(failure.code, failure.detail)) }).where(and(eq(idempotencyKeys.userId, ctx.scope.userId), eq(idempotencyKeys.key, ctx.scope.key)))]
      : [];
    await settleWithdrawal(db, row, "failed", `iris_${error.reason}`, rememberFailure);
    throw failure;
  }
  return { status: 202, body };
}

/** The median gross of the user's completed withdrawals (null without history), for unusual_withdraw_pattern. */
async function medianPastWithdrawal(db: Db, userId: string): Promise<number | null> {
  const rows = await db.select({ gross: withdrawals.grossIdr }).from(withdrawals).where(and(eq(withdrawals.userId, userId), eq(withdrawals.status, "completed"))).orderBy(withdrawals.grossIdr).limit(1000);
  if (rows.length === 0) return null;
  return median(rows.map((r) => r.gross));
}

export type SettleResult = "completed" | "failed" | "duplicate";

/** Posts (completed) or voids (failed) a withdrawal's hold, each at most once, in any order. */
export async function settleWithdrawal(db: Db, w: WithdrawalRow, outcome: "completed" | "failed", reason: string | null, alongside: Statement[] = []): Promise<SettleResult> {
  const now = Date.now();
  const audit = { actorId: "gateway:iris", action: `withdrawal.${outcome}`, subjectType: "withdrawal", subjectId: w.id, details: { reason } };
  const plan =
    outcome === "completed"
      ? postHoldPlan({ hold: holdOf(w), credits: withdrawalCredits(w.asset, w.amount, w), audit, now })
      : voidHoldPlan({ hold: holdOf(w), status: "failed", audit, now });
  try {
    await applyPlan(db, plan, {
      alongside: [
        db.update(withdrawals).set({ status: outcome, failureReason: reason, completedAt: outcome === "completed" ? now : null, updatedAt: now }).where(eq(withdrawals.id, w.id)),
        ...alongside,
      ],
    });
    return outcome;
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_applied") return "duplicate";
    throw error;
  }
}

/** Iris statuses: completed posts; failed/rejected voids; queued/approved/processed are progress only. */
export function irisOutcome(status: string): "completed" | "failed" | null {
  if (status === "completed") return "completed";
  if (status === "failed" || status === "rejected") return "failed";
  return null;
}

/**
 * Scheduled: withdrawals pending longer than WITHDRAW_RECONCILE_AFTER_MINUTES are asked of Iris and
 * settled by its answer. One without an Iris reference (the Worker stopped between hold and payout)
 * is not voided blindly, since Iris may have accepted it: it raises an alert for a person to check.
 */
export async function reconcileWithdrawals(db: Db, config: Config, env: Env, now: number) {
  const cutoff = now - config.WITHDRAW_RECONCILE_AFTER_MINUTES * 60_000;
  const stale = await db.select().from(withdrawals).where(and(eq(withdrawals.status, "pending"), lt(withdrawals.createdAt, cutoff))).limit(100);
  const gateway = midtransGateway(config, env);
  const result = { checked: stale.length, settled: 0, flagged: 0 };
  for (const w of stale) {
    if (!w.irisReference) {
      await raiseAlert(db, { userId: w.userId, alertType: "withdrawal_without_payout", severity: "high", details: { withdrawalId: w.id, netIdr: w.netIdr } });
      await db.update(withdrawals).set({ updatedAt: now, failureReason: "needs_review" }).where(and(eq(withdrawals.id, w.id), isNull(withdrawals.irisReference)));
      result.flagged++;
      continue;
    }
    try {
      const outcome = irisOutcome((await gateway.payoutStatus(w.irisReference)).status);
      if (outcome && (await settleWithdrawal(db, w, outcome, outcome === "failed" ? "iris_reconciled_failed" : null)) !== "duplicate") result.settled++;
    } catch (error) {
      if (!(error instanceof GatewayError)) throw error;
    }
  }
  return result;
}

export async function findWithdrawalByReference(db: Db, reference: string) {
  return db.query.withdrawals.findFirst({ where: and(isNotNull(withdrawals.irisReference), eq(withdrawals.irisReference, reference)) });
}

