import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { fragment, slot, template } from "../db/template";
import { accounts, users, withdrawMethods } from "../db/schema";
import type { Statement } from "../ledger/executor";
import { guard, type Guard, type GuardName } from "../ledger/guards";

/** "The user exists and `condition` holds for their record" (or, `negated`, not), rendered once per condition (db/template.ts). */
const userWhere = (condition: SQL, negated = false) =>
  fragment<"userId">(({ userId }) => sql`${sql.raw(negated ? "not exists" : "exists")} (select 1 from ${users} where ${users.id} = ${userId} and ${condition})`);
const isBanned = userWhere(sql`${users.status} = 'banned'`);
const isFrozen = userWhere(sql`${users.status} = 'frozen'`);
const needsVerification = userWhere(sql`${users.verificationRequired} = 1`);
const notKycVerified = userWhere(sql`${users.kycStatus} = 'verified'`, true);
const missing = userWhere(sql`1`, true);
const inDebt = fragment<"userId">(({ userId }) => sql`exists (select 1 from ${accounts} where ${accounts.ownerId} = ${userId} and ${accounts.kind} = 'user_debt' and ${accounts.balance} < 0)`);
const noWithdrawMethod = fragment<"userId">(({ userId }) => sql`not exists (select 1 from ${withdrawMethods} where ${withdrawMethods.userId} = ${userId})`);
const withdrawMethodCoolingOff = fragment<"userId" | "now">(({ userId, now }) => sql`exists (select 1 from ${withdrawMethods} where ${withdrawMethods.userId} = ${userId} and ${withdrawMethods.usableFrom} > ${now})`);

/**
 * First sight of a user, as one statement: the record is inserted if missing, and the trigger of
 * migration 0010 creates its wallet and debt accounts with it. The identity service issues tokens; this
 * service creates the user the first time it sees a subject, and `created_at` is the account's age for
 * age rules. Repeats (and concurrent first requests) change nothing.
 */
export function firstSight(db: Db, userId: string, now: number): Statement {
  return insertUser(db, { userId, now });
}

const insertUser = template((db) => db.insert(users).values({ id: slot("userId"), createdAt: slot("now"), updatedAt: slot("now") }).onConflictDoNothing());

/** The caller may act at all (a banned user may only read). */
export const callerNotBanned = (userId: string): Guard[] => [guard("caller_banned", isBanned({ userId }))];

/** An active, unflagged account: not banned, not frozen, not awaiting verification. */
export function callerInGoodStanding(userId: string): Guard[] {
  return [...callerNotBanned(userId), guard("caller_frozen", isFrozen({ userId })), guard("caller_verification_required", needsVerification({ userId }))];
}

/** Money leaving the caller's wallet (transfers out, withdrawals, spends) needs good standing and no recorded debt. */
export function callerMayMoveOut(userId: string): Guard[] {
  return [...callerInGoodStanding(userId), guard("caller_in_debt", inDebt({ userId }))];
}

export const callerKycVerified = (userId: string): Guard[] => [guard("caller_kyc_required", notKycVerified({ userId }))];

/** A withdrawal needs a bank account on file, usable (a changed one only after its cooling-off period). */
export function withdrawMethodUsable(userId: string, now: number): Guard[] {
  return [guard("withdraw_method_missing", noWithdrawMethod({ userId })), guard("withdraw_method_cooldown", withdrawMethodCoolingOff({ userId, now }))];
}

/** Refuses the batch (as `name`) when the user is banned at commit time. */
export const userNotBanned = (userId: string, name: GuardName): Guard[] => [guard(name, isBanned({ userId }))];

/** A banned user earns nothing: their activity payouts are held, never paid, while the ban lasts (marketplace escrow and content sales name their own guards). */
export const payeeNotBanned = (userId: string): Guard[] => userNotBanned(userId, "payee_banned");

/** Money sent to another user needs a recipient who exists and is not banned. */
export function recipientActive(recipientId: string): Guard[] {
  return [guard("recipient_missing", missing({ userId: recipientId })), guard("recipient_banned", isBanned({ userId: recipientId }))];
}
