import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Times are stored as epoch milliseconds (UTC) and rendered as ISO 8601 by the API. */

export const users = sqliteTable(
  "users",
  {
    id: text().primaryKey(),
    status: text({ enum: ["active", "frozen", "banned"] }).notNull().default("active"),
    kycStatus: text({ enum: ["none", "pending", "verified", "rejected"] }).notNull().default("none"),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
  },
  (t) => [
    check("user_status_known", sql`${t.status} in ('active', 'frozen', 'banned')`),
    check("user_kyc_status_known", sql`${t.kycStatus} in ('none', 'pending', 'verified', 'rejected')`),
  ],
);

/**
 * A ledger account. User wallets may never go below zero available (`balance − locked ≥ 0`);
 * system accounts (issuance, clearing, revenue, …) carry `allow_negative = 1` where their nature says so.
 * The CHECK is what makes a racing overdraft impossible: the batch that would break it aborts whole.
 */
export const accounts = sqliteTable(
  "accounts",
  {
    id: text().primaryKey(),
    kind: text().notNull(),
    ownerId: text(),
    asset: text({ enum: ["COIN", "IDR"] }).notNull(),
    balance: integer().notNull().default(0),
    locked: integer().notNull().default(0),
    allowNegative: integer({ mode: "boolean" }).notNull().default(false),
    createdAt: integer().notNull(),
  },
  (t) => [
    check("account_not_overdrawn", sql`${t.allowNegative} = 1 or ${t.balance} - ${t.locked} >= 0`),
    check("account_locked_not_negative", sql`${t.locked} >= 0`),
    check("account_asset_known", sql`${t.asset} in ('COIN', 'IDR')`),
    index("accounts_owner_idx").on(t.ownerId),
  ],
);

export const transactions = sqliteTable(
  "transactions",
  {
    id: text().primaryKey(),
    type: text({
      enum: ["deposit", "withdraw", "transfer", "purchase", "gift", "boost", "commission", "payout", "refund", "fee", "adjustment"],
    }).notNull(),
    status: text({ enum: ["pending", "completed", "failed", "cancelled"] }).notNull(),
    asset: text({ enum: ["COIN", "IDR"] }).notNull(),
    amount: integer().notNull(),
    /** The user whose side balanceBefore/After describe (the initiator); null for system movements. */
    userId: text(),
    counterpartyId: text(),
    balanceBefore: integer(),
    balanceAfter: integer(),
    metadata: text({ mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
    deviceFingerprint: text(),
    createdAt: integer().notNull(),
    completedAt: integer(),
  },
  (t) => [
    index("transactions_user_idx").on(t.userId, t.id),
    index("transactions_counterparty_idx").on(t.counterpartyId, t.id),
    check("transaction_amount_positive", sql`${t.amount} > 0`),
  ],
);

/** One leg of a transaction; the legs of a transaction sum to zero per asset. */
export const postings = sqliteTable(
  "postings",
  {
    id: integer().primaryKey({ autoIncrement: true }),
    transactionId: text()
      .notNull()
      .references(() => transactions.id),
    accountId: text()
      .notNull()
      .references(() => accounts.id),
    asset: text({ enum: ["COIN", "IDR"] }).notNull(),
    amount: integer().notNull(),
    /** The account's balance right after this posting, filled inside the same batch. */
    balanceAfter: integer().notNull(),
    createdAt: integer().notNull(),
  },
  (t) => [index("postings_account_idx").on(t.accountId, t.id), index("postings_transaction_idx").on(t.transactionId)],
);

/** Two-phase transfers: an amount locked on an account until it is posted or voided, exactly once. */
export const holds = sqliteTable(
  "holds",
  {
    id: text().primaryKey(),
    transactionId: text()
      .notNull()
      .references(() => transactions.id),
    accountId: text()
      .notNull()
      .references(() => accounts.id),
    asset: text({ enum: ["COIN", "IDR"] }).notNull(),
    amount: integer().notNull(),
    status: text({ enum: ["pending", "posted", "voided"] }).notNull(),
    createdAt: integer().notNull(),
    settledAt: integer(),
  },
  (t) => [check("hold_amount_positive", sql`${t.amount} > 0`)],
);

/**
 * At-most-once keys. A batch that inserts a key already present fails on the primary key and
 * rolls back whole: this is how hold settlement, webhook credits and batch payouts happen once.
 */
export const onceKeys = sqliteTable("once_keys", {
  key: text().primaryKey(),
  transactionId: text(),
  createdAt: integer().notNull(),
});

export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    userId: text().notNull(),
    key: text().notNull(),
    requestHash: text().notNull(),
    statusCode: integer().notNull(),
    responseBody: text().notNull(),
    createdAt: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] }), index("idempotency_created_idx").on(t.createdAt)],
);

/** Append-only (triggers refuse UPDATE and DELETE): who did what, when, to what. */
export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer().primaryKey({ autoIncrement: true }),
    actorId: text().notNull(),
    action: text().notNull(),
    subjectType: text().notNull(),
    subjectId: text().notNull(),
    details: text({ mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
    createdAt: integer().notNull(),
  },
  (t) => [index("audit_subject_idx").on(t.subjectType, t.subjectId)],
);

export const schema = { users, accounts, transactions, postings, holds, onceKeys, idempotencyKeys, auditLog };
export type UserRow = typeof users.$inferSelect;
export type TransactionRow = typeof transactions.$inferSelect;
