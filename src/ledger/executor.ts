import { and, eq, inArray, sql, type SQL, type SQLWrapper } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import type { Db } from "../db/client";
import { accounts, auditLog, holds, idempotencyKeys, onceKeys, postings, spendCounters, transactions, users, type TransactionRow } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { balanceOf } from "./accounts";
import { fragment, slot, template } from "../db/template";
import { checkGuards, guard, GuardError, guardOf, type Guard } from "./guards";
import { settlementRow, settlementsFor } from "./debt-settlement";
import { announce, seenAtSql } from "../realtime/outbox";
import { walletEvents } from "../realtime/wallet-events";
import { assertBalanced, SPENDING_TYPES, type LedgerPlan, type Spend } from "./plan";

export type Statement = BatchItem<"sqlite">;

/** The idempotency record written in the same batch as the movement it answers for. */
export interface IdempotencyWrite {
  userId: string;
  key: string;
  requestHash: string;
  statusCode: number;
  /** The response body; its `balanceBefore`/`balanceAfter` keys are filled from the transaction row in SQL. */
  body: unknown;
  /** Where in the body the transaction's view is (a JSON path, `$` by default). */
  balancesAt?: string;
  /** The answer may still be replaced by its request until then (see idempotencyKeys.settlesAt). */
  settlesAt?: number;
}

export interface ApplyOptions {
  idempotency?: IdempotencyWrite;
  /**
   * Statements that run before the movement: first-sight creation of a user, guards that abort the
   * batch when the caller, recipient, order or payout is not in the state the movement needs.
   */
  before?: Statement[];
  /** Conditions that refuse the movement at commit time (one statement, after `before`). */
  guards?: Guard[];
  /**
   * Feature statements that must commit or fail with the movement: an order's status change, an
   * alert, a spending counter whose CHECK refuses an over-limit spend.
   */
  alongside?: Statement[];
}

/** A batch lost the race for its Idempotency-Key to an identical concurrent request. */
export class IdempotencyRaceError extends Error {}

type Value = string | number | SQLWrapper;

/** The limit of a spender's KYC tier, as SQL (an unknown spender is unverified). */
const tierSql = (userId: Value, verified: Value, unverified: Value): SQL =>
  sql`(case when exists (select 1 from ${users} where ${users.id} = ${userId} and ${users.kycStatus} = 'verified') then ${verified} else ${unverified} end)`;

const overPerTxLimit = fragment<"amountIdr" | "userId" | "verified" | "unverified">((v) => sql`${v.amountIdr} > ${tierSql(v.userId, v.verified, v.unverified)}`);

const notPending = fragment<"id">(({ id }) => sql`not exists (select 1 from ${transactions} where ${transactions.id} = ${id} and ${transactions.status} = 'pending')`);

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/*
 * The executor's statements, rendered once per shape (see db/template.ts). Their values are slots named
 * here and bound by planStatements; a shape is the number of rows or accounts, or a variant.
 */
const insertIdempotency = template((db) =>
  db.insert(idempotencyKeys).values({ userId: slot("userId"), key: slot("key"), requestHash: slot("requestHash"), statusCode: slot("statusCode"), responseBody: slot("body"), createdAt: slot("now"), settlesAt: slot("settlesAt") }),
);

/** The idempotency record of a decision that moves no money (a reject), for its own batch: the same row a plan's batch writes first. */
export function idempotencyRecord(db: Db, idem: IdempotencyWrite, now: number): Statement {
  return insertIdempotency(db, { userId: idem.userId, key: idem.key, requestHash: idem.requestHash, statusCode: idem.statusCode, body: JSON.stringify(idem.body), now, settlesAt: idem.settlesAt ?? null });
}

const insertOnceKeys = template((db, n: number) => db.insert(onceKeys).values(range(n).map((i) => ({ key: slot(`k${i}`), transactionId: slot("tx"), createdAt: slot("now") }))));

/** Every account a plan touches, in one statement (each row's CHECK still refuses an overdraft); returns what the wallet events need. */
const moveAccounts = template((db, n: number) => {
  const by = (delta: "b" | "l") =>
    sql`case ${accounts.id} ${sql.join(
      range(n).map((i) => sql`when ${slot(`a${i}`)} then ${slot(`${delta}${i}`)}`),
      sql` `,
    )} else 0 end`;
  return db
    .update(accounts)
    .set({ balance: sql`${accounts.balance} + ${by("b")}`, locked: sql`${accounts.locked} + ${by("l")}` })
    .where(inArray(accounts.id, range(n).map((i) => slot(`a${i}`))))
    .returning({ id: accounts.id, ownerId: accounts.ownerId, balance: accounts.balance, locked: accounts.locked, seenAt: seenAtSql(accounts.ownerId) });
});

