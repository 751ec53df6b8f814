import { and, asc, count, eq, gt, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { auditLog, contentItems, contentPurchases, contentRefundRuns, type ContentItemRow, type ContentPurchaseRow } from "../db/schema";
import { systemAccountId, userAccountId } from "../ledger/accounts";
import { clawBack } from "../ledger/debt-settlement";
import { applyPlan, applyStatements, type IdempotencyWrite, type Statement } from "../ledger/executor";
import { checkGuards, guard, GuardError } from "../ledger/guards";
import { entryPlan } from "../ledger/plan";
import { applySpending, spendingPlan } from "../ledger/spending";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { callerMayMoveOut, firstSight, userNotBanned } from "../users/users.guards";
import type { TransactionView } from "../wallet/wallet.view";
import { statStatements } from "../live/badges";
import { contentSplit, refundLegs, type RefundKind } from "./content-rules";
import { eachApart } from "../jobs/fanout";
import { notAboutThemselves } from "../lib/auth";
import { TermsCache } from "../lib/terms-cache";

export const contentView = (c: ContentItemRow) => ({
  id: c.id,
  creatorId: c.creatorId,
  price: c.price,
  purchaseCount: c.purchaseCount,
  available: c.status === "available",
  status: c.status,
  createdAt: new Date(c.createdAt).toISOString(),
  updatedAt: new Date(c.updatedAt).toISOString(),
});

export async function findContent(db: Db, id: string) {
  return db.query.contentItems.findFirst({ where: eq(contentItems.id, id) });
}

/**
 * Registers a content item at `price` (the first caller becomes its creator) or reprices it (its creator
 * only, while available), in one batch; the price of past purchases stays as it was.
 */
export async function registerContent(db: Db, callerId: string, id: string, price: number, now: number) {
  const mine = sql`exists (select 1 from ${contentItems} where ${contentItems.id} = ${id} and ${contentItems.creatorId} = ${callerId} and ${contentItems.updatedAt} = ${now})`;
  const [, [row]] = (await applyStatements(db, [
    firstSight(db, callerId, now),
    db
      .insert(contentItems)
      .values({ id, creatorId: callerId, price, createdAt: now, updatedAt: now })
      .onConflictDoUpdate({ target: contentItems.id, set: { price, updatedAt: now }, setWhere: sql`${contentItems.creatorId} = ${callerId} and ${contentItems.status} = 'available'` })
      .returning(),
    insertWhere(db, auditLog, { actorId: callerId, action: "content.priced", subjectType: "content", subjectId: id, details: { price }, createdAt: now }, sql`where ${mine}`),
  ])) as [unknown, ContentItemRow[]];
  if (row) return contentView(row);
  const existing = await findContent(db, id);
  if (existing && existing.creatorId !== callerId) throw new ApiError("forbidden", "Only the content's creator may price it.");
  throw new ApiError("conflict", "The content is no longer available.");
}

/** An admin hands a content item to another creator (audited); its past purchases keep their split. */
export async function reassignContent(db: Db, adminId: string, id: string, creatorId: string, now: number) {
  notAboutThemselves(adminId, creatorId, "take over content (its sales would pay them)");
  // The item must exist before the new creator is first seen: a refused reassignment creates no user.
  const [, , [row]] = (await applyStatements(db, [
    checkGuards(db, [guard("content_missing", sql`not exists (select 1 from ${contentItems} where ${contentItems.id} = ${id})`)]),
    firstSight(db, creatorId, now),
    db.update(contentItems).set({ creatorId, updatedAt: now }).where(eq(contentItems.id, id)).returning(),
    db.insert(auditLog).values({ actorId: adminId, action: "content.reassigned", subjectType: "content", subjectId: id, details: { creatorId }, createdAt: now }),
  ])) as [unknown, unknown, ContentItemRow[]];
  return contentView(row!);
}

/** Whether the caller may view the item: its creator, or a buyer whose purchase stands, while it is available. */
export async function contentAccess(db: Db, id: string, callerId: string) {
  const [items, purchases] = await db.batch([
    db.select().from(contentItems).where(eq(contentItems.id, id)),
    db.select().from(contentPurchases).where(and(eq(contentPurchases.contentId, id), eq(contentPurchases.buyerId, callerId))).orderBy(sql`${contentPurchases.refundedAt} is null desc`, sql`${contentPurchases.id} desc`).limit(1),
  ]);
  const item = items[0];
  if (!item) throw new ApiError("not_found", "No content with that id.");
  const purchase = purchases[0];
  const available = item.status === "available";
  if (item.creatorId === callerId) return { access: available };
  if (!purchase) return { access: false };
  return { access: available && purchase.refundedAt === null, purchasedAt: new Date(purchase.purchasedAt).toISOString(), refunded: purchase.refundedAt !== null };
}

export interface UnlockBody {
  purchaseId: string;
  contentId: string;
  price: number;
  transaction: TransactionView;
}

/**
 * SPEC §9: the buyer pays the price, split creator / platform / processing, in ONE batch guarded by
 * the terms just read (a reprice or a reassignment in between aborts it and the unlock is sized again)
 * and by the buyer's standing. A live purchase per buyer and item is a unique index, so a second or
 * concurrent unlock aborts on it (409 already_unlocked) and moves nothing. The price and split are
 * frozen on the purchase row.
 */
export async function unlockContent(
  db: Db,
  config: Config,
  buyerId: string,
  contentId: string,
  ctx: { deviceFingerprint: string | null; record: (o: { status: 201; body: UnlockBody }) => IdempotencyWrite | undefined; alongside?: Statement[] },
): Promise<{ status: 201; body: UnlockBody }> {
  for (let attempt = 0; ; attempt++) {
    // The item's terms as remembered (one round trip in all). Any refusal of remembered terms — before the
    // batch (own content, unavailable, a per-transaction limit at a stale price) or by it — is decided again
    // on fresh ones; a batch refused because the terms changed is retried on fresh ones too.
    const { value: item, remembered } = await contentTerms.get(contentId, () => findContent(db, contentId), attempt > 0);
    try {
      if (!item || item.status !== "available") throw new ApiError("not_found", "No available content with that id.");
      if (item.creatorId === buyerId) throw new ApiError("own_content", "You cannot unlock your own content.");
      return await unlockAt(db, config, buyerId, item, ctx);
    } catch (error) {
      // A refusal of remembered terms is decided again on fresh ones; a transport error is not a refusal (the
      // batch may have committed), so it is never retried here.
      if (remembered && error instanceof ApiError && error.status < 500) continue;
      if (!(error instanceof GuardError && error.guard === "content_terms_changed") || attempt >= 3) throw error;
    }
  }
}

/** Items' terms (price, creator, status) as last read in this isolate: an unlock's batch is guarded by them (lib/terms-cache.ts). */
const contentTerms = new TermsCache<ContentItemRow>(2_000);

async function unlockAt(db: Db, config: Config, buyerId: string, item: ContentItemRow, ctx: Parameters<typeof unlockContent>[4]): Promise<{ status: 201; body: UnlockBody }> {
  const now = Date.now();
  const split = contentSplit(item.price, config);
  const purchaseId = newId(now);
  const txId = newId(now);
  const plan = spendingPlan(
    config,
    {
      txId,
      buyerId,
      type: "purchase",
      amount: item.price,
      counterpartyId: item.creatorId,
      metadata: { source: "content", earners: [item.creatorId], contentId: item.id, purchaseId, creatorShare: split.creator, platformShare: split.platform, processingShare: split.processing },
      credits: [
        { accountId: userAccountId(item.creatorId, "COIN"), asset: "COIN", amount: split.creator },
        { accountId: systemAccountId("platform_revenue", "COIN"), asset: "COIN", amount: split.platform },
        { accountId: systemAccountId("processing_fees", "COIN"), asset: "COIN", amount: split.processing },
      ],
      audit: { action: "content.unlocked", subjectType: "content", subjectId: item.id, details: { purchaseId, price: item.price } },
      deviceFingerprint: ctx.deviceFingerprint,
    },
    now,
  );
  return applySpending(db, plan, {
    buyerId,
    body: (transaction) => ({ purchaseId, contentId: item.id, price: item.price, transaction }),
    balancesAt: "$.transaction",
    record: ctx.record,
    // The purchase first: a buyer who already holds one is told so (409) whatever else would refuse.
    before: [
      db.insert(contentPurchases).values({ id: purchaseId, contentId: item.id, buyerId, creatorId: item.creatorId, price: item.price, creatorShare: split.creator, platformShare: split.platform, processingShare: split.processing, transactionId: txId, purchasedAt: now }),
    ],
    guards: [
      // First: every other guard is about the terms this batch was built from.
      guard("content_terms_changed", sql`not exists (select 1 from ${contentItems} where ${contentItems.id} = ${item.id} and ${contentItems.price} = ${item.price} and ${contentItems.creatorId} = ${item.creatorId} and ${contentItems.status} = 'available')`),
      // A banned creator earns nothing: their content cannot be bought while the ban lasts.
      ...userNotBanned(item.creatorId, "content_creator_banned"),
    ],
    alongside: [
      db.update(contentItems).set({ purchaseCount: sql`${contentItems.purchaseCount} + 1` }).where(eq(contentItems.id, item.id)),
      ...statStatements(db, config, item.creatorId, { coinsEarned: split.creator }, txId, now),
      ...(ctx.alongside ?? []),
    ],
  });
}

/**
 * Refunds one purchase, at most once (once-key and a guard on the purchase). The buyer is credited (which
 * settles any debt of theirs first); the creator's share is booked to their debt and, in the same batch,
 * settled from what their wallet has available at commit (ledger/debt-settlement.ts), so debt is only
 * what the wallet cannot cover; a full refund also takes back the platform's and processing's shares.
 */
export async function refundPurchase(
  db: Db,
  config: Config,
  purchase: ContentPurchaseRow,
  kind: RefundKind,
  actorId: string,
  reason: string,
  opts: { idempotency?: IdempotencyWrite } = {},
): Promise<"refunded" | "already_refunded"> {
  const legs = refundLegs(purchase, kind);
  const notRefunded = guard("purchase_already_refunded", sql`exists (select 1 from ${contentPurchases} where ${contentPurchases.id} = ${purchase.id} and ${contentPurchases.refundedAt} is not null)`);
  const now = Date.now();
  try {
    if (legs.buyer === 0) {
      // Nothing to give back (an admin removal of a purchase whose creator share rounded to 0): the
      // purchase is closed, audited, and no transaction is made (a transaction moves a positive amount).
      await applyStatements(db, [
        checkGuards(db, [notRefunded]),
        db.update(contentPurchases).set({ refundedAt: now, refundKind: kind, refundAmount: 0 }).where(eq(contentPurchases.id, purchase.id)),
        db.insert(auditLog).values({ actorId, action: "content.refunded", subjectType: "content", subjectId: purchase.contentId, details: { purchaseId: purchase.id, kind, reason, refunded: 0 }, createdAt: now }),
      ]);
      return "refunded";
    }
    const refundTxId = newId(now);
    const plan = entryPlan({
      tx: {
        id: refundTxId,
        type: "refund",
        asset: "COIN",
        amount: legs.buyer,
        userId: purchase.buyerId,
        counterpartyId: purchase.creatorId,
        metadata: { source: "content", earners: [purchase.creatorId], contentId: purchase.contentId, purchaseId: purchase.id, kind, reason, clawedBack: legs.creator },
      },
      postings: [
        { accountId: userAccountId(purchase.buyerId, "COIN"), asset: "COIN", amount: legs.buyer },
        ...clawBack(purchase.creatorId, "COIN", legs.creator),
        { accountId: systemAccountId("platform_revenue", "COIN"), asset: "COIN", amount: -legs.platform },
        { accountId: systemAccountId("processing_fees", "COIN"), asset: "COIN", amount: -legs.processing },
      ],
      sideAccountId: userAccountId(purchase.buyerId, "COIN"),
      onceKeys: [`content_refund:${purchase.id}`],
      audit: { actorId, action: "content.refunded", subjectType: "content", subjectId: purchase.contentId, details: { purchaseId: purchase.id, kind, reason, refunded: legs.buyer } },
      now,
    });
    await applyPlan(db, plan, {
      guards: [notRefunded],
      idempotency: opts.idempotency,
      alongside: [
        db.update(contentPurchases).set({ refundedAt: now, refundKind: kind, refundAmount: legs.buyer, refundTransactionId: refundTxId }).where(eq(contentPurchases.id, purchase.id)),
        // What is clawed back was not earned: Top Earner counts earnings that stand.
        ...statStatements(db, config, purchase.creatorId, { coinsEarned: -legs.creator }, refundTxId, now),
      ],
    });
    return "refunded";
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_applied") return "already_refunded";
    throw error;
  }
}

/** Purchases of an item not refunded yet, after `after` (keyset paging by id). */
export const livePurchases = (db: Db, contentId: string, after: string, limit: number) =>
  db.select().from(contentPurchases).where(and(eq(contentPurchases.contentId, contentId), isNull(contentPurchases.refundedAt), gt(contentPurchases.id, after))).orderBy(asc(contentPurchases.id)).limit(limit);

/**
 * Takes the item off sale (creator deletion → `deleted`, full refunds; admin removal → `removed`, the
 * creator's share back) and records the refund run, in one batch guarded by who may do it; the caller
 * then fans the purchases out to the queue.
 */
export async function closeContent(db: Db, id: string, kind: RefundKind, actorId: string, reason: string, opts: { asCreator: boolean }, now: number) {
  const status = kind === "full" ? "deleted" : "removed";
  const live = sql`(select count(*) from ${contentPurchases} where ${contentPurchases.contentId} = ${id} and ${contentPurchases.refundedAt} is null)`;
  const livePurchase = (condition: ReturnType<typeof sql>) =>
    sql`exists (select 1 from ${contentPurchases} where ${contentPurchases.contentId} = ${id} and ${contentPurchases.refundedAt} is null and ${condition})`;
  await applyStatements(db, [
    checkGuards(db, [
      guard("content_unavailable", sql`not exists (select 1 from ${contentItems} where ${contentItems.id} = ${id} and ${contentItems.status} = 'available')`),
      ...(opts.asCreator
        ? [
            // Full refunds move the creator's coins out to the buyers: money out, refused like any other.
            ...callerMayMoveOut(actorId),
            guard("not_content_creator", sql`not exists (select 1 from ${contentItems} where ${contentItems.id} = ${id} and ${contentItems.creatorId} = ${actorId})`),
            // A full refund takes back the creator's share from whoever was paid: only that creator may order it, or an admin.
            guard("content_paid_to_previous_creator", livePurchase(sql`${contentPurchases.creatorId} <> ${actorId}`)),
          ]
        : // Separation of duties: a removal refunds every buyer, the removing admin included.
          [guard("admin_bought_content", livePurchase(sql`${contentPurchases.buyerId} = ${actorId}`))]),
    ]),
    // With nothing to refund the run is finished as it starts (no queue chunk will ever finish it).
    insertWhere(db, contentRefundRuns, { contentId: id, kind, reason, requestedBy: actorId, purchases: live, startedAt: now, finishedAt: sql`case when ${live} = 0 then ${now} end` }, sql`where 1`).onConflictDoNothing(),
    db.update(contentItems).set({ status, updatedAt: now }).where(eq(contentItems.id, id)),
    db.insert(auditLog).values({ actorId, action: `content.${status}`, subjectType: "content", subjectId: id, details: { reason, refund: kind }, createdAt: now }),
  ]);
}

/** The item's refund run (`creator_share`: an admin removal; `full`: its creator's deletion), if it has one: its kind and who asked for it. */
export async function refundRun(db: Db, id: string) {
  const [run] = await db
    .select({ kind: contentRefundRuns.kind, requestedBy: contentRefundRuns.requestedBy, fanoutSentAt: contentRefundRuns.fanoutSentAt })
    .from(contentRefundRuns)
    .where(eq(contentRefundRuns.contentId, id));
  return run;
}

export type RefundProgress = Awaited<ReturnType<typeof refundProgress>>;

/** Progress of an item's refund run, counted from the purchases themselves. */
export async function refundProgress(db: Db, id: string) {
  const [runs, [left]] = await db.batch([
    db.select().from(contentRefundRuns).where(eq(contentRefundRuns.contentId, id)),
    db.select({ n: count() }).from(contentPurchases).where(and(eq(contentPurchases.contentId, id), isNull(contentPurchases.refundedAt))),
  ]);
  const run = runs[0];
  if (!run) throw new ApiError("not_found", "No refund run for that content.");
  return {
    contentId: id,
    kind: run.kind,
    reason: run.reason,
    purchases: run.purchases,
    // The run's own: its purchases (live when it started; the item is off sale, so no purchase becomes live
    // since) less those still live. A buyer refunded before the run is not among them.
    refunded: Math.max(0, run.purchases - (left?.n ?? 0)),
    pending: left?.n ?? 0,
    queueMessages: run.queueMessages,
    status: (left?.n ?? 0) === 0 ? ("done" as const) : ("refunding" as const),
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: run.finishedAt === null ? null : new Date(run.finishedAt).toISOString(),
  };
}

/**
 * A queue chunk of a refund run: each purchase refunded in its own batch, at most once. One purchase that
 * cannot be refunded does not hold up the others: the chunk fails (retried, then dead-lettered with an
 * alert) only after every other purchase in it was refunded.
 */
export async function refundChunk(db: Db, config: Config, contentId: string, purchaseIds: string[], now: number) {
  const run = await db.query.contentRefundRuns.findFirst({ where: eq(contentRefundRuns.contentId, contentId) });
  if (!run) throw new Error(`no refund run for ${contentId}`);
  const rows = await db.select().from(contentPurchases).where(and(inArray(contentPurchases.id, purchaseIds), isNull(contentPurchases.refundedAt)));
  const refunds = await eachApart(rows, (p) => p.id, (p) => refundPurchase(db, config, p, run.kind, run.requestedBy, run.reason));
  const [{ n } = { n: 1 }] = await db.select({ n: count() }).from(contentPurchases).where(and(eq(contentPurchases.contentId, contentId), isNull(contentPurchases.refundedAt)));
  if (n === 0) await db.update(contentRefundRuns).set({ finishedAt: now }).where(and(eq(contentRefundRuns.contentId, contentId), isNull(contentRefundRuns.finishedAt)));
  refunds.raise(`refunds of ${contentId}`);
}
