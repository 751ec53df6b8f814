import { sql, type Query, type SQL } from "drizzle-orm";
import { dialect, type Db } from "../db/client";
import { BoundFragment, writeStatement } from "../db/template";
import { batchGuards } from "../db/schema";
import { ApiError, rebuilt } from "../lib/errors";
import type { Statement } from "./executor";

/**
 * Guards: conditions that abort the batch they run in when they hold at commit time. A batch's guards
 * are ONE statement: it inserts into `batch_guards` the name of the first guard whose condition is true
 * (none: nothing is inserted), and that table's trigger refuses every row with
 * RAISE(ABORT, 'guard:<name>'), so the whole batch rolls back and `translateBatchError` answers with the
 * guard's problem. Nothing is decided from a read in an earlier round trip: the conditions are evaluated
 * by SQLite inside the same transaction as the movement they protect.
 */
/** A refusal caused by a concurrent change, not by the request: an Idempotency-Key does not remember it (the same key may try again). */
const CONCURRENT = { transient: true } as const;

export const GUARDS = {
  transaction_not_pending: () => new ApiError("already_applied", "The transaction is no longer pending."),
  caller_banned: () => new ApiError("account_banned", "This account is banned."),
  caller_frozen: () => new ApiError("account_frozen", "This account is frozen; money cannot leave it."),
  caller_verification_required: () => new ApiError("verification_required", "Additional verification is required before money can leave this account."),
  caller_kyc_required: () => new ApiError("kyc_required", "Withdrawals need a verified KYC."),
  caller_in_debt: () => new ApiError("debt_outstanding", "This account has recorded debt; money cannot leave it until later credits have settled the debt."),
  content_missing: () => new ApiError("not_found", "No content with that id."),
  content_unavailable: () => new ApiError("not_found", "No available content with that id."),
  content_creator_banned: () => new ApiError("recipient_unavailable", "The content's creator is banned: it cannot be bought while the ban lasts."),
  content_terms_changed: () => new ApiError("conflict", "The content's price or creator changed while unlocking; try again.", CONCURRENT),
  content_paid_to_previous_creator: () =>
    new ApiError("conflict", "Buyers hold purchases of this item paid to its previous creator: deleting it would take back their earnings. An admin can remove it."),
  admin_bought_content: () => new ApiError("forbidden", "You bought this item: another admin must remove it (it refunds your purchase)."),
  own_content: () => new ApiError("own_content", "You cannot unlock your own content."),
  not_content_creator: () => new ApiError("forbidden", "Only the content's creator may do this."),
  stream_streamer_banned: () => new ApiError("recipient_unavailable", "The stream's streamer is banned: it cannot be boosted while the ban lasts."),
  stream_streamer_mismatch: () => new ApiError("stream_mismatch", "That stream belongs to another streamer."),
  boost_demand_changed: () => new ApiError("price_changed", "Boost demand changed while buying; quote again."),
  order_not_in_escrow: () => new ApiError("conflict", "The order is no longer in escrow."),
  order_not_released: () => new ApiError("conflict", "The order is not released (or was already refunded)."),
  order_payee_banned: () => new ApiError("recipient_unavailable", "The seller is banned: the escrow stays held until an admin refunds the order."),
  /** Caught by releaseOrder, which then releases with the affiliate's share forfeited to the seller. */
  order_affiliate_banned: () => new ApiError("conflict", "The order's affiliate is banned."),
  referral_code_unusable: () => new ApiError("invalid_referral_code", "That referral code's owner cannot earn on it."),
  seller_tier_changed: () => new ApiError("conflict", "The seller's tier changed while ordering; try again.", CONCURRENT),
  purchase_already_refunded: () => new ApiError("already_applied", "This purchase was already refunded."),
  withdraw_method_missing: () => new ApiError("withdraw_method_required", "Set a bank account with PUT /api/wallet/withdraw-method first."),
  withdraw_method_cooldown: () => new ApiError("withdraw_method_cooldown", "The bank account was changed recently; it can be used once the cooling-off period has passed."),
  user_missing: () => new ApiError("not_found", "No user with that id."),
  recipient_missing: () => new ApiError("recipient_not_found", "No user with that id."),
  recipient_banned: () => new ApiError("recipient_unavailable", "That user cannot receive transfers."),
  spend_per_tx_limit: () => new ApiError("limit_exceeded", "This spend exceeds your per-transaction spending limit."),
  order_not_creditable: () => new ApiError("already_applied", "The order can no longer be credited."),
  order_reversal_moved: () => new ApiError("conflict", "Another reversal of this order was applied concurrently."),
  gift_changed: () => new ApiError("conflict", "The gift's price or availability changed while sending; read the catalogue and send again.", CONCURRENT),
  payout_not_held: () => new ApiError("conflict", "The payout is no longer held."),
  payout_not_payable: () => new ApiError("already_applied", "The payout was already decided."),
  user_banned: () => new ApiError("conflict", "A ban is permanent."),
  payee_banned: () => new ApiError("recipient_unavailable", "The earner is banned: the payout stays held. Reject it, or release it once the ban is lifted."),
  campaign_suspended: () => new ApiError("campaign_suspended", "The campaign's owner is frozen or banned; it pays nothing."),
  withdrawal_not_pending: () => new ApiError("conflict", "The withdrawal is no longer pending."),
  withdrawal_confirmed: () =>
    new ApiError("conflict", "Iris accepted this payout: its own outcome (a notification, or reconciliation) settles it. Only an unconfirmed withdrawal is resolved by hand."),
  invoice_units_changed: () => new ApiError("conflict", "Billable usage changed while the invoice was priced."),
  verification_replaced: () => new ApiError("conflict", "The business verification was sent again since the submission you reviewed; review the current one."),
  kyc_not_pending: () => new ApiError("conflict", "The submission was reviewed concurrently."),
  alert_reviewed_meanwhile: () => new ApiError("conflict", "Another review of this alert was recorded since you read it; read it again."),
  kyc_already_verified: () => new ApiError("conflict", "This account is already verified."),
  unusual_withdraw_pattern: () => new ApiError("verification_required", "This withdrawal needs additional verification; an administrator will review it."),
} as const;