type Side = "side" | "none";
/** The initiating side's balance before and after, read in the batch after the accounts moved. */
const sideBalances = (side: Side) => (side === "side" ? { balanceAfter: balanceOf(slot("side")), balanceBefore: sql`${balanceOf(slot("side"))} - ${slot("sideDelta")}` } : {});

const insertTransaction = template((db, side: Side) =>
  db
    .insert(transactions)
    .values({
      id: slot("id"),
      type: slot("type"),
      status: slot("status"),
      asset: slot("asset"),
      amount: slot("amount"),
      userId: slot("userId"),
      counterpartyId: slot("counterpartyId"),
      metadata: slot("metadata"),
      deviceFingerprint: slot("deviceFingerprint"),
      ...sideBalances(side),
      createdAt: slot("now"),
      completedAt: slot("completedAt"),
    })
    .returning(),
);

/** Settling a pending transaction: matches no row (and the batch is refused) when it is no longer pending. */
const settleTransaction = template((db, side: Side) =>
  db
    .update(transactions)
    .set({ status: sql`${slot("status")}`, completedAt: sql`${slot("now")}`, ...sideBalances(side) })
    .where(and(eq(transactions.id, slot("id")), eq(transactions.status, "pending")))
    .returning(),
);

const insertPostings = template((db, n: number) =>
  db.insert(postings).values(
    range(n).map((i) => ({ transactionId: slot("tx"), accountId: slot(`a${i}`), asset: slot(`s${i}`), amount: slot(`m${i}`), balanceAfter: balanceOf(slot(`a${i}`)), createdAt: slot("now") })),
  ),
);

const insertAudit = template((db, n: number) =>
  db.insert(auditLog).values(range(n).map((i) => ({ actorId: slot(`actor${i}`), action: slot(`action${i}`), subjectType: slot(`type${i}`), subjectId: slot(`subject${i}`), details: slot(`details${i}`), createdAt: slot("now") }))),
);

/** The day's counter moves with the spend; its CHECK (spent ≤ limit) aborts the batch past the limit. */
const countSpend = template((db) =>
  db
    .insert(spendCounters)
    .values({ userId: slot("userId"), day: slot("day"), spentIdr: slot("amountIdr"), limitIdr: tierSql(slot("userId"), slot("verified"), slot("unverified")) })
    .onConflictDoUpdate({
      target: [spendCounters.userId, spendCounters.day],
      set: { spentIdr: sql`${spendCounters.spentIdr} + excluded.spent_idr`, limitIdr: sql`excluded.limit_idr` },
    }),
);

/** The stored answer gets the transaction's balances, as committed. */
const completeIdempotency = template((db) => {
  const fromTx = (column: SQL) => sql`(select ${column} from ${transactions} where ${transactions.id} = ${slot("tx")})`;
  return db
    .update(idempotencyKeys)
    .set({
      responseBody: sql`json_replace(${idempotencyKeys.responseBody}, ${slot("beforePath")}, ${fromTx(sql`${transactions.balanceBefore}`)}, ${slot("afterPath")}, ${fromTx(sql`${transactions.balanceAfter}`)})`,
    })
    .where(and(eq(idempotencyKeys.userId, slot("userId")), eq(idempotencyKeys.key, slot("key"))));
});

/**
 * The statements of one plan: once-keys, balance and lock updates, the transaction row, postings, hold
 * bookkeeping, audit entries, the spending counter, feature statements and the idempotency record.
 * Nothing is read first: overdrafts are refused by the accounts CHECK constraint, repeats by the
 * once-key primary key, spends past the day's limit by the counter's CHECK, so a racing request can
 * never slip between a check and a write. `txIndex` is the statement that returns the transaction row.
 */
