import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { accounts, users, type UserRow } from "../db/schema";
import { ASSETS } from "../lib/money";
import { userAccountId, userDebtAccountId } from "../ledger/accounts";

export async function findUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db.query.users.findFirst({ where: eq(users.id, id) });
}

/**
 * The identity service issues tokens; this service creates the user record (and its wallet
 * accounts) the first time it sees a subject. `created_at` is the account's age for age rules.
 * Concurrent first requests are harmless: every insert ignores an existing row.
 */
export async function findOrCreateUser(db: Db, id: string, now: number): Promise<UserRow> {
  const existing = await findUser(db, id);
  if (existing) return existing;
  const [, , created] = await db.batch([
    db.insert(users).values({ id, createdAt: now, updatedAt: now }).onConflictDoNothing(),
    db
      .insert(accounts)
      .values(
        ASSETS.flatMap((asset) => [
          { id: userAccountId(id, asset), kind: "user_wallet", ownerId: id, asset, createdAt: now },
          // Recorded debt (reversals the wallet could not cover) is the one user account allowed below zero.
          { id: userDebtAccountId(id, asset), kind: "user_debt", ownerId: id, asset, allowNegative: true, createdAt: now },
        ]),
      )
      .onConflictDoNothing(),
    db.select().from(users).where(eq(users.id, id)),
  ]);
  const row = created[0];
  if (!row) throw new Error("user row missing right after insert");
  return row;
}
