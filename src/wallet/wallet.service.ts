import { and, desc, eq, inArray, lt, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { accounts, postings, transactions, type TransactionRow } from "../db/schema";
import { userAccountId } from "../ledger/accounts";
import { applyPlan, type IdempotencyWrite } from "../ledger/executor";
import { movePlan, previewRow } from "../ledger/plan";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { toPage } from "../lib/pagination";
import type { AuthUser } from "../env";
import { assertMayMoveOut } from "../lib/auth";
import { findUser } from "../users/users.service";
import { transactionView, type TransactionView } from "./wallet.view";
import type { Config } from "../config";
import { spendLimits } from "../fraud/limits";
import { businessDay } from "../lib/time";

export async function getBalance(db: Db, user: AuthUser) {
  const [wallets, deposited, withdrawn] = await db.batch([
    db.select().from(accounts).where(inArray(accounts.id, [userAccountId(user.id, "COIN"), userAccountId(user.id, "IDR")])),
    db
      .select({ total: sql<number>`coalesce(sum(json_extract(${transactions.metadata}, '$.coinsCredited')), 0)` })
      .from(transactions)
      .where(and(eq(transactions.userId, user.id), eq(transactions.type, "deposit"), eq(transactions.status, "completed"))),
    db
      .select({ total: sql<number>`coalesce(sum(json_extract(${transactions.metadata}, '$.grossIdr')), 0)` })
      .from(transactions)
      .where(and(eq(transactions.userId, user.id), eq(transactions.type, "withdraw"), eq(transactions.status, "completed"))),
  ]);
  const coin = wallets.find((a) => a.asset === "COIN");
  const idr = wallets.find((a) => a.asset === "IDR");
  return {
    balance: coin?.balance ?? 0,
    lockedBalance: coin?.locked ?? 0,
    availableBalance: (coin?.balance ?? 0) - (coin?.locked ?? 0),
    idrBalance: idr?.balance ?? 0,
    idrLockedBalance: idr?.locked ?? 0,
    totalDeposited: Number(deposited[0]?.total ?? 0),
    totalWithdrawn: Number(withdrawn[0]?.total ?? 0),
    kycStatus: user.record.kycStatus,
  };
}

export async function listTransactions(db: Db, userId: string, q: { limit: number; before?: string; type?: TransactionRow["type"] }) {
  const mine = [userAccountId(userId, "COIN"), userAccountId(userId, "IDR")];
  const rows = await db
    .select({ tx: transactions, posting: { amount: postings.amount, balanceAfter: postings.balanceAfter } })
    .from(transactions)
    .leftJoin(postings, and(eq(postings.transactionId, transactions.id), inArray(postings.accountId, mine)))
    .where(
      and(
        or(eq(transactions.userId, userId), eq(transactions.counterpartyId, userId)),
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

/** Coins from the caller to another user: one completed transaction, one batch. */
export async function transfer(
  db: Db,
  sender: AuthUser,
  input: TransferInput,
  ctx: { config: Config; deviceFingerprint: string | null; record: (o: { status: 201; body: TransactionView }) => IdempotencyWrite | undefined },
) {
  assertMayMoveOut(sender);
  if (input.toUserId === sender.id) throw new ApiError("self_transfer", "You cannot transfer coins to yourself.");
  const recipient = await findUser(db, input.toUserId);
  if (!recipient) throw new ApiError("recipient_not_found", "No user with that id.");
  if (recipient.status === "banned") throw new ApiError("recipient_unavailable", "That user cannot receive transfers.");

  const now = Date.now();
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
      limits: spendLimits(sender.record.kycStatus, ctx.config),
    },
    now,
  });
  const outgoing = { amount: -input.amount, balanceAfter: 0 };
  const row = await applyPlan(db, plan, { idempotency: ctx.record({ status: 201, body: transactionView(previewRow(plan), sender.id, outgoing) }) });
  return { status: 201 as const, body: transactionView(row, sender.id, outgoing) };
}
