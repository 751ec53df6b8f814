import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import type { Signal, SignalColumn, SignalParams } from "../activity/signals";

/** Times are stored as epoch milliseconds (UTC) and rendered as ISO 8601 by the API. */

export const users = sqliteTable(
  "users",
  {
    id: text().primaryKey(),
    status: text({ enum: ["active", "frozen", "banned"] }).notNull().default("active"),
    kycStatus: text({ enum: ["none", "pending", "verified", "rejected"] }).notNull().default("none"),
    /** Set by a level-3 fraud action: money may not leave until an admin clears it after a re-check. */
    verificationRequired: integer({ mode: "boolean" }).notNull().default(false),
    /** Maintained by the batches that credit a deposit and complete a withdrawal, so the balance never scans history. */
    totalDepositedCoins: integer().notNull().default(0),
    totalWithdrawnIdr: integer().notNull().default(0),
    /** When the user's first deposit was credited (metrics: new payers, conversion); set once in that batch. */
    firstPaidAt: integer(),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
  },
  (t) => [
    index("users_created_idx").on(t.createdAt),
    index("users_first_paid_idx").on(t.firstPaidAt),
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
      enum: ["deposit", "withdraw", "transfer", "purchase", "gift", "boost", "commission", "payout", "refund", "fee", "adjustment", "debt_settlement", "escrow_release"],
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
    // Balance totals (deposited, withdrawn) read only one user's completed rows of one type.
    index("transactions_user_type_idx").on(t.userId, t.type, t.status),
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
  // By account and time: per-account sums (the ledger check) and a creator's earnings since a date.
  (t) => [index("postings_account_idx").on(t.accountId, t.createdAt), index("postings_transaction_idx").on(t.transactionId)],
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
    /**
     * Until then the request that wrote the answer may still replace it (it is waiting on a gateway whose
     * reply decides it): a repeat meanwhile is 409 `conflict` with Retry-After, not a provisional answer.
     */
    settlesAt: integer(),
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

/** Coin packages sold for rupiah (SPEC §6.1); defaults seeded by migration, admin-editable. */
export const coinPackages = sqliteTable(
  "coin_packages",
  {
    id: text().primaryKey(),
    coins: integer().notNull(),
    price: integer().notNull(),
    bonusCoins: integer().notNull().default(0),
    currency: text({ enum: ["IDR"] }).notNull().default("IDR"),
    isActive: integer({ mode: "boolean" }).notNull().default(true),
    displayOrder: integer().notNull(),
    badge: text(),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
  },
  (t) => [
    uniqueIndex("coin_packages_display_order_uq").on(t.displayOrder),
    check("coin_package_amounts", sql`${t.coins} > 0 and ${t.price} > 0 and ${t.bonusCoins} >= 0`),
  ],
);

/** Advertiser campaigns; each has an IDR budget account `cmp:<id>:IDR` in the ledger. */
export const campaigns = sqliteTable(
  "campaigns",
  {
    id: text().primaryKey(),
    ownerId: text()
      .notNull()
      .references(() => users.id),
    name: text().notNull(),
    rateFeeIdr: integer(),
    status: text({ enum: ["active", "paused", "ended"] }).notNull().default("active"),
    createdAt: integer().notNull(),
  },
  (t) => [index("campaigns_owner_idx").on(t.ownerId, t.id)],
);

/**
 * A payment order at a gateway: a coin package purchase or a campaign deposit. Money is credited
 * only by an authentic notification, exactly once (once-key `deposit:<id>`).
 */
export const paymentOrders = sqliteTable(
  "payment_orders",
  {
    id: text().primaryKey(),
    userId: text()
      .notNull()
      .references(() => users.id),
    kind: text({ enum: ["coin_package", "campaign_deposit"] }).notNull(),
    gateway: text({ enum: ["midtrans", "xendit"] }).notNull(),
    packageId: text(),
    campaignId: text(),
    amountIdr: integer().notNull(),
    coins: integer().notNull().default(0),
    bonusCoins: integer().notNull().default(0),
    /** `reversed`: the credit was fully reversed; `refunded`: refunded before any credit (nothing may be credited). */
    status: text({ enum: ["pending", "paid", "failed", "reversed", "refunded"] }).notNull(),
    /** Of the credited asset (coins + bonus, or the campaign's rupiah), how much refunds and chargebacks took back. */
    reversedAmount: integer().notNull().default(0),
    /** The cumulative refunded rupiah the Status API confirmed, as last applied. */
    refundedIdr: integer().notNull().default(0),
    gatewayStatus: text(),
    gatewayRef: text(),
    redirectUrl: text(),
    failureReason: text(),
    /** The device that created the order; copied onto the deposit transaction when it is credited. */
    deviceFingerprint: text(),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
    paidAt: integer(),
    failedAt: integer(),
    /** When the gateway first reported a (partial) chargeback of it (metrics count each order once, on that day). */
    chargedBackAt: integer(),
  },
  (t) => [
    index("payment_orders_user_idx").on(t.userId, t.id),
    index("payment_orders_failed_idx").on(t.userId, t.failedAt),
    index("payment_orders_paid_at_idx").on(t.paidAt),
    index("payment_orders_failed_at_idx").on(t.failedAt),
    index("payment_orders_charged_back_at_idx").on(t.chargedBackAt),
    check("payment_order_amount_positive", sql`${t.amountIdr} > 0`),
    // Reversals never take back more than was credited, nor refunds exceed what was paid.
    check(
      "payment_order_reversal_bounded",
      sql`${t.reversedAmount} >= 0 and ${t.reversedAmount} <= (case when ${t.kind} = 'coin_package' then ${t.coins} + ${t.bonusCoins} else ${t.amountIdr} end) and ${t.refundedIdr} >= 0 and ${t.refundedIdr} <= ${t.amountIdr}`,
    ),
  ],
);

/** Every authentic gateway notification as received (the raw payload), for audit and replay analysis. */
export const paymentNotifications = sqliteTable(
  "payment_notifications",
  {
    id: integer().primaryKey({ autoIncrement: true }),
    gateway: text({ enum: ["midtrans", "xendit", "iris"] }).notNull(),
    orderId: text().notNull(),
    status: text().notNull(),
    outcome: text().notNull(),
    payload: text().notNull(),
    receivedAt: integer().notNull(),
  },
  (t) => [index("payment_notifications_order_idx").on(t.orderId)],
);

/** Fraud alerts raised by rules and features (SPEC §12); reviewed by admins. */
export const fraudAlerts = sqliteTable(
  "fraud_alerts",
  {
    id: text().primaryKey(),
    userId: text(),
    alertType: text().notNull(),
    severity: text({ enum: ["low", "medium", "high", "critical"] }).notNull(),
    details: text({ mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
    deviceFingerprint: text(),
    status: text({ enum: ["open", "investigating", "resolved", "false_positive"] }).notNull().default("open"),
    actionTaken: text({ enum: ["warned", "frozen", "banned", "cleared"] }),
    /** When `actionTaken` was decided (set with it; a review that keeps the action keeps the time): the day metrics count a freeze or ban on. */
    actionDecidedAt: integer(),
    reviewedBy: text(),
    reviewedAt: integer(),
    /** SHA-256 hex of what makes an alert "the same" (rule, subject, window): a repeat is ignored. Never a raw client string. */
    dedupeKey: text(),
    createdAt: integer().notNull(),
  },
  (t) => [
    index("fraud_alerts_user_idx").on(t.userId, t.id),
    index("fraud_alerts_type_idx").on(t.alertType, t.id),
    index("fraud_alerts_created_idx").on(t.createdAt, t.id),
    index("fraud_alerts_reviewed_idx").on(t.reviewedAt),
    index("fraud_alerts_action_decided_idx").on(t.actionDecidedAt),
    uniqueIndex("fraud_alerts_dedupe_uq").on(t.dedupeKey),
  ],
);

/** A KYC submission; photos live encrypted in R2 under `photoKey`s, never in D1. */
export const kycSubmissions = sqliteTable(
  "kyc_submissions",
  {
    id: text().primaryKey(),
    userId: text()
      .notNull()
      .references(() => users.id),
    idType: text({ enum: ["ktp", "passport", "sim"] }).notNull(),
    /** The ID number, AES-256-GCM encrypted like the photos (base64 of iv ‖ ciphertext). */
    idNumberEncrypted: text().notNull(),
    idNumberLast4: text().notNull(),
    idPhotoKey: text().notNull(),
    idPhotoType: text().notNull(),
    selfiePhotoKey: text().notNull(),
    selfiePhotoType: text().notNull(),
    status: text({ enum: ["pending", "verified", "rejected"] }).notNull(),
    reason: text(),
    submittedAt: integer().notNull(),
    reviewedAt: integer(),
    reviewedBy: text(),
    photosDeletedAt: integer(),
    /** Which KYC_ENCRYPTION_KEY sealed the photos and ID number (null: sealed before key ids existed). */
    keyId: text(),
  },
  (t) => [
    index("kyc_user_idx").on(t.userId, t.id),
    index("kyc_status_idx").on(t.status, t.id),
    // Concurrent submissions leave exactly one pending row.
    uniqueIndex("kyc_one_pending_uq").on(t.userId).where(sql`${t.status} = 'pending'`),
  ],
);

export const withdrawMethods = sqliteTable("withdraw_methods", {
  userId: text()
    .primaryKey()
    .references(() => users.id),
  bankName: text().notNull(),
  accountNumber: text().notNull(),
  accountName: text().notNull(),
  updatedAt: integer().notNull(),
  /** The first method is usable at once; a changed one after WITHDRAW_METHOD_COOLDOWN_HOURS. */
  usableFrom: integer().notNull().default(0),
});

/** A withdrawal: the amount is held at request time and posted or voided once Iris reports. */
export const withdrawals = sqliteTable(
  "withdrawals",
  {
    id: text().primaryKey(),
    userId: text()
      .notNull()
      .references(() => users.id),
    asset: text({ enum: ["COIN", "IDR"] }).notNull(),
    amount: integer().notNull(),
    grossIdr: integer().notNull(),
    platformFeeIdr: integer().notNull(),
    taxIdr: integer().notNull(),
    netIdr: integer().notNull(),
    status: text({ enum: ["pending", "completed", "failed"] }).notNull(),
    holdId: text().notNull(),
    transactionId: text().notNull(),
    irisReference: text(),
    bankName: text().notNull(),
    accountNumber: text().notNull(),
    accountName: text().notNull(),
    failureReason: text(),
    /** Iris' answer to the payout request was ambiguous (timeout, 5xx, unreadable): it may or may not exist there. */
    unconfirmed: integer({ mode: "boolean" }).notNull().default(false),
    /** When reconciliation next asks Iris about this pending withdrawal, and how often it already did. */
    nextCheckAt: integer(),
    checks: integer().notNull().default(0),
    resolvedBy: text(),
    /** The unusual-withdrawal alert whose clearance (an admin's, or a KYC re-check) let this one through: each is used once. */
    clearanceAlertId: text(),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
    completedAt: integer(),
  },
  (t) => [
    index("withdrawals_user_idx").on(t.userId, t.id),
    index("withdrawals_clearance_idx").on(t.clearanceAlertId),
    uniqueIndex("withdrawals_iris_reference_uq").on(t.irisReference),
    index("withdrawals_status_idx").on(t.status, t.createdAt),
    index("withdrawals_due_idx").on(t.status, t.nextCheckAt, t.id),
    check("withdrawal_split", sql`${t.platformFeeIdr} + ${t.taxIdr} + ${t.netIdr} = ${t.grossIdr}`),
  ],
);

/** Which users were active on which business day (written once per user and day by POST /api/activity). */
export const activityDays = sqliteTable(
  "activity_days",
  {
    day: text().notNull(),
    userId: text().notNull(),
    createdAt: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.day, t.userId] })],
);

/** A day's run of the classification and payout batch; progress is counted from the rows it writes. */
export const batchRuns = sqliteTable("batch_runs", {
  day: text().primaryKey(),
  /** `failed`: a queue message exhausted its retries (dead-letter queue); POST .../run resumes. */
  status: text({ enum: ["collecting", "paying", "done", "failed"] }).notNull(),
  mode: text({ enum: ["robust", "fixed"] }),
  mu: real(),
  sigma: real(),
  population: integer(),
  paramsSource: text(),
  /** μ, σ and their source per volume/regularity column (`SignalColumn`), fixed with μ and σ of R̄. */
  signalParams: text({ mode: "json" }).$type<Record<SignalColumn, SignalParams>>(),
  activeUsers: integer().notNull().default(0),
  queueMessages: integer().notNull().default(0),
  failedChunks: integer().notNull().default(0),
  runs: integer().notNull().default(1),
  /** Housekeeping's last look at a run past BATCH_STALL_MINUTES: its progress then (resumed only if unchanged at the next look). */
  watched: text(),
  startedAt: integer().notNull(),
  finishedAt: integer(),
});

/**
 * Users whose Durable Object failed to give their day's summary while others in the same chunk did: after
 * a few such failures the day goes on without them (one user cannot stop everyone's batch).
 */
export const collectFailures = sqliteTable(
  "collect_failures",
  {
    day: text().notNull(),
    userId: text().notNull(),
    attempts: integer().notNull(),
    lastError: text().notNull(),
    /** The first failure (null on rows from before it was kept: their updatedAt stands in). */
    firstFailedAt: integer(),
    /** When the day went on without the user (after enough failures over enough time); null while retried. */
    givenUpAt: integer(),
    updatedAt: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.day, t.userId] })],
);

