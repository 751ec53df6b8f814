import { and, asc, eq, isNotNull, isNull, lte, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { fraudAlerts, idempotencyKeys, kycSubmissions, users, withdrawals, withdrawMethods, type WithdrawalRow } from "../db/schema";
import { alertStatement, dedupeKey, raiseAlert } from "../fraud/alerts";
import { checkRules, whitelistedSql } from "../fraud/engine";
import { ruleById } from "../fraud/rules";
import { GatewayError, midtransGateway, type IrisPayoutRequest } from "../integrations/midtrans";
import { userAccountId } from "../ledger/accounts";
import { applyPlan, applyPlanWithResults, applyStatements, type IdempotencyWrite, type Statement } from "../ledger/executor";
import { guard, GuardError, type Guard } from "../ledger/guards";
import { holdPlan, postHoldPlan, voidHoldPlan, type HoldRef } from "../ledger/plan";
import { ApiError, problemBody } from "../lib/errors";
import type { IdempotencyScope } from "../lib/idempotency";
import { newId } from "../lib/ids";
import { MAX_AMOUNT, type Asset } from "../lib/money";
import { callerKycVerified, callerMayMoveOut, withdrawMethodUsable } from "../users/users.guards";
import { withdrawalBreakdown, withdrawalCredits } from "./withdrawal-rules";
import { medianCompletedGrossSql } from "./withdrawal-facts";
import { insertWhere } from "../db/insert-where";
import { notAboutThemselves } from "../lib/auth";

export interface WithdrawResponse {
  withdrawalId: string;
  grossIdr: number;
  platformFeeIdr: number;
  taxIdr: number;
  netIdr: number;
  status: "pending";
  /** Present and true when Iris' answer was ambiguous: the amount stays held until reconciliation or an admin settles it. */
  unconfirmed?: true;
}

const holdOf = (w: WithdrawalRow): HoldRef => ({ id: w.holdId, transactionId: w.transactionId, accountId: userAccountId(w.userId, w.asset), asset: w.asset, amount: w.amount });

/** What Iris is asked to pay for a withdrawal: derived from the stored row only, so every retry sends the same request. */
export const irisRequestOf = (w: Pick<WithdrawalRow, "id" | "accountName" | "accountNumber" | "bankName" | "netIdr">): IrisPayoutRequest => ({
  name: w.accountName,
  account: w.accountNumber,
  bank: w.bankName,
  amount: w.netIdr,
  notes: `Withdrawal ${w.id}`,
  idempotencyKey: `withdrawal-${w.id}`,
});

/** The withdrawal id Iris' notes name (what `irisRequestOf` wrote), if any. */
export const withdrawalIdFromNotes = (notes: string) => /^Withdrawal ([0-9A-Z]{26})$/.exec(notes)?.[1];

const UNCONFIRMED_FIRST_CHECK_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 6 * 3_600_000;

/**
 * SPEC §7. ONE batch decides and holds: the caller's status, KYC and bank account (usable, not cooling
 * off) and the unusual-withdrawal rule are guards in the batch that holds the amount, records the
 * withdrawal (bank details copied from the method in SQL) and the idempotent answer. Then Iris is asked
 * to pay the net under an idempotency key. Only a definite refusal voids the hold; an ambiguous answer
 * leaves it held and `unconfirmed` for reconciliation or an admin. Iris' reference is learned from its
 * signed notification or by reconciliation, so the happy path costs one D1 round trip.
 */
export async function requestWithdrawal(
  db: Db,
  config: Config,
  env: Env,
  userId: string,
  input: { asset: Asset; amount: number },
  ctx: { deviceFingerprint: string | null; scope: IdempotencyScope | undefined; record: (o: { status: 202; body: WithdrawResponse }) => IdempotencyWrite | undefined },
): Promise<{ status: 202; body: WithdrawResponse }> {
  const grossIdr = input.asset === "COIN" ? input.amount * config.COIN_VALUE_IDR : input.amount;
  if (grossIdr > MAX_AMOUNT) throw new ApiError("amount_too_large", `A withdrawal may not exceed Rp ${MAX_AMOUNT} gross.`);
  const b = withdrawalBreakdown(input.asset, input.amount, { coinValueIdr: config.COIN_VALUE_IDR, feeBps: config.WITHDRAW_PLATFORM_FEE_BPS, taxBps: config.WITHDRAW_PPH_BPS });
  if (b.grossIdr < config.WITHDRAW_MIN_GROSS_IDR) throw new ApiError("below_minimum", `The minimum withdrawal is Rp ${config.WITHDRAW_MIN_GROSS_IDR} gross.`);

  const now = Date.now();
  const withdrawalId = newId(now);
  const hold = { id: newId(now), transactionId: newId(now), accountId: userAccountId(userId, input.asset), asset: input.asset, amount: input.amount };
  const body: WithdrawResponse = { withdrawalId, ...b, status: "pending" };
  const subject = { userId, deviceFingerprint: ctx.deviceFingerprint };
  const unusual = ruleById("unusual_withdraw_pattern", "withdrawal");
  const unusualSql = unusual.firesSql!({ grossIdr: sql`${b.grossIdr}`, medianPastGrossIdr: medianCompletedGrossSql(userId) }, unusual.params(config));
  const unusualNotWhitelisted = sql`(${unusualSql} and not ${whitelistedSql(subject, now)})`;
  const nextCheckAt = now + config.WITHDRAW_RECONCILE_AFTER_MINUTES * 60_000;
  const insertWithdrawal = insertWhere(
    db,
    withdrawals,
    {
      id: withdrawalId, userId, asset: input.asset, amount: input.amount, ...b, status: "pending", holdId: hold.id, transactionId: hold.transactionId,
      bankName: sql`${withdrawMethods.bankName}`, accountNumber: sql`${withdrawMethods.accountNumber}`, accountName: sql`${withdrawMethods.accountName}`,
      nextCheckAt, createdAt: now, updatedAt: now,
      // The clearance this withdrawal uses, if the rule would refuse it without one (so it is used once).
      clearanceAlertId: sql`(case when ${unusualNotWhitelisted} then ${clearingAlert(userId, b.grossIdr, now)} end)`,
    },
    sql`from ${withdrawMethods} where ${withdrawMethods.userId} = ${userId}`,
  ).returning({ bankName: withdrawals.bankName, accountNumber: withdrawals.accountNumber, accountName: withdrawals.accountName, clearanceAlertId: withdrawals.clearanceAlertId });
  let bank: { bankName: string; accountNumber: string; accountName: string; clearanceAlertId: string | null };
  try {
    const { alongside } = await applyPlanWithResults(
      db,
      holdPlan({
        tx: { id: hold.transactionId, type: "withdraw", asset: input.asset, amount: input.amount, userId, metadata: { withdrawalId, ...b }, deviceFingerprint: ctx.deviceFingerprint },
        holdId: hold.id,
        accountId: hold.accountId,
        audit: { actorId: userId, action: "withdrawal.requested", subjectType: "withdrawal", subjectId: withdrawalId, details: { ...b, asset: input.asset, amount: input.amount } },
        now,
      }),
      {
        guards: [
          ...callerMayMoveOut(userId),
          ...callerKycVerified(userId),
          ...withdrawMethodUsable(userId, now),
          guard("unusual_withdraw_pattern", sql`${unusualNotWhitelisted} and ${clearingAlert(userId, b.grossIdr, now)} is null`),
        ],
        alongside: [insertWithdrawal],
        // Open until Iris has answered (its deadline and a margin): a refusal or an unclear answer replaces it.
        idempotency: withSettlesAt(ctx.record({ status: 202, body }), now + config.GATEWAY_TIMEOUT_MS + ANSWER_MARGIN_MS),
      },
    );
    bank = (alongside[0] as (typeof bank)[])[0]!;
  } catch (error) {
    if (error instanceof GuardError && error.guard === "unusual_withdraw_pattern") {
      // The unusual-withdrawal rule fired inside the batch: record its alert and action (level 3) now.
      await checkRules(db, config, subject, { event: "withdrawal", grossIdr: b.grossIdr, medianPastGrossIdr: await medianPastWithdrawal(db, userId) }, now);
    }
    throw error;
  }

  const w: WithdrawalRow = {
    id: withdrawalId, userId, asset: input.asset, amount: input.amount, ...b, status: "pending", holdId: hold.id, transactionId: hold.transactionId, irisReference: null, ...bank,
    failureReason: null, unconfirmed: false, nextCheckAt, checks: 0, resolvedBy: null, createdAt: now, updatedAt: now, completedAt: null,
  };
  return sendToIris(db, config, env, w, body, ctx.scope);
}

/** After the gateway's deadline, how long the request may still take to store Iris' answer. */
const ANSWER_MARGIN_MS = 5_000;
const withSettlesAt = (write: IdempotencyWrite | undefined, settlesAt: number) => (write ? { ...write, settlesAt } : undefined);

/** How long an admin's clearing of an unusual withdrawal lets it through. */
const CLEARANCE_MS = 86_400_000;

/**
 * Level 3 asks for verification before money out; an admin who reviewed an unusual-withdrawal alert and
 * cleared it, or a KYC re-check the user passed after it, has verified it: within a day, one withdrawal the
 * rule would refuse, up to the amount that alert was about, goes through (else the rule, whose median has not
 * moved, would refuse it forever). The withdrawal records the alert it used (`clearanceAlertId`); one that
 * then failed (Iris refused it, nothing was paid) gives the clearance back.
 */
const clearingAlert = (userId: string, grossIdr: number, now: number) => {
  // When the alert was cleared: an admin's review `cleared` it, or, while no admin has reviewed it, the first
  // KYC re-check the user passed after it (a later re-check does not clear it again).
  const clearedAt = sql`(case when ${fraudAlerts.actionTaken} = 'cleared' then ${fraudAlerts.reviewedAt}
    when ${fraudAlerts.reviewedAt} is null then (select min(${kycSubmissions.reviewedAt}) from ${kycSubmissions} where ${kycSubmissions.userId} = ${userId} and ${kycSubmissions.status} = 'verified' and ${kycSubmissions.reviewedAt} > ${fraudAlerts.createdAt}) end)`;
  // Used once: by the one withdrawal it let through (recorded on that withdrawal), whatever the amounts,
  // unless that withdrawal failed and paid nothing.
  return sql`(select ${fraudAlerts.id} from ${fraudAlerts} where ${fraudAlerts.userId} = ${userId} and ${fraudAlerts.alertType} = 'unusual_withdraw_pattern'
    and ${clearedAt} > ${now - CLEARANCE_MS} and json_extract(${fraudAlerts.details}, '$.facts.grossIdr') >= ${grossIdr}
    and not exists (select 1 from ${withdrawals} where ${withdrawals.clearanceAlertId} = ${fraudAlerts.id} and ${withdrawals.status} <> 'failed') order by ${fraudAlerts.id} limit 1)`;
};

/** Asks Iris to pay a freshly held withdrawal and answers the request by the outcome. */
async function sendToIris(db: Db, config: Config, env: Env, w: WithdrawalRow, body: WithdrawResponse, scope: IdempotencyScope | undefined): Promise<{ status: 202; body: WithdrawResponse }> {
  try {
    await midtransGateway(config, env).createPayout(irisRequestOf(w));
    return { status: 202, body };
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    const remember = (status: number, stored: unknown): Statement[] =>
      scope ? [db.update(idempotencyKeys).set({ statusCode: status, responseBody: JSON.stringify(stored), settlesAt: null }).where(and(eq(idempotencyKeys.userId, scope.userId), eq(idempotencyKeys.key, scope.key)))] : [];
    if (error.definite) {
      const failure = new ApiError("gateway_error", `Iris refused the bank payout (${error.message}); the amount was released. Nothing was withdrawn.`);
      await settleWithdrawal(db, w, "failed", { reason: "iris_refused", actorId: "gateway:iris", alongside: remember(failure.status, problemBody(failure.code, failure.detail)) });
      throw failure;
    }
    // Iris may have accepted it: keep the hold, flag it, and let reconciliation ask again (same idempotency key).
    // Unless Iris' own notification told us its reference meanwhile: then it accepted the payout, and only its
    // outcome settles it (flagged, an admin could give the coins back while Iris pays the bank).
    const unconfirmed: WithdrawResponse = { ...body, unconfirmed: true };
    const now = Date.now();
    await applyStatements(db, [
      db
        .update(withdrawals)
        .set({ unconfirmed: true, failureReason: `iris_${error.reason}`, nextCheckAt: now + UNCONFIRMED_FIRST_CHECK_MS, updatedAt: now })
        .where(and(eq(withdrawals.id, w.id), eq(withdrawals.status, "pending"), isNull(withdrawals.irisReference))),
      ...remember(202, unconfirmed),
    ]);
    return { status: 202, body: unconfirmed };
  }
}

/** The median gross of the user's completed withdrawals (null without history), for unusual_withdraw_pattern's alert. */
async function medianPastWithdrawal(db: Db, userId: string): Promise<number | null> {
  const [row] = await db.all<{ m: number | null }>(sql`select ${medianCompletedGrossSql(userId)} as m`);
  return row?.m ?? null;
}

export type SettleResult = "completed" | "failed" | "duplicate";

/**
 * Posts (completed) or voids (failed) a withdrawal's hold, each at most once, in any order, recording
 * Iris' reference when it is learned here. A second, different outcome (an admin said failed, Iris says
 * completed) changes nothing and raises a critical alert for a person to reconcile.
 */
export async function settleWithdrawal(
  db: Db,
  w: WithdrawalRow,
  outcome: "completed" | "failed",
  opts: { reason: string | null; actorId: string; reference?: string; guards?: Guard[]; alongside?: Statement[]; idempotency?: IdempotencyWrite; now?: number },
): Promise<SettleResult> {
  const now = opts.now ?? Date.now();
  const audit = { actorId: opts.actorId, action: `withdrawal.${outcome}`, subjectType: "withdrawal", subjectId: w.id, details: { reason: opts.reason } };
  const plan =
    outcome === "completed"
      ? postHoldPlan({ hold: holdOf(w), credits: withdrawalCredits(w.asset, w.amount, w), audit, now })
      : voidHoldPlan({ hold: holdOf(w), status: "failed", audit, now });
  const reference = opts.reference ? { irisReference: sql`coalesce(${withdrawals.irisReference}, ${opts.reference})` } : {};
  try {
    await applyPlan(db, plan, {
      idempotency: opts.idempotency,
      guards: opts.guards,
      alongside: [
        db
          .update(withdrawals)
          .set({ status: outcome, failureReason: opts.reason, unconfirmed: false, nextCheckAt: null, completedAt: outcome === "completed" ? now : null, updatedAt: now, ...reference })
          .where(eq(withdrawals.id, w.id)),
        ...(outcome === "completed" ? [db.update(users).set({ totalWithdrawnIdr: sql`${users.totalWithdrawnIdr} + ${w.grossIdr}` }).where(eq(users.id, w.userId))] : []),
        ...(opts.alongside ?? []),
      ],
    });
    return outcome;
  } catch (error) {
    if (!(error instanceof ApiError && error.code === "already_applied")) throw error;
    const current = await db.query.withdrawals.findFirst({ where: eq(withdrawals.id, w.id) });
    if (current && current.status !== outcome) {
      await raiseAlert(db, {
        userId: w.userId,
        alertType: "withdrawal_outcome_conflict",
        severity: "critical",
        details: { withdrawalId: w.id, settled: current.status, reported: outcome, by: opts.actorId, reason: opts.reason },
        dedupeKey: await dedupeKey("withdrawal_outcome_conflict", w.id, outcome),
      });
    }
    return "duplicate";
  }
}

/** Iris statuses: completed posts; failed/rejected voids; queued/approved/processed are progress only. */
export function irisOutcome(status: string): "completed" | "failed" | null {
  if (status === "completed") return "completed";
  if (status === "failed" || status === "rejected") return "failed";
  return null;
}

/**
 * An admin settles an unconfirmed withdrawal by hand (SPEC §7: Iris' answer was lost, or reconciliation
 * flagged it), once; audited with the reason. One Iris accepted is settled only by Iris' own outcome: a
 * hand-made "failed" would give the coins back while Iris pays the bank. Checked again at commit (a
 * notification or reconciliation may confirm it meanwhile).
 */
export async function resolveWithdrawal(db: Db, id: string, outcome: "completed" | "failed", reason: string, adminId: string, record?: (settled: WithdrawalRow) => IdempotencyWrite | undefined) {
  const w = await db.query.withdrawals.findFirst({ where: eq(withdrawals.id, id) });
  if (!w) throw new ApiError("not_found", "No such withdrawal.");
  notAboutThemselves(adminId, w.userId, "resolve a withdrawal");
  if (w.status !== "pending") throw new ApiError("conflict", `The withdrawal is already ${w.status}.`);
  const confirmed = guard("withdrawal_confirmed", sql`exists (select 1 from ${withdrawals} where ${withdrawals.id} = ${id} and ${withdrawals.status} = 'pending' and ${withdrawals.unconfirmed} = 0)`);
  if (!w.unconfirmed) throw new GuardError(confirmed.name);
  const now = Date.now();
  // The row as this settlement leaves it (what settleWithdrawal and the alongside update set).
  const settled: WithdrawalRow = { ...w, status: outcome, failureReason: `admin: ${reason}`, unconfirmed: false, nextCheckAt: null, completedAt: outcome === "completed" ? now : null, updatedAt: now, resolvedBy: adminId };
  const result = await settleWithdrawal(db, w, outcome, {
    reason: settled.failureReason,
    actorId: adminId,
    now,
    idempotency: record?.(settled),
    guards: [confirmed],
    alongside: [db.update(withdrawals).set({ resolvedBy: adminId }).where(eq(withdrawals.id, id))],
  });
  if (result === "duplicate") throw new ApiError("conflict", "The withdrawal was settled concurrently.");
  return settled;
}

/**
 * Scheduled. Pending withdrawals whose check is due, oldest due first, 100 per run. Each row is claimed
 * before Iris is asked: the claim schedules its next check with backoff (so stuck rows never starve the
 * others) and skips a row settled since the list was read (by an admin, a notification or another run).
 * With a reference, Iris' status settles it. Without one (an ambiguous answer, or the Worker stopped
 * before asking Iris), the create is repeated with the same idempotency key while Iris still keeps it:
 * Iris answers with the payout it already has (or makes it, if it never arrived), never a second one.
 * Reconciliation never releases a hold on a refusal: a refused repeat, or a refused status query, does
 * not prove that no payout exists (Iris may check credentials or the caller's address before its key).
 * Only Iris' own status `failed`/`rejected` releases it. Otherwise (a refused repeat or status query, or past
 * Iris' window) a person decides: one alert per withdrawal, and POST /api/admin/withdrawals/{id}/resolve.
 */
export async function reconcileWithdrawals(db: Db, config: Config, env: Env, now: number) {
  const due = await db
    .select()
    .from(withdrawals)
    .where(and(eq(withdrawals.status, "pending"), lte(withdrawals.nextCheckAt, now)))
    .orderBy(asc(withdrawals.nextCheckAt), asc(withdrawals.id))
    .limit(100);
  const gateway = midtransGateway(config, env);
  const result = { checked: due.length, settled: 0, referencesLearned: 0, needsReview: 0 };
  for (const w of due) {
    const stillPending = and(eq(withdrawals.id, w.id), eq(withdrawals.status, "pending"));
    // A row about to be sent to Iris again (no reference yet) is not resolvable by hand while it is sent: an admin's
    // "failed" committed during the call would give the coins back while Iris makes the payout. It is flagged
    // again below if Iris' answer is lost again, or refused.
    const sending = !w.irisReference && now - w.createdAt <= config.IRIS_IDEMPOTENCY_WINDOW_HOURS * 3_600_000;
    const [claimed] = await db
      .update(withdrawals)
      .set({ nextCheckAt: now + Math.min(MAX_BACKOFF_MS, UNCONFIRMED_FIRST_CHECK_MS * 2 ** w.checks), checks: w.checks + 1, updatedAt: now, ...(sending ? { unconfirmed: false } : {}) })
      .where(and(stillPending, eq(withdrawals.checks, w.checks)))
      .returning({ id: withdrawals.id });
    if (!claimed) continue;
    const flagForReview = async (reason: string) => {
      await applyStatements(db, [
        db.update(withdrawals).set({ unconfirmed: true }).where(stillPending),
        alertStatement(db, { userId: w.userId, alertType: "withdrawal_unconfirmed", severity: "high", details: { withdrawalId: w.id, netIdr: w.netIdr, since: new Date(w.createdAt).toISOString(), reason }, dedupeKey: await dedupeKey("withdrawal_unconfirmed", w.id) }, now),
      ]);
      result.needsReview++;
    };
    // Accepted but no outcome for too long (never approved in Iris, or its status never readable): a person
    // looks, and may then resolve it (after cancelling it in Iris); the next checks still run.
    const overdue = async () => {
      if (!w.unconfirmed && now - w.createdAt > config.WITHDRAW_REVIEW_AFTER_HOURS * 3_600_000) await flagForReview("iris_no_outcome");
    };
    let reference = w.irisReference;
    try {
      if (!reference) {
        if (now - w.createdAt > config.IRIS_IDEMPOTENCY_WINDOW_HOURS * 3_600_000) {
          await flagForReview("past_iris_idempotency_window");
          continue;
        }
        try {
          reference = (await gateway.createPayout(irisRequestOf(w))).referenceNo;
        } catch (error) {
          if (error instanceof GatewayError && error.definite) {
            await flagForReview(`iris_refused_repeat: ${error.message}`);
            continue;
          }
          // Lost again: as unconfirmed as it was before the claim (unless a notification told us its reference meanwhile).
          if (w.unconfirmed) await applyStatements(db, [db.update(withdrawals).set({ unconfirmed: true }).where(and(stillPending, isNull(withdrawals.irisReference)))]);
          throw error;
        }
        await applyStatements(db, [db.update(withdrawals).set({ irisReference: reference, unconfirmed: false }).where(eq(withdrawals.id, w.id))]);
        result.referencesLearned++;
      }
      let details;
      try {
        details = await gateway.payoutDetails(reference);
      } catch (error) {
        // A refused status query of a payout Iris gave us the reference of proves nothing either; a person looks (the next check still runs).
        if (error instanceof GatewayError && error.definite) {
          await flagForReview(`iris_refused_status: ${error.message}`);
          continue;
        }
        throw error;
      }
      const outcome = irisOutcome(details.status);
      if (!outcome) await overdue();
      else if ((await settleWithdrawal(db, w, outcome, { reason: outcome === "failed" ? "iris_reconciled_failed" : null, actorId: "system:reconciliation", reference })) !== "duplicate") {
        result.settled++;
      }
    } catch (error) {
      // Ambiguous, or a refused status query: the claim already scheduled the next check.
      if (!(error instanceof GatewayError)) throw error;
      await overdue();
    }
  }
  return result;
}

export async function findWithdrawalByReference(db: Db, reference: string) {
  return db.query.withdrawals.findFirst({ where: and(isNotNull(withdrawals.irisReference), eq(withdrawals.irisReference, reference)) });
}

export async function findWithdrawal(db: Db, id: string) {
  return db.query.withdrawals.findFirst({ where: eq(withdrawals.id, id) });
}
