import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { accounts, users, withdrawMethods } from "../db/schema";
import type { Statement } from "../ledger/executor";
import { guard, type Guard } from "../ledger/guards";

const userWhere = (userId: string, condition: SQL) => sql`exists (select 1 from ${users} where ${users.id} = ${userId} and ${condition})`;

/**
 * First sight of a user, as one statement: the record is inserted if missing, and the trigger of
 * migration 0010 creates its wallet and debt accounts with it. The identity service issues tokens; this
 * service creates the user the first time it sees a subject, and `created_at` is the account's age for
 * age rules. Repeats (and concurrent first requests) change nothing.
 */
export function firstSight(db: Db, userId: string, now: number): Statement {
  return db.insert(users).values({ id: userId, createdAt: now, updatedAt: now }).onConflictDoNothing();
}

/** The caller may act at all (a banned user may only read). */
export const callerNotBanned = (userId: string): Guard[] => [guard("caller_banned", userWhere(userId, sql`${users.status} = 'banned'`))];

/** Money leaving the caller's control (transfers out, withdrawals, spends) needs an active, unflagged account. */
export function callerMayMoveOut(userId: string): Guard[] {
  return [
    ...callerNotBanned(userId),
    guard("caller_frozen", userWhere(userId, sql`${users.status} = 'frozen'`)),
    guard("caller_verification_required", userWhere(userId, sql`${users.verificationRequired} = 1`)),
    guard("caller_in_debt", sql`exists (select 1 from ${accounts} where ${accounts.ownerId} = ${userId} and ${accounts.kind} = 'user_debt' and ${accounts.balance} < 0)`),
  ];
}

export const callerKycVerified = (userId: string): Guard[] => [guard("caller_kyc_required", sql`not ${userWhere(userId, sql`${users.kycStatus} = 'verified'`)}`)];

/** A withdrawal needs a bank account on file, usable (a changed one only after its cooling-off period). */
export function withdrawMethodUsable(userId: string, now: number): Guard[] {
  const method = (condition: SQL) => sql`exists (select 1 from ${withdrawMethods} where ${withdrawMethods.userId} = ${userId} and ${condition})`;
  return [guard("withdraw_method_missing", sql`not ${method(sql`1`)}`), guard("withdraw_method_cooldown", method(sql`${withdrawMethods.usableFrom} > ${now}`))];
}

/** Money sent to another user needs a recipient who exists and is not banned. */
export function recipientActive(recipientId: string): Guard[] {
  return [guard("recipient_missing", sql`not ${userWhere(recipientId, sql`1`)}`), guard("recipient_banned", userWhere(recipientId, sql`${users.status} = 'banned'`))];
}