/** One user's activity summary for a day (collected from their Durable Object) and its classification. */
export const dailyActivity = sqliteTable(
  "daily_activity",
  {
    day: text().notNull(),
    userId: text().notNull(),
    activeMinutes: integer().notNull(),
    weightedUnits: integer().notNull(),
    rbar: real().notNull(),
    /** Standard error of R̄ (activity/signals.ts); 0 for days collected before it existed. */
    rbarSe: real().notNull().default(0),
    /** Volume and regularity columns (activity/signals.ts); the regularity ones are null on a day too short to judge. */
    activeHours: integer().notNull().default(0),
    rateDispersion: real(),
    cadence: real(),
    /** JSON object campaignId → weighted units attributed to it. */
    campaignUnits: text({ mode: "json" }).$type<Record<string, number>>().notNull(),
    level: text({ enum: ["A", "B", "C"] }),
    /** z of R̄. */
    z: real(),
    /** z of each signal (volume, regularity) and of each of their columns. */
    signalZ: text({ mode: "json" }).$type<Record<Signal | SignalColumn, number | null>>(),
    /** What set the level: rbar, volume, regularity, volume+regularity; null for C. */
    decidedBy: text({ enum: ["rbar", "volume", "regularity", "volume+regularity"] }),
    action: text({ enum: ["banned", "held", "paid", "none"] }),
    classifiedAt: integer(),
  },
  (t) => [
    primaryKey({ columns: [t.day, t.userId] }),
    index("daily_activity_level_idx").on(t.day, t.level),
    index("daily_activity_rbar_idx").on(t.day, t.rbar),
    index("daily_activity_classified_idx").on(t.day, t.classifiedAt),
  ],
);

