import { sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { slot, template } from "../db/template";
import { accounts, transactions } from "../db/schema";
import type { Asset } from "../lib/money";
import { balanceOf, userDebtAccountId } from "./accounts";
import type { Posting } from "./plan";
import type { Statement } from "./executor";
import { announce, seenAtSql } from "../realtime/outbox";
import { settlementEvents } from "../realtime/wallet-events";

/**
 * Recorded debt is settled first (SPEC §9): every movement that raises a user's available balance
 * (a credit, or a released hold) is followed, in its batch, by a `debt_settlement` transaction of
 * min(raise, debt) from the wallet to the user's debt account. A movement that books debt (a claw-back:
 * a refund takes back what a creator, seller or affiliate earned) books all of it, and is followed the
 * same way by a settlement of what the wallet has available: so debt is only what the wallet cannot
 * cover when the batch commits, whatever an earlier read saw. How much is decided by SQLite at commit
 * time (the debt and the wallet may have moved since anything was read): the row is inserted only when
 * the debt is open and the wallet has coins available, and migration 0012's trigger applies it
 * (balances and postings). Without debt: one statement that inserts nothing.
 */
export interface Settlement {
  id: string;
  wallet: string;
  debt: string;
  owner: string;
  asset: Asset;
  /** How much the movement raised the wallet's available balance, or booked to the debt: the most this settlement takes. */
  credit: number;
  /** The wallet is the owner's own (its balance is theirs to see on the row); false for an account held for them, such as a campaign budget. */
  ownWallet: boolean;
}

/**
 * Taking back `amount` a user earned (a refund's claw-back): booked whole to their debt, which the batch
 * then settles from what their wallet has available at commit (below), so debt is only what it cannot cover.
 */
export const clawBack = (userId: string, asset: Asset, amount: number): Posting[] => (amount > 0 ? [{ accountId: userDebtAccountId(userId, asset), asset, amount: -amount }] : []);

const ACCOUNT = /^(usr|debt):(.+):(COIN|IDR)$/;

/**
 * The settlements a movement's deltas call for: one per user wallet whose available balance it raises,
 * one per debt account it books debt to (from the accounts held for the owner in that asset first, then
 * from the owner's wallet), and one per account held for a user (`heldFor`, e.g. a campaign budget) that it
 * credits (from that account, towards the owner's debt in the account's asset). A campaign deposit's
 * reversal books to the advertiser's debt what the budget seemed unable to cover: the budget pays it at
 * commit if it can (a deposit credited meanwhile), before anything of the advertiser's own.
 */
export function settlementsFor(txId: string, deltas: Map<string, { balance: number; locked: number }>, heldFor: Record<string, { owner: string; asset: Asset }> = {}): Settlement[] {
  const out: Settlement[] = [];
  // Sorts right after the transaction that credited the wallet.
  const add = (wallet: string, owner: string, asset: Asset, credit: number, ownWallet: boolean) => {
    if (credit > 0) out.push({ id: `${txId}S${out.length}`, wallet, debt: userDebtAccountId(owner, asset), owner, asset, credit, ownWallet });
  };
  for (const [account, d] of deltas) {
    const m = ACCOUNT.exec(account);
    if (m?.[1] === "debt") {
      for (const [held, h] of Object.entries(heldFor)) if (h.owner === m[2] && h.asset === m[3]) add(held, h.owner, h.asset, -d.balance, false);
    }
    if (m) add(`usr:${m[2]!}:${m[3]!}`, m[2]!, m[3] as Asset, m[1] === "usr" ? d.balance - d.locked : -d.balance, true);
    else if (heldFor[account]) add(account, heldFor[account]!.owner, heldFor[account]!.asset, d.balance - d.locked, false);
  }
  return out;
}

/**
 * The settlement row, inserted only when the owner's debt is open and their wallet has coins available
 * (rendered once per variant; see db/template.ts). `held`: the wallet is an account held for the owner (a
 * campaign budget), whose balance is not theirs: the row records none, as the deposit into it does.
 */
const settle = template((db, variant: "own" | "held") => {
  const available = sql`(select ${accounts.balance} - ${accounts.locked} from ${accounts} where ${accounts.id} = ${slot("wallet")})`;
  const take = sql`min(${slot("credit")}, -${accounts.balance}, ${available})`;
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
      balanceBefore: variant === "own" ? balanceOf(slot("wallet")) : null,
      balanceAfter: variant === "own" ? sql`${balanceOf(slot("wallet"))} - ${take}` : null,
      metadata: slot("metadata"),
      deviceFingerprint: null,
      createdAt: slot("now"),
      completedAt: slot("now"),
    },
    sql`from ${accounts} where ${accounts.id} = ${slot("debt")} and ${accounts.balance} < 0 and ${available} > 0`,
  ).returning({
    id: transactions.id,
    userId: transactions.userId,
    asset: transactions.asset,
    amount: transactions.amount,
    balanceAfter: transactions.balanceAfter,
    // A settlement moves no lock: the wallet's locked amount is the same before and after it.
    locked: sql<number>`(select ${accounts.locked} from ${accounts} where ${accounts.id} = ${slot("wallet")})`,
    createdAt: transactions.createdAt,
    seenAt: seenAtSql(transactions.userId),
  });
});

/** After the movement's postings: the settlement's row, if the owner's debt is open. */
export function settlementRow(db: Db, s: Settlement, settles: string, now: number): Statement {
  const row = settle(db, { id: s.id, credit: s.credit, asset: s.asset, owner: s.owner, wallet: s.wallet, debt: s.debt, metadata: { settles, wallet: s.wallet, debtAccount: s.debt }, now }, s.ownWallet ? "own" : "held");
  return announce(row, (rows) => settlementEvents(rows as Parameters<typeof settlementEvents>[0]));
}