function planStatements(db: Db, plan: LedgerPlan, options: ApplyOptions): { statements: Statement[]; txIndex: number; alongsideIndex: number } {
  assertBalanced(plan.postings);
  const spend = plan.spend;
  if ("create" in plan.transaction && SPENDING_TYPES.has(plan.transaction.create.type) && !spend) {
    throw new Error(`a ${plan.transaction.create.type} spends coins and must declare its spend for the limits`);
  }
  if (spend && spend.amountIdr > Math.max(spend.limits.verified.perTxIdr, spend.limits.unverified.perTxIdr)) {
    throw new ApiError("limit_exceeded", "This spend exceeds your per-transaction spending limit.");
  }
  const { now } = plan;
  const txId = "create" in plan.transaction ? plan.transaction.create.id : plan.transaction.settle.id;

  const deltas = new Map<string, { balance: number; locked: number }>();
  const touch = (id: string) => deltas.get(id) ?? deltas.set(id, { balance: 0, locked: 0 }).get(id)!;
  for (const p of plan.postings) touch(p.accountId).balance += p.amount;
  for (const l of plan.locks) touch(l.accountId).locked += l.delta;

  const idem = options.idempotency;
  const statements: Statement[] = [];
  // The key first: a repeat (or a concurrent twin) aborts here, before anything else, and is answered from the stored record.
  if (idem) statements.push(idempotencyRecord(db, idem, now));
  statements.push(...(options.before ?? []));
  // Which spend limits apply is the spender's KYC status at commit time, read by SQLite in this batch.
  const guards = [...(options.guards ?? []), ...(spend ? [guard("spend_per_tx_limit", overPerTxLimit({ amountIdr: spend.amountIdr, userId: spend.userId, verified: spend.limits.verified.perTxIdr, unverified: spend.limits.unverified.perTxIdr }))] : [])];
  // Settling a pending transaction that is no longer pending must move nothing at all.
  if ("settle" in plan.transaction) {
    guards.push(guard("transaction_not_pending", notPending({ id: txId })));
  }
  if (guards.length > 0) statements.push(checkGuards(db, guards));
  if (plan.onceKeys.length > 0) {
    statements.push(insertOnceKeys(db, { tx: txId, now, ...indexed(plan.onceKeys, (key) => ({ k: key })) }, plan.onceKeys.length));
  }
  const moved = [...deltas].filter(([, d]) => d.balance !== 0 || d.locked !== 0);
  if (moved.length > 0) {
    const movement = {
      transactionId: txId,
      type: "create" in plan.transaction ? plan.transaction.create.type : "withdraw",
      status: "create" in plan.transaction ? plan.transaction.create.status : plan.transaction.settle.status,
      amount: "create" in plan.transaction ? plan.transaction.create.amount : null,
      userId: "create" in plan.transaction ? (plan.transaction.create.userId ?? null) : null,
      deltas,
      at: now,
    };
    const values = indexed(moved, ([id, d]) => ({ a: id, b: d.balance, l: d.locked }));
    statements.push(announce(moveAccounts(db, values, moved.length), (rows) => walletEvents(rows as Parameters<typeof walletEvents>[0], movement)));
  }

  const side = plan.sideAccountId;
  const sideValues = side ? { side, sideDelta: deltas.get(side)?.balance ?? 0 } : {};
  const txIndex = statements.length;
  if ("create" in plan.transaction) {
    const tx = plan.transaction.create;
    const values = {
      ...tx,
      userId: tx.userId ?? null,
      counterpartyId: tx.counterpartyId ?? null,
      metadata: tx.metadata ?? {},
      deviceFingerprint: tx.deviceFingerprint ?? null,
      ...sideValues,
      now,
      completedAt: tx.status === "completed" ? now : null,
    };
    statements.push(insertTransaction(db, values, side ? "side" : "none"));
  } else {
    const { id, status } = plan.transaction.settle;
    statements.push(settleTransaction(db, { id, status, now, ...sideValues }, side ? "side" : "none"));
  }

  if (plan.postings.length > 0) {
    statements.push(insertPostings(db, { tx: txId, now, ...indexed(plan.postings, (p) => ({ a: p.accountId, s: p.asset, m: p.amount })) }, plan.postings.length));
  }
  // Credits to user wallets settle their owner's open debt first, in this batch (a transaction of its own).
  // Its id sorts right after the movement's; a hold released now (settling an older transaction) gets a
  // fresh base, so the settlement sorts as what it is: the newest movement.
  const settlementBase = "create" in plan.transaction ? txId : newId(now);
  for (const st of settlementsFor(settlementBase, deltas, plan.heldFor)) statements.push(settlementRow(db, st, txId, now));
  if (plan.hold && "place" in plan.hold) {
    statements.push(db.insert(holds).values({ ...plan.hold.place, transactionId: txId, status: "pending", createdAt: now }));
  } else if (plan.hold) {
    const { id, outcome } = plan.hold.settle;
    statements.push(db.update(holds).set({ status: outcome, settledAt: now }).where(and(eq(holds.id, id), eq(holds.status, "pending"))));
  }
  if (plan.audit.length > 0) {
    const values = indexed(plan.audit, (a) => ({ actor: a.actorId, action: a.action, type: a.subjectType, subject: a.subjectId, details: a.details ?? {} }));
    statements.push(insertAudit(db, { now, ...values }, plan.audit.length));
  }
  if (spend) {
    const { verified, unverified } = spend.limits;
    statements.push(countSpend(db, { userId: spend.userId, day: spend.day, amountIdr: spend.amountIdr, verified: verified.dailyIdr, unverified: unverified.dailyIdr }));
  }
  const alongsideIndex = statements.length;
  statements.push(...(options.alongside ?? []));
  if (idem) {
    const at = idem.balancesAt ?? "$";
    statements.push(completeIdempotency(db, { tx: txId, userId: idem.userId, key: idem.key, beforePath: `${at}.balanceBefore`, afterPath: `${at}.balanceAfter` }));
  }

  return { statements, txIndex, alongsideIndex };
}

