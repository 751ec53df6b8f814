import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { users, type UserRow } from "../db/schema";
import { firstSight } from "./users.guards";

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
  const [user, wallets] = firstSight(db, id, now);
  const [, , created] = await db.batch([user!, wallets!, db.select().from(users).where(eq(users.id, id))]);
  const row = (created as UserRow[])[0];
  if (!row) throw new Error("user row missing right after insert");
  return row;
}
