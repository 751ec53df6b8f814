import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { users, withdrawMethods } from "../db/schema";
import type { Statement } from "../ledger/executor";
import { guard } from "../ledger/guards";

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
export const callerNotBanned = (db: Db, userId: string) => [guard(db, "caller_banned", userWhere(userId, sql`${users.status} = 'banned'`))];

/** Money leaving the caller's control (transfers out, withdrawals, spends) needs an active, unflagged account. */
export function callerMayMoveOut(db: Db, userId: string): Statement[] {
  return [
    ...callerNotBanned(db, userId),
    guard(db, "caller_frozen", userWhere(userId, sql`${users.status} = 'frozen'`)),
    guard(db, "caller_verification_required", userWhere(userId, sql`${users.verificationRequired} = 1`)),
  ];
}

export const callerKycVerified = (db: Db, userId: string) => [guard(db, "caller_kyc_required", sql`not ${userWhere(userId, sql`${users.kycStatus} = 'verified'`)}`)];

/** A withdrawal needs a bank account on file, usable (a changed one only after its cooling-off period). */
export function withdrawMethodUsable(db: Db, userId: string, now: number): Statement[] {
  const method = (condition: SQL) => sql`exists (select 1 from ${withdrawMethods} where ${withdrawMethods.userId} = ${userId} and ${condition})`;
  return [guard(db, "withdraw_method_missing", sql`not ${method(sql`1`)}`), guard(db, "withdraw_method_cooldown", method(sql`${withdrawMethods.usableFrom} > ${now}`))];
}

/** Money sent to another user needs a recipient who exists and is not banned. */
export function recipientActive(db: Db, recipientId: string): Statement[] {
  return [guard(db, "recipient_missing", sql`not ${userWhere(recipientId, sql`1`)}`), guard(db, "recipient_banned", userWhere(recipientId, sql`${users.status} = 'banned'`))];
}
