import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { batchGuards } from "../db/schema";
import { ApiError } from "../lib/errors";
import type { Statement } from "./executor";

/**
 * Guards: statements that abort the batch they run in when a condition holds at commit time. Each
 * inserts a row into `batch_guards` only when its condition is true, and that table's trigger refuses
 * every row with RAISE(ABORT, 'guard:<name>'), so the whole batch rolls back and `translateBatchError`
 * answers with the guard's problem. Nothing is decided from a read in an earlier round trip: the
 * condition is evaluated by SQLite inside the same transaction as the movement it protects.
 */
export const GUARDS = {
  caller_banned: () => new ApiError("account_banned", "This account is banned."),
  caller_frozen: () => new ApiError("account_frozen", "This account is frozen; money cannot leave it."),
  caller_verification_required: () => new ApiError("verification_required", "Additional verification is required before money can leave this account."),
  caller_kyc_required: () => new ApiError("kyc_required", "Withdrawals need a verified KYC."),
  withdraw_method_missing: () => new ApiError("withdraw_method_required", "Set a bank account with PUT /api/wallet/withdraw-method first."),
  withdraw_method_cooldown: () => new ApiError("withdraw_method_cooldown", "The bank account was changed recently; it can be used once the cooling-off period has passed."),
  recipient_missing: () => new ApiError("recipient_not_found", "No user with that id."),
  recipient_banned: () => new ApiError("recipient_unavailable", "That user cannot receive transfers."),
  spend_per_tx_limit: () => new ApiError("limit_exceeded", "This spend exceeds your per-transaction spending limit."),
  order_not_creditable: () => new ApiError("already_applied", "The order can no longer be credited."),
  order_reversal_moved: () => new ApiError("conflict", "Another reversal of this order was applied concurrently."),
  payout_not_held: () => new ApiError("conflict", "The payout is no longer held."),
  payout_not_payable: () => new ApiError("already_applied", "The payout was already decided."),
  campaign_suspended: () => new ApiError("campaign_suspended", "The campaign's owner is frozen or banned; it pays nothing."),
  withdrawal_not_pending: () => new ApiError("conflict", "The withdrawal is no longer pending."),
  invoice_units_changed: () => new ApiError("conflict", "Billable usage changed while the invoice was priced."),
  unusual_withdraw_pattern: () => new ApiError("verification_required", "This withdrawal needs additional verification; an administrator will review it."),
} as const;

export type GuardName = keyof typeof GUARDS;

/** The problem a guard stands for, remembering which guard it was (some callers react to one in particular). */
export class GuardError extends ApiError {
  constructor(readonly guard: GuardName) {
    const problem = GUARDS[guard]();
    super(problem.code, problem.detail);
  }
}

/** Aborts the batch with `name` when `when` is true (a boolean SQL expression, usually EXISTS (...)). */
export function guard(db: Db, name: GuardName, when: SQL): Statement {
  return db.insert(batchGuards).select(sql`select ${name} where ${when}`);
}

/** The guard a failed batch names, if any. */
export function guardOf(message: string): GuardName | undefined {
  const match = /guard:([a-z_]+)/.exec(message);
  return match && match[1]! in GUARDS ? (match[1] as GuardName) : undefined;
}