/** A day's payout to one user from one campaign's budget (unique per day, user and campaign). */
export const payouts = sqliteTable(
  "payouts",
  {
    id: text().primaryKey(),
    day: text().notNull(),
    userId: text().notNull(),
    campaignId: text().notNull(),
    advertiserId: text().notNull(),
    units: integer().notNull(),
    /** Rupiah paid (or held, or to pay): units × rate fee, less what the daily cap withheld. */
    amountIdr: integer().notNull(),
    feeIdr: integer().notNull(),
    /** Rupiah over PAYOUT_DAILY_CAP_IDR: recorded, never paid. A line capped to nothing has status `capped`. */
    cappedIdr: integer().notNull().default(0),
    status: text({ enum: ["paid", "held", "rejected", "insufficient_budget", "campaign_suspended", "capped"] }).notNull(),
    transactionId: text(),
    /** The usage invoice that billed this payout (null: not billed yet). */
    invoiceId: text(),
    decidedBy: text(),
    decidedAt: integer(),
    createdAt: integer().notNull(),
  },
  (t) => [
    uniqueIndex("payouts_day_user_campaign_uq").on(t.day, t.userId, t.campaignId),
    index("payouts_user_idx").on(t.userId, t.id),
    index("payouts_day_status_idx").on(t.day, t.status),
    index("payouts_advertiser_idx").on(t.advertiserId, t.day),
    index("payouts_unbilled_idx").on(t.advertiserId, t.status, t.invoiceId),
  ],
);

