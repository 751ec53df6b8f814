import { and, desc, eq, inArray, isNotNull, lt, or } from "drizzle-orm";
import type { Db } from "../db/client";
import { accounts, postings, transactions, users, type TransactionRow, type UserRow } from "../db/schema";
import { slot, template } from "../db/template";
import { userAccountId, userDebtAccountId } from "../ledger/accounts";
import { applyPlan, type IdempotencyWrite, type Statement } from "../ledger/executor";
import { movePlan, previewRow } from "../ledger/plan";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { toPage } from "../lib/pagination";
import { callerMayMoveOut, firstSight, recipientActive } from "../users/users.guards";
import { transactionView, type TransactionView } from "./wallet.view";
import type { Config } from "../config";
import { spendLimits } from "../fraud/limits";
import { businessDay } from "../lib/time";

/** The caller's record and their four accounts, in one statement (rendered once; see db/template.ts). */
const balanceRows = template((db) =>
  db
    .select({ kycStatus: users.kycStatus, totalDepositedCoins: users.totalDepositedCoins, totalWithdrawnIdr: users.totalWithdrawnIdr, accountId: accounts.id, balance: accounts.balance, locked: accounts.locked })
    .from(users)
    .leftJoin(accounts, inArray(accounts.id, [slot("coin"), slot("idr"), slot("coinDebt"), slot("idrDebt")]))
    .where(eq(users.id, slot("userId"))),
);
type BalanceRow = { kycStatus: UserRow["kycStatus"]; totalDepositedCoins: number; totalWithdrawnIdr: number; accountId: string | null; balance: number | null; locked: number | null };

/**
 * The caller's balances, KYC status and totals in ONE round trip: first sight of the caller, their
 * record (with the maintained totals) and their wallets, read in one batch.
 */
export async function getBalance(db: Db, userId: string, now: number) {
  const [, found] = await db.batch([
    firstSight(db, userId, now),
    balanceRows(db, { userId, coin: userAccountId(userId, "COIN"), idr: userAccountId(userId, "IDR"), coinDebt: userDebtAccountId(userId, "COIN"), idrDebt: userDebtAccountId(userId, "IDR") }),
  ]);
  const rows = found as BalanceRow[];
  const user = rows[0];
  const account = (id: string) => rows.find((a) => a.accountId === id);
  const coin = account(userAccountId(userId, "COIN"));
  const idr = account(userAccountId(userId, "IDR"));
  return {
    balance: coin?.balance ?? 0,
    lockedBalance: coin?.locked ?? 0,
    availableBalance: (coin?.balance ?? 0) - (coin?.locked ?? 0),
    idrBalance: idr?.balance ?? 0,
    idrLockedBalance: idr?.locked ?? 0,
    // A debt account's balance is ≤ 0: what the user owes is its negation.
    debt: Math.max(0, -(account(userDebtAccountId(userId, "COIN"))?.balance ?? 0)),
    idrDebt: Math.max(0, -(account(userDebtAccountId(userId, "IDR"))?.balance ?? 0)),
    totalDeposited: user?.totalDepositedCoins ?? 0,
    totalWithdrawn: user?.totalWithdrawnIdr ?? 0,
    kycStatus: user?.kycStatus ?? "none",
  };
}

/**
 * The caller's history is their wallet's: what they initiated, and another user's transaction that moved
 * their wallet (a transfer in, a sale). One that names them but moved nothing of theirs (the seller's escrow
 * release seen by the buyer, a refund whose claw-back was booked to their debt) is not in it: a claw-back
 * shows as the `debt_settlement` that takes it from the wallet, and what remains is the balance's `debt`.
 */
export async function listTransactions(db: Db, userId: string, q: { limit: number; before?: string; type?: TransactionRow["type"] }) {
  const mine = [userAccountId(userId, "COIN"), userAccountId(userId, "IDR")];
  const rows = await db
    .select({ tx: transactions, posting: { amount: postings.amount, balanceAfter: postings.balanceAfter } })
    .from(transactions)
    .leftJoin(postings, and(eq(postings.transactionId, transactions.id), inArray(postings.accountId, mine)))
    .where(
      and(
        or(eq(transactions.userId, userId), and(eq(transactions.counterpartyId, userId), isNotNull(postings.accountId))),
        q.before ? lt(transactions.id, q.before) : undefined,
        q.type ? eq(transactions.type, q.type) : undefined,
      ),
    )
    .orderBy(desc(transactions.id))
    .limit(q.limit + 1);
  return toPage(
    rows.map((r) => ({ id: r.tx.id, ...r })),
    q.limit,
    (r) => transactionView(r.tx, userId, r.posting),
  );
}

export interface TransferInput {
  toUserId: string;
  amount: number;
  note?: string | undefined;
}

/**
 * Coins from the caller to another user: one completed transaction in ONE batch, which also creates the
 * caller on first sight and decides, at commit time, that the caller may move money out and the
 * recipient exists and is not banned (guards), and that funds and limits suffice (CHECKs).
 */
export async function transfer(
  db: Db,
  senderId: string,
  input: TransferInput,
  ctx: { config: Config; deviceFingerprint: string | null; record: (o: { status: 201; body: TransactionView }) => IdempotencyWrite | undefined; alongside?: Statement[] },
) {
  if (input.toUserId === senderId) throw new ApiError("self_transfer", "You cannot transfer coins to yourself.");
  const now = Date.now();
  const sender = { id: senderId };
  const recipient = { id: input.toUserId };
  const from = userAccountId(sender.id, "COIN");
  const plan = movePlan({
    tx: {
      id: newId(now),
      type: "transfer",
      asset: "COIN",
      amount: input.amount,
      userId: sender.id,
      counterpartyId: recipient.id,
      metadata: { recipientId: recipient.id, ...(input.note ? { notes: input.note } : {}) },
      deviceFingerprint: ctx.deviceFingerprint,
    },
    from,
    to: userAccountId(recipient.id, "COIN"),
    sideAccountId: from,
    audit: { actorId: sender.id, action: "wallet.transfer", subjectType: "user", subjectId: recipient.id, details: { amount: input.amount } },
    spend: {
      userId: sender.id,
      amountIdr: input.amount * ctx.config.COIN_VALUE_IDR,
      day: businessDay(now, ctx.config.BUSINESS_TZ_OFFSET),
      limits: spendLimits(ctx.config),
    },
    now,
  });
  const outgoing = { amount: -input.amount, balanceAfter: 0 };
  const row = await applyPlan(db, plan, {
    before: [firstSight(db, sender.id, now)],
    guards: [...callerMayMoveOut(sender.id), ...recipientActive(recipient.id)],
    alongside: ctx.alongside,
    idempotency: ctx.record({ status: 201, body: transactionView(previewRow(plan), sender.id, outgoing) }),
  });
  return { status: 201 as const, body: transactionView(row, sender.id, outgoing) };
}
