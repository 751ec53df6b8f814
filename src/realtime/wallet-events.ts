import type { OutboxEvent } from "./outbox";

const WALLET = /^usr:(.+):(COIN|IDR)$/;
/** Accounts of a user's that are not their wallet: their recorded debt, their campaigns' budgets. */
const OWNED = /^(?:debt|cmp):.+:(COIN|IDR)$/;

export interface Movement {
  transactionId: string;
  type: string;
  status: string;
  /** The transaction's amount when the plan creates it; a settled one reports what it moved on the wallet. */
  amount: number | null;
  /** Whose transaction it is (it is in their history whichever of their accounts it moved). */
  userId: string | null;
  deltas: Map<string, { balance: number; locked: number }>;
  at: number;
}

type MovedRow = { id: string; ownerId: string | null; balance: number; locked: number; seenAt: number | null };

/**
 * The events a committed movement owes its users (SPEC §13), from the accounts' rows as the batch left them
 * (with their owner's presence): `coin-balance-update` for each coin wallet it moved, and one
 * `transaction-update` per user whose history it enters — the owner of each wallet it moved, and its own
 * user when it moved only their debt or a campaign budget of theirs (a chargeback of coins already spent, a
 * campaign deposit).
 */
export function walletEvents(rows: MovedRow[], m: Movement): OutboxEvent[] {
  const out: OutboxEvent[] = [];
  const told = new Set<string>();
  const transactionUpdate = (user: string, seenAt: number | null, asset: string, delta: { balance: number; locked: number }) => {
    told.add(user);
    out.push({ to: { user, seenAt }, type: "transaction-update", at: m.at, data: { transactionId: m.transactionId, type: m.type, status: m.status, asset, amount: m.amount ?? Math.max(Math.abs(delta.balance), Math.abs(delta.locked)) } });
  };
  for (const row of rows) {
    const match = WALLET.exec(row.id);
    const delta = m.deltas.get(row.id);
    if (!match || !delta) continue;
    const [, userId, asset] = match as unknown as [string, string, "COIN" | "IDR"];
    if (asset === "COIN") {
      out.push({ to: { user: userId, seenAt: row.seenAt }, type: "coin-balance-update", at: m.at, data: { balance: row.balance, available: row.balance - row.locked, change: delta.balance, reason: m.type, transactionId: m.transactionId } });
    }
    transactionUpdate(userId, row.seenAt, asset, delta);
  }
  for (const row of rows) {
    const match = OWNED.exec(row.id);
    const delta = m.deltas.get(row.id);
    if (!match || !delta || row.ownerId === null || row.ownerId !== m.userId || told.has(row.ownerId)) continue;
    transactionUpdate(row.ownerId, row.seenAt, match[1]!, delta);
  }
  return out;
}

/** A debt settlement that happened (its row was written): the owner's wallet went down by its amount. */
export function settlementEvents(rows: { id: string; userId: string | null; asset: string; amount: number; balanceAfter: number | null; locked: number | null; createdAt: number; seenAt: number | null }[]): OutboxEvent[] {
  return rows.flatMap((r) => {
    if (!r.userId) return [];
    const to = { user: r.userId, seenAt: r.seenAt };
    const events: OutboxEvent[] = [];
    if (r.asset === "COIN" && r.balanceAfter !== null) {
      events.push({ to, type: "coin-balance-update", at: r.createdAt, data: { balance: r.balanceAfter, available: r.balanceAfter - (r.locked ?? 0), change: -r.amount, reason: "debt_settlement", transactionId: r.id } });
    }
    events.push({ to, type: "transaction-update", at: r.createdAt, data: { transactionId: r.id, type: "debt_settlement", status: "completed", asset: r.asset, amount: r.amount } });
    return events;
  });
}
