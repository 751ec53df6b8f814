import type { TransactionRow } from "../db/schema";
import { assertWholeAmount, type Asset } from "../lib/money";

export type TxType = TransactionRow["type"];

export interface Posting {
  accountId: string;
  asset: Asset;
  /** Signed: positive credits the account, negative debits it. */
  amount: number;
}

export interface AuditEntry {
  actorId: string;
  action: string;
  subjectType: string;
  subjectId: string;
  details?: Record<string, unknown>;
}

/**
 * A spend of coins by a user (transfers, unlocks, gifts, boosts, purchases): its rupiah value counts
 * against the per-transaction limit and, inside the same batch, the business day's limit. Which tier
 * applies (KYC verified or not) is read from the spender's record inside the batch.
 */
export interface Spend {
  userId: string;
  amountIdr: number;
  day: string;
  limits: { verified: SpendLimit; unverified: SpendLimit };
}

export interface SpendLimit {
  perTxIdr: number;
  dailyIdr: number;
}

/** Transaction types that spend a user's coins: the executor refuses such a plan without a `spend`. */
export const SPENDING_TYPES: ReadonlySet<string> = new Set(["transfer", "purchase", "gift", "boost"]);

export interface NewTransaction {
  id: string;
  type: TxType;
  status: "pending" | "completed";
  asset: Asset;
  amount: number;
  userId: string | null;
  counterpartyId?: string | null;
  metadata?: Record<string, unknown>;
  deviceFingerprint?: string | null;
}

/**
 * Everything one value movement writes, as data. The executor turns a plan into one D1 batch;
 * builders below produce plans and are pure, so every money rule is testable without a database.
 */
export interface LedgerPlan {
  /** A new transaction row, or the completion/cancellation of an existing pending one. */
  transaction: { create: NewTransaction } | { settle: { id: string; status: "completed" | "cancelled" | "failed" } };
  /** Account whose balance before/after the transaction row records (the initiating user's side). */
  sideAccountId?: string;
  postings: Posting[];
  /** Changes of the held (locked) amount per account. */
  locks: { accountId: string; delta: number }[];
  hold?: { place: { id: string; accountId: string; asset: Asset; amount: number } } | { settle: { id: string; outcome: "posted" | "voided" } };
  /** At-most-once keys: a batch naming a key that already exists rolls back whole. */
  onceKeys: string[];
  audit: AuditEntry[];
  spend?: Spend;
  /**
   * Accounts other than user wallets that hold a user's money for them (a campaign's budget: its
   * advertiser's deposits), by owner: a credit to one settles its owner's open debt first, as a credit to
   * their wallet would (SPEC §9).
   */
  heldFor?: Record<string, { owner: string; asset: Asset }>;
  now: number;
}

export class UnbalancedPlanError extends Error {}

/** Postings must sum to zero per asset, name whole amounts, and never be zero. */
export function assertBalanced(postings: Posting[]): void {
  const sums = new Map<Asset, number>();
  for (const p of postings) {
    if (!Number.isSafeInteger(p.amount) || p.amount === 0) throw new UnbalancedPlanError(`bad posting amount ${p.amount}`);
    assertWholeAmount(Math.abs(p.amount));
    sums.set(p.asset, (sums.get(p.asset) ?? 0) + p.amount);
  }
  for (const [asset, sum] of sums) {
    if (sum !== 0) throw new UnbalancedPlanError(`postings for ${asset} sum to ${sum}, not 0`);
  }
}

/** A completed transaction with any balanced set of postings (several assets allowed). */
export function entryPlan(args: {
  tx: Omit<NewTransaction, "status">;
  postings: Posting[];
  sideAccountId?: string;
  audit: AuditEntry;
  onceKeys?: string[];
  spend?: Spend;
  heldFor?: Record<string, { owner: string; asset: Asset }>;
  now: number;
}): LedgerPlan {
  const postings = args.postings.filter((p) => p.amount !== 0);
  assertBalanced(postings);
  return {
    transaction: { create: { ...args.tx, status: "completed" } },
    sideAccountId: args.sideAccountId,
    postings,
    locks: [],
    onceKeys: args.onceKeys ?? [],
    audit: [args.audit],
    ...(args.spend ? { spend: args.spend } : {}),
    ...(args.heldFor ? { heldFor: args.heldFor } : {}),
    now: args.now,
  };
}