/** A monthly usage invoice per advertiser (SPEC §8.1), debited from the advertiser's IDR wallet. */
export const usageInvoices = sqliteTable(
  "usage_invoices",
  {
    id: text().primaryKey(),
    advertiserId: text().notNull(),
    month: text().notNull(),
    units: integer().notNull(),
    amountIdr: integer().notNull(),
    breakdown: text({ mode: "json" }).$type<Record<string, unknown>>().notNull(),
    status: text({ enum: ["paid", "unpaid"] }).notNull(),
    transactionId: text(),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
  },
  (t) => [uniqueIndex("usage_invoices_advertiser_month_uq").on(t.advertiserId, t.month)],
);

/** A month whose invoice run went through every advertiser (issuing invoices or not): usage after it counts its late releases in the next month. */
export const invoiceRuns = sqliteTable("invoice_runs", {
  month: text().primaryKey(),
  ranAt: integer().notNull(),
});

/**
 * Rupiah value spent per user and business day. The CHECK is the daily spending limit itself: the
 * counter is bumped inside the spend's own batch, so racing spends can never pass the limit together.
 */
export const spendCounters = sqliteTable(
  "spend_counters",
  {
    userId: text().notNull(),
    day: text().notNull(),
    spentIdr: integer().notNull(),
    limitIdr: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.day] }), check("spend_limit_daily", sql`${t.spentIdr} <= ${t.limitIdr}`)],
);