/** The slots of row `i` of a multi-row statement: `{ a: x }` of row 2 is `{ a2: x }`. */
function indexed<T>(rows: readonly T[], slots: (row: T) => Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  rows.forEach((row, i) => {
    for (const [name, value] of Object.entries(slots(row))) out[`${name}${i}`] = value;
  });
  return out;
}

/** Applies a plan as ONE atomic D1 batch; returns the transaction row as written. */
export async function applyPlan(db: Db, plan: LedgerPlan, options: ApplyOptions = {}): Promise<TransactionRow> {
  return (await applyPlanWithResults(db, plan, options)).transaction;
}

/** As applyPlan, also returning the results of the `alongside` statements (e.g. a row inserted with `returning()`). */
export async function applyPlanWithResults(db: Db, plan: LedgerPlan, options: ApplyOptions = {}): Promise<{ transaction: TransactionRow; alongside: unknown[] }> {
  const built = planStatements(db, plan, options);
  const results = await runBatch(db, built.statements);
  const transaction = transactionRow(results[built.txIndex]);
  const count = options.alongside?.length ?? 0;
  return { transaction, alongside: results.slice(built.alongsideIndex, built.alongsideIndex + count) };
}

async function runBatch(db: Db, statements: Statement[]): Promise<unknown[]> {
  try {
    return await db.batch(statements as [Statement, ...Statement[]]);
  } catch (error) {
    throw translateBatchError(error);
  }
}

function transactionRow(result: unknown): TransactionRow {
  const row = (result as TransactionRow[])[0];
  // A settle whose transaction is no longer pending matched no row: refuse rather than report success.
  if (!row) throw new ApiError("already_applied", "The transaction is no longer pending.");
  return row;
}

/**
 * Applies several plans in ONE atomic D1 batch: all commit or none does (the first refusal rolls back
 * every plan and is thrown). The daily batch uses it to pay a chunk of users in a few commits.
 */
export async function applyPlans(db: Db, items: { plan: LedgerPlan; options?: ApplyOptions }[]): Promise<TransactionRow[]> {
  const statements: Statement[] = [];
  const txIndexes: number[] = [];
  for (const { plan, options = {} } of items) {
    const built = planStatements(db, plan, options);
    txIndexes.push(statements.length + built.txIndex);
    statements.push(...built.statements);
  }
  const results = await runBatch(db, statements);
  return txIndexes.map((i) => transactionRow(results[i]));
}

/** Runs statements that move no money (an alert, a status change) as one batch, with the same error mapping. */
export async function applyStatements(db: Db, statements: Statement[]): Promise<unknown[]> {
  if (statements.length === 0) return [];
  return runBatch(db, statements);
}

function messagesOf(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(" | ");
}

/** Maps a failed batch's constraint to the business reason it stands for. */
export function translateBatchError(error: unknown): Error {
  const message = messagesOf(error);
  const guard = guardOf(message);
  if (guard) return new GuardError(guard);
  if (message.includes("account_not_overdrawn")) return new ApiError("insufficient_funds", "The available balance does not cover this amount.");
  if (message.includes("account_locked_not_negative")) return new ApiError("already_applied", "The held amount was already released.");
  if (message.includes("idempotency_keys.")) return new IdempotencyRaceError("another request holds this Idempotency-Key");
  if (message.includes("once_keys.key")) return new ApiError("already_applied", "This movement has already been applied.");
  if (message.includes("spend_limit_daily")) return new ApiError("limit_exceeded", "This would exceed your daily spending limit.");
  // Unique indexes that stand for "this was done already" in a feature's own table.
  if (message.includes("content_purchases.content_id, content_purchases.buyer_id")) return new ApiError("already_unlocked", "You have already unlocked this content.");
  return error instanceof Error ? error : new Error(message);
}