export type GuardName = keyof typeof GUARDS;

/** The problem a guard stands for, remembering which guard it was (some callers react to one in particular). */
export class GuardError extends ApiError {
  constructor(readonly guard: GuardName) {
    const problem = GUARDS[guard]();
    super(...rebuilt(problem.code, problem.detail, problem.extra));
  }
}

export interface Guard {
  name: GuardName;
  /**
   * A boolean SQL expression, usually EXISTS (...): when true, the batch is refused with `name`. The
   * guards of the hot paths are fragments (db/template.ts), already text; others are rendered here.
   */
  when: SQL | BoundFragment;
}

export const guard = (name: GuardName, when: SQL | BoundFragment): Guard => ({ name, when });

const insertGuard = dialect.sqlToQuery(sql`insert into ${batchGuards} (${sql.identifier(batchGuards.name.name)})`).sql;

/** The one statement that checks `guards` in order: the first that holds aborts the batch. Written as text: its conditions are. */
export function checkGuards(db: Db, guards: Guard[]): Statement {
  let cases = "";
  const params: unknown[] = [];
  for (const g of guards) {
    const when: Query = g.when instanceof BoundFragment ? g.when : dialect.sqlToQuery(g.when);
    cases += ` when ${when.sql} then ?`;
    params.push(...when.params, g.name);
  }
  return writeStatement(db, { sql: `${insertGuard} select g from (select case${cases} end as g) where g is not null`, params });
}

/** The guard a failed batch names, if any. */
export function guardOf(message: string): GuardName | undefined {
  const match = /guard:([a-z_]+)/.exec(message);
  return match && match[1]! in GUARDS ? (match[1] as GuardName) : undefined;
}
