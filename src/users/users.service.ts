import { and, desc, eq, ne, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { accounts, auditLog, deviceAccounts, transactions, users, type UserRow } from "../db/schema";
import { ApiError } from "../lib/errors";
import { firstSight } from "./users.guards";
import { notAboutThemselves } from "../lib/auth";

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

/**
 * An admin freezes a user (no money out until unfrozen) or unfreezes them, audited in the same batch.
 * A ban is permanent: a banned user's status never changes here. Returns the user as it now stands.
 */
export async function setUserStatus(db: Db, adminId: string, userId: string, status: "active" | "frozen", reason: string, now: number): Promise<UserRow> {
  notAboutThemselves(adminId, userId, status === "frozen" ? "freeze an account" : "unfreeze an account");
  const [rows] = (await db.batch([
    db
      .update(users)
      .set({ status, updatedAt: now })
      .where(and(eq(users.id, userId), ne(users.status, "banned")))
      .returning(),
    insertWhere(
      db,
      auditLog,
      { actorId: adminId, action: status === "frozen" ? "user.frozen" : "user.unfrozen", subjectType: "user", subjectId: userId, details: { reason }, createdAt: now },
      sql`where exists (select 1 from ${users} where ${users.id} = ${userId} and ${users.status} = ${status} and ${users.updatedAt} = ${now})`,
    ),
  ])) as [UserRow[], unknown];
  const row = rows[0];
  if (row) return row;
  const existing = await findUser(db, userId);
  if (!existing) throw new ApiError("not_found", "No user with that id.");
  throw new ApiError("conflict", "A ban is permanent.");
}

/** What an admin sees of a user: record, balances and debt, KYC, devices, recent transactions. */
export async function userOverview(db: Db, userId: string) {
  const [found, wallets, devices, recent] = await db.batch([
    db.select().from(users).where(eq(users.id, userId)),
    db.select().from(accounts).where(eq(accounts.ownerId, userId)),
    db.select().from(deviceAccounts).where(eq(deviceAccounts.userId, userId)).orderBy(desc(deviceAccounts.lastSeen)).limit(20),
    db
      .select()
      .from(transactions)
      .where(or(eq(transactions.userId, userId), eq(transactions.counterpartyId, userId)))
      .orderBy(desc(transactions.id))
      .limit(20),
  ]);
  const user = found[0];
  if (!user) throw new ApiError("not_found", "No user with that id.");
  const balance = (id: string) => wallets.find((a) => a.id === id);
  const coin = balance(`usr:${userId}:COIN`);
  const idr = balance(`usr:${userId}:IDR`);
  return {
    id: user.id,
    status: user.status,
    kycStatus: user.kycStatus,
    verificationRequired: user.verificationRequired,
    createdAt: new Date(user.createdAt).toISOString(),
    balances: {
      coin: coin?.balance ?? 0,
      coinLocked: coin?.locked ?? 0,
      idr: idr?.balance ?? 0,
      idrLocked: idr?.locked ?? 0,
      debt: Math.max(0, -(balance(`debt:${userId}:COIN`)?.balance ?? 0)),
      idrDebt: Math.max(0, -(balance(`debt:${userId}:IDR`)?.balance ?? 0)),
    },
    devices: devices.map((d) => ({ fingerprint: d.fingerprint, userAgent: d.userAgent, ip: d.ip, firstSeen: new Date(d.firstSeen).toISOString(), lastSeen: new Date(d.lastSeen).toISOString() })),
    recentTransactions: recent.map((t) => ({ id: t.id, type: t.type, status: t.status, asset: t.asset, amount: t.amount, role: t.userId === userId ? "initiator" : "counterparty", createdAt: new Date(t.createdAt).toISOString() })),
  };
}