/** Moves `amount` from one account to another in one completed transaction. */
export function movePlan(args: {
  tx: Omit<NewTransaction, "status">;
  from: string;
  to: string;
  sideAccountId?: string;
  audit: AuditEntry;
  onceKeys?: string[];
  spend?: Spend;
  now: number;
}): LedgerPlan {
  const { tx, from, to } = args;
  if (from === to) throw new UnbalancedPlanError("a transfer needs two distinct accounts");
  return entryPlan({
    ...args,
    postings: [
      { accountId: from, asset: tx.asset, amount: -tx.amount },
      { accountId: to, asset: tx.asset, amount: tx.amount },
    ],
  });
}

/** Phase one of a two-phase transfer: lock `amount` on the account under a pending transaction. */
export function holdPlan(args: {
  tx: Omit<NewTransaction, "status">;
  holdId: string;
  accountId: string;
  audit: AuditEntry;
  now: number;
}): LedgerPlan {
  assertWholeAmount(args.tx.amount);
  return {
    transaction: { create: { ...args.tx, status: "pending" } },
    sideAccountId: args.accountId,
    postings: [],
    locks: [{ accountId: args.accountId, delta: args.tx.amount }],
    hold: { place: { id: args.holdId, accountId: args.accountId, asset: args.tx.asset, amount: args.tx.amount } },
    onceKeys: [],
    audit: [args.audit],
    now: args.now,
  };
}

export interface HoldRef {
  id: string;
  transactionId: string;
  accountId: string;
  asset: Asset;
  amount: number;
}

/**
 * Phase two, posting: the held amount leaves the account and is distributed to `credits`, which
 * must add up to the held amount (e.g. fee, tax and net of a withdrawal).
 */
export function postHoldPlan(args: { hold: HoldRef; credits: Posting[]; audit: AuditEntry; now: number }): LedgerPlan {
  const { hold } = args;
  const postings: Posting[] = [{ accountId: hold.accountId, asset: hold.asset, amount: -hold.amount }, ...args.credits.filter((p) => p.amount !== 0)];
  assertBalanced(postings);
  return {
    transaction: { settle: { id: hold.transactionId, status: "completed" } },
    sideAccountId: hold.accountId,
    postings,
    locks: [{ accountId: hold.accountId, delta: -hold.amount }],
    hold: { settle: { id: hold.id, outcome: "posted" } },
    onceKeys: [`hold:${hold.id}:settle`],
    audit: [args.audit],
    now: args.now,
  };
}

/** Phase two, voiding: the lock is released and nothing moves. */
export function voidHoldPlan(args: { hold: HoldRef; status: "cancelled" | "failed"; audit: AuditEntry; now: number }): LedgerPlan {
  const { hold } = args;
  return {
    transaction: { settle: { id: hold.transactionId, status: args.status } },
    sideAccountId: hold.accountId,
    postings: [],
    locks: [{ accountId: hold.accountId, delta: -hold.amount }],
    hold: { settle: { id: hold.id, outcome: "voided" } },
    onceKeys: [`hold:${hold.id}:settle`],
    audit: [args.audit],
    now: args.now,
  };
}

/**
 * The row a plan's new transaction will have, with balances left null: the shape an idempotent
 * answer is rendered from before the batch runs (the executor fills the balances in SQL).
 */
export function previewRow(plan: LedgerPlan) {
  if (!("create" in plan.transaction)) throw new Error("previewRow needs a plan that creates a transaction");
  const tx = plan.transaction.create;
  return {
    ...tx,
    counterpartyId: tx.counterpartyId ?? null,
    metadata: tx.metadata ?? {},
    deviceFingerprint: tx.deviceFingerprint ?? null,
    balanceBefore: null,
    balanceAfter: null,
    createdAt: plan.now,
    completedAt: tx.status === "completed" ? plan.now : null,
  };
}
