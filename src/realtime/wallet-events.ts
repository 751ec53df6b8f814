import type { OutboxEvent } from "./outbox";

const WALLET = /^usr:(.+):(COIN|IDR)$/;

export interface Movement {
  transactionId: string;
  type: string;
  status: string;
  /** The transaction's amount when the plan creates it; a settled one reports what it moved on the wallet. */
  amount: number | null;
  deltas: Map<string, { balance: number; locked: number }>;
  at: number;
}

/**
 * The events a committed movement owes each user whose wallet it touched (SPEC §13), from the wallets'
 * rows as the batch left them (with their owner's presence): `coin-balance-update` for coin wallets,
 * `transaction-update` for any.
 */
export function walletEvents(rows: { id: string; balance: number; locked: number; seenAt: number | null }[], m: Movement): OutboxEvent[] {
  const out: OutboxEvent[] = [];
  for (const row of rows) {
    const match = WALLET.exec(row.id);
    const delta = m.deltas.get(row.id);
    if (!match || !delta) continue;
    const [, userId, asset] = match as unknown as [string, string, "COIN" | "IDR"];
    const to = { user: userId, seenAt: row.seenAt };
    if (asset === "COIN") {
      out.push({ to, type: "coin-balance-update", at: m.at, data: { balance: row.balance, available: row.balance - row.locked, change: delta.balance, reason: m.type, transactionId: m.transactionId } });
    }
    out.push({ to, type: "transaction-update", at: m.at, data: { transactionId: m.transactionId, type: m.type, status: m.status, asset, amount: m.amount ?? Math.max(Math.abs(delta.balance), Math.abs(delta.locked)) } });
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
