import type { TransactionRow } from "../db/schema";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * A transaction as one user sees it. `posting` is the viewer's own wallet leg (amount and balance after);
 * the initiator's before/after are on the row itself, a counterparty's come from its posting. Without a
 * wallet leg, a deposit is money in (to a campaign budget); anything else is out for the initiator.
 */
export function transactionView(row: TransactionRow, viewerId: string, posting?: { amount: number; balanceAfter: number } | null) {
  const initiator = row.userId === viewerId;
  const direction: "in" | "out" = posting ? (posting.amount > 0 ? "in" : "out") : row.type === "deposit" ? "in" : initiator ? "out" : "in";
  const balanceAfter = initiator ? row.balanceAfter : (posting?.balanceAfter ?? null);
  const balanceBefore = initiator ? row.balanceBefore : posting ? posting.balanceAfter - posting.amount : null;
  return {
    id: row.id,
    type: row.type,
    status: row.status,
    asset: row.asset,
    amount: row.amount,
    direction,
    counterpartyId: initiator ? row.counterpartyId : row.counterpartyId === viewerId ? row.userId : row.counterpartyId,
    balanceBefore,
    balanceAfter,
    metadata: row.metadata,
    deviceFingerprint: initiator ? row.deviceFingerprint : null,
    createdAt: iso(row.createdAt)!,
    completedAt: iso(row.completedAt),
  };
}

export type TransactionView = ReturnType<typeof transactionView>;
