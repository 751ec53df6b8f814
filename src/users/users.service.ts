import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { users, type UserRow } from "../db/schema";
import { firstSight } from "./users.guards";

export async function findUser(db: Db, id: string): Promise<UserRow | undefined> {
  return db.query.users.findFirst({ where: eq(users.id, id) });
}

/** The user's record, created (with its accounts) on first sight; one round trip. */
export async function findOrCreateUser(db: Db, id: string, now: number): Promise<UserRow> {
  const [, found] = await db.batch([firstSight(db, id, now), db.select().from(users).where(eq(users.id, id))]);
  const row = (found as UserRow[])[0];
  if (!row) throw new Error("user row missing right after insert");
  return row;
}