/** Which accounts used which device fingerprint, with the request details seen last. */
export const deviceAccounts = sqliteTable(
  "device_accounts",
  {
    fingerprint: text().notNull(),
    userId: text().notNull(),
    userAgent: text(),
    ip: text(),
    screen: text(),
    timezone: text(),
    firstSeen: integer().notNull(),
    lastSeen: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.fingerprint, t.userId] })],
);

/** Users or devices that skip the fraud rules (never the limits or signature checks) until they expire. */
export const fraudWhitelist = sqliteTable(
  "fraud_whitelist",
  {
    id: text().primaryKey(),
    userId: text(),
    deviceFingerprint: text(),
    reason: text().notNull(),
    expiresAt: integer(),
    createdBy: text().notNull(),
    createdAt: integer().notNull(),
  },
  (t) => [index("fraud_whitelist_user_idx").on(t.userId), index("fraud_whitelist_device_idx").on(t.deviceFingerprint)],
);

/**
 * A premium content item (SPEC §9). Ids come from the platform's content service; the first user who
 * registers an id is its creator (an admin may reassign it). `deleted`: by its creator (every buyer
 * refunded in full); `removed`: by an admin (each buyer gets the creator's share back).
 */
export const contentItems = sqliteTable(
  "content_items",
  {
    id: text().primaryKey(),
    creatorId: text().notNull(),
    price: integer().notNull(),
    status: text({ enum: ["available", "deleted", "removed"] }).notNull().default("available"),
    purchaseCount: integer().notNull().default(0),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
  },
  (t) => [index("content_items_creator_idx").on(t.creatorId, t.id), check("content_price_positive", sql`${t.price} > 0`)],
);

