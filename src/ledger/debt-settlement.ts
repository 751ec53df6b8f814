import { sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { slot, template } from "../db/template";
import { accounts, transactions } from "../db/schema";
import type { Asset } from "../lib/money";
import { balanceOf } from "./accounts";
import type { Statement } from "./executor";
import { announce, seenAtSql } from "../realtime/outbox";
import { settlementEvents } from "../realtime/wallet-events";

/**
 * Recorded debt is settled first (SPEC §9): every movement that raises a user's available balance
 * (a credit, or a released hold) is followed, in its batch, by a `debt_settlement` transaction of
 * min(raise, debt) from the wallet to the user's debt account. How much is decided by SQLite at commit
 * time (the debt may have moved since anything was read): the row is inserted only when the debt is
 * open, and migration 0012's trigger applies it (balances and postings). Without debt: one statement
 * that inserts nothing.
 */
export interface Settlement {
  id: string;
  wallet: string;
  debt: string;
  owner: string;
  asset: Asset;
  /** How much the movement raised the wallet's available balance: the most this settlement takes. */
  credit: number;
}

const WALLET = /^usr:(.+):(COIN|IDR)$/;

/** The settlements a movement's deltas call for: one per user wallet whose available balance it raises. */
export function settlementsFor(txId: string, deltas: Map<string, { balance: number; locked: number }>): Settlement[] {
  const out: Settlement[] = [];
  for (const [wallet, d] of deltas) {
    const m = WALLET.exec(wallet);
    const credit = d.balance - d.locked;
    if (!m || credit <= 0) continue;
    // Sorts right after the transaction that credited the wallet.
    out.push({ id: `${txId}S${out.length}`, wallet, debt: `debt:${m[1]}:${m[2]}`, owner: m[1]!, asset: m[2] as Asset, credit });
  }
  return out;
}

/** The settlement row, inserted only when the owner's debt is open (rendered once; see db/template.ts). */
const settle = template((db) => {
  const take = sql`min(${slot("credit")}, -${accounts.balance})`;
  return insertWhere(
    db,
    transactions,
    {
      id: slot("id"),
      type: "debt_settlement",
      status: "completed",
      asset: slot("asset"),
      amount: take,
      userId: slot("owner"),
      counterpartyId: null,
      balanceBefore: balanceOf(slot("wallet")),
      balanceAfter: sql`${balanceOf(slot("wallet"))} - ${take}`,
      metadata: slot("metadata"),
      deviceFingerprint: null,
      createdAt: slot("now"),
      completedAt: slot("now"),
    },
    sql`from ${accounts} where ${accounts.id} = ${slot("debt")} and ${accounts.balance} < 0`,
  ).returning({ id: transactions.id, userId: transactions.userId, asset: transactions.asset, amount: transactions.amount, balanceAfter: transactions.balanceAfter, createdAt: transactions.createdAt, seenAt: seenAtSql(transactions.userId) });
});

/** After the movement's postings: the settlement's row, if the owner's debt is open. */
export function settlementRow(db: Db, s: Settlement, settles: string, now: number): Statement {
  const row = settle(db, { id: s.id, credit: s.credit, asset: s.asset, owner: s.owner, wallet: s.wallet, debt: s.debt, metadata: { settles, wallet: s.wallet, debtAccount: s.debt }, now });
  return announce(row, (rows) => settlementEvents(rows as Parameters<typeof settlementEvents>[0]));
}