/** One unlock of a content item, with its price and split frozen; refunded at most once. */
export const contentPurchases = sqliteTable(
  "content_purchases",
  {
    id: text().primaryKey(),
    contentId: text().notNull(),
    buyerId: text().notNull(),
    creatorId: text().notNull(),
    price: integer().notNull(),
    creatorShare: integer().notNull(),
    platformShare: integer().notNull(),
    processingShare: integer().notNull(),
    transactionId: text().notNull(),
    purchasedAt: integer().notNull(),
    refundedAt: integer(),
    /** `full`: the buyer got the whole price back; `creator_share`: only the creator's share (admin removal). */
    refundKind: text({ enum: ["full", "creator_share"] }),
    refundAmount: integer(),
    refundTransactionId: text(),
  },
  (t) => [
    // One live (unrefunded) purchase per buyer and item: a second unlock aborts on this index.
    uniqueIndex("content_purchases_live_uq").on(t.contentId, t.buyerId).where(sql`${t.refundedAt} is null`),
    index("content_purchases_content_idx").on(t.contentId, t.id),
    index("content_purchases_buyer_idx").on(t.buyerId, t.id),
    check("content_purchase_split", sql`${t.creatorShare} + ${t.platformShare} + ${t.processingShare} = ${t.price}`),
  ],
);

/** A creator deletion or admin removal refunding every buyer through the queue, with its progress. */
export const contentRefundRuns = sqliteTable("content_refund_runs", {
  contentId: text().primaryKey(),
  kind: text({ enum: ["full", "creator_share"] }).notNull(),
  reason: text().notNull(),
  requestedBy: text().notNull(),
  purchases: integer().notNull(),
  queueMessages: integer().notNull().default(0),
  /** When its fan-out reached the queue (null: it never left, e.g. the queue failed after the item closed). */
  fanoutSentAt: integer(),
  startedAt: integer().notNull(),
  finishedAt: integer(),
});

/** The live gift catalogue (SPEC §10), admin-configurable; a retired gift stays for history but is not sold. */
export const gifts = sqliteTable(
  "gifts",
  {
    id: text().primaryKey(),
    name: text().notNull(),
    coins: integer().notNull(),
    animation: text().notNull(),
    active: integer({ mode: "boolean" }).notNull().default(true),
    sortOrder: integer().notNull().default(0),
    createdAt: integer().notNull(),
    updatedAt: integer().notNull(),
  },
  (t) => [check("gift_coins_positive", sql`${t.coins} > 0`)],
);

/**
 * A live stream as this service knows it: bound to its streamer by the first gift naming it (the live
 * service owns streams; a later gift naming another streamer for the same stream is refused).
 */
export const liveStreams = sqliteTable("live_streams", {
  id: text().primaryKey(),
  streamerId: text().notNull(),
  createdAt: integer().notNull(),
});

/** One gift sent on a stream (its transaction has the money); the leaderboard sums these. */
export const liveGifts = sqliteTable(
  "live_gifts",
  {
    transactionId: text().primaryKey(),
    streamId: text().notNull(),
    senderId: text().notNull(),
    streamerId: text().notNull(),
    giftId: text().notNull(),
    quantity: integer().notNull(),
    amount: integer().notNull(),
    createdAt: integer().notNull(),
  },
  (t) => [index("live_gifts_stream_sender_idx").on(t.streamId, t.senderId), index("live_gifts_streamer_idx").on(t.streamerId)],
);

/**
 * A boost bought for a stream: featured from `startsAt` to `expiresAt` (a boost on a stream already
 * boosted at that level starts when the last one ends). Premium boosts also put the stream on the homepage.
 */
export const boostPurchases = sqliteTable(
  "boost_purchases",
  {
    transactionId: text().primaryKey(),
    streamId: text().notNull(),
    buyerId: text().notNull(),
    level: text({ enum: ["basic", "premium"] }).notNull(),
    price: integer().notNull(),
    multiplierBps: integer().notNull(),
    startsAt: integer().notNull(),
    expiresAt: integer().notNull(),
    createdAt: integer().notNull(),
  },
  (t) => [index("boost_purchases_level_expiry_idx").on(t.level, t.expiresAt), index("boost_purchases_stream_idx").on(t.streamId, t.level, t.expiresAt), index("boost_purchases_expiry_idx").on(t.expiresAt)],
);

/** Counters the badges are awarded from, moved in the batch of the movement that earns them. */
export const userStats = sqliteTable("user_stats", {
  userId: text().primaryKey(),
  giftsReceived: integer().notNull().default(0),
  coinsEarned: integer().notNull().default(0),
  boostsBought: integer().notNull().default(0),
});

/** Badges, each awarded to a user once (the primary key), in the batch that crosses its threshold. */
export const badges = sqliteTable(
  "badges",
  {
    userId: text().notNull(),
    badge: text({ enum: ["rising_star", "top_earner", "super_booster"] }).notNull(),
    transactionId: text().notNull(),
    awardedAt: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.badge] })],
);

/**
 * A marketplace order (SPEC §11): the buyer paid at once; the seller's and affiliate's shares wait in
 * escrow until the buyer confirms or MARKETPLACE_ESCROW_DAYS pass. Tier, rates and shares are frozen here.
 */
export const marketplaceOrders = sqliteTable(
  "marketplace_orders",
  {
    id: text().primaryKey(),
    buyerId: text().notNull(),
    sellerId: text().notNull(),
    productId: text().notNull(),
    amount: integer().notNull(),
    tier: text({ enum: ["basic", "verified_business", "premium_partner"] }).notNull(),
    commissionBps: integer().notNull(),
    processingBps: integer().notNull(),
    affiliateBps: integer().notNull(),
    sellerShare: integer().notNull(),
    platformShare: integer().notNull(),
    processingShare: integer().notNull(),
    affiliateShare: integer().notNull(),
    affiliateId: text(),
    referralCode: text(),
    status: text({ enum: ["escrow", "released", "refunded"] }).notNull(),
    transactionId: text().notNull(),
    releaseDueAt: integer().notNull(),
    releasedAt: integer(),
    releasedBy: text(),
    refundedAt: integer(),
    refundedBy: text(),
    /** `before_release`: everything back; `after_release`: seller, affiliate and commission clawed back, processing kept. */
    refundKind: text({ enum: ["before_release", "after_release"] }),
    refundAmount: integer(),
    createdAt: integer().notNull(),
  },
  (t) => [
    index("marketplace_orders_seller_idx").on(t.sellerId, t.createdAt),
    index("marketplace_orders_buyer_idx").on(t.buyerId, t.id),
    index("marketplace_orders_due_idx").on(t.status, t.releaseDueAt, t.id),
    check("marketplace_order_split", sql`${t.sellerShare} + ${t.platformShare} + ${t.processingShare} + ${t.affiliateShare} = ${t.amount}`),
  ],
);

/** One referral code per user. */
export const referralCodes = sqliteTable(
  "referral_codes",
  {
    code: text().primaryKey(),
    userId: text().notNull(),
    createdAt: integer().notNull(),
  },
  (t) => [uniqueIndex("referral_codes_user_uq").on(t.userId)],
);

/** A seller's business verification (license, tax id), reviewed by an admin. */
export const businessVerifications = sqliteTable(
  "business_verifications",
  {
    userId: text().primaryKey(),
    businessName: text().notNull(),
    licenseNumber: text().notNull(),
    taxId: text().notNull(),
    status: text({ enum: ["pending", "verified", "rejected"] }).notNull(),
    submittedAt: integer().notNull(),
    reviewedBy: text(),
    reviewedAt: integer(),
    note: text(),
  },
  (t) => [index("business_verifications_status_idx").on(t.status, t.submittedAt)],
);

/**
 * Who has (or recently had) a realtime socket: written by the user's Durable Object when a socket opens
 * and when the last one closes. Background jobs publish events only to these users, so a day's payouts
 * do not wake a hundred thousand objects nobody listens to (a user away longer than the replay window
 * gets `resync` on return).
 */
export const realtimePresence = sqliteTable("realtime_presence", {
  userId: text().primaryKey(),
  connected: integer({ mode: "boolean" }).notNull(),
  lastSeen: integer().notNull(),
});

/** One business day's operating figures (SPEC §14), written by the daily rollup (and for today, live). */
export const dailyMetrics = sqliteTable("daily_metrics", {
  day: text().primaryKey(),
  newUsers: integer().notNull(),
  newPayers: integer().notNull(),
  ordersFinal: integer().notNull(),
  ordersPaid: integer().notNull(),
  /** Gateway latencies as a histogram: bucket upper bound (ms) → calls. */
  latency: text({ mode: "json" }).$type<Record<string, number>>().notNull(),
  flaggedTransactions: integer().notNull(),
  chargebacks: integer().notNull(),
  freezes: integer().notNull(),
  bans: integer().notNull(),
  computedAt: integer().notNull(),
});

/** Per user and business day: active, paid (and how much), earned (rupiah value): what distinct counts and percentiles need. */
export const metricUserDays = sqliteTable(
  "metric_user_days",
  {
    day: text().notNull(),
    userId: text().notNull(),
    active: integer().notNull(),
    paid: integer().notNull(),
    revenueIdr: integer().notNull(),
    earnedIdr: integer().notNull(),
  },
  (t) => [primaryKey({ columns: [t.day, t.userId] })],
);

/**
 * Always empty: a guard statement inserts a row only when its condition holds, and the trigger of
 * migration 0009 refuses every row with RAISE(ABORT, 'guard:<name>'), rolling the whole batch back.
 */
export const batchGuards = sqliteTable("batch_guards", {
  name: text().notNull(),
});

/**
 * The ledger check's reports (SPEC §4 invariants over the whole ledger), kept 90 days: written by the
 * daily cron and by an admin's "check now"; the console shows the latest instead of scanning the ledger.
 */
export const ledgerChecks = sqliteTable("ledger_checks", {
  id: integer().primaryKey({ autoIncrement: true }),
  checkedAt: integer().notNull(),
  ok: integer({ mode: "boolean" }).notNull(),
  report: text({ mode: "json" }).$type<Record<string, unknown>>().notNull(),
});

/**
 * Admin console sessions. The cookie carries a random secret; only its SHA-256 is kept here, so a read of
 * this table opens no session. A session ends at sign-out (its row deleted), after CONSOLE idle time
 * without use, at `expiresAt` (a fixed lifetime, never past the sign-in token's own expiry), or when its
 * admin is banned.
 */
export const consoleSessions = sqliteTable(
  "console_sessions",
  {
    id: text().primaryKey(),
    adminId: text().notNull(),
    createdAt: integer().notNull(),
    lastSeenAt: integer().notNull(),
    expiresAt: integer().notNull(),
  },
  (t) => [index("console_sessions_expires_idx").on(t.expiresAt)],
);

export const schema = {
  batchGuards,
  invoiceRuns,
  consoleSessions,
  ledgerChecks,
  contentItems,
  contentPurchases,
  contentRefundRuns,
  gifts,
  liveStreams,
  liveGifts,
  boostPurchases,
  userStats,
  badges,
  marketplaceOrders,
  referralCodes,
  businessVerifications,
  realtimePresence,
  dailyMetrics,
  metricUserDays,
  users,
  accounts,
  transactions,
  postings,
  holds,
  onceKeys,
  idempotencyKeys,
  auditLog,
  coinPackages,
  campaigns,
  paymentOrders,
  paymentNotifications,
  fraudAlerts,
  kycSubmissions,
  withdrawMethods,
  withdrawals,
  activityDays,
  batchRuns,
  collectFailures,
  dailyActivity,
  payouts,
  usageInvoices,
  spendCounters,
  deviceAccounts,
  fraudWhitelist,
};
export type PayoutRow = typeof payouts.$inferSelect;
export type ContentItemRow = typeof contentItems.$inferSelect;
export type ContentPurchaseRow = typeof contentPurchases.$inferSelect;
export type GiftRow = typeof gifts.$inferSelect;
export type MarketplaceOrderRow = typeof marketplaceOrders.$inferSelect;
export type DailyActivityRow = typeof dailyActivity.$inferSelect;
export type UsageInvoiceRow = typeof usageInvoices.$inferSelect;
export type KycSubmissionRow = typeof kycSubmissions.$inferSelect;
export type WithdrawalRow = typeof withdrawals.$inferSelect;
export type CoinPackageRow = typeof coinPackages.$inferSelect;
export type PaymentOrderRow = typeof paymentOrders.$inferSelect;
export type CampaignRow = typeof campaigns.$inferSelect;
export type UserRow = typeof users.$inferSelect;
export type TransactionRow = typeof transactions.$inferSelect;
