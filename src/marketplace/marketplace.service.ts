import { and, asc, eq, gt, lte, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { auditLog, businessVerifications, deviceAccounts, marketplaceOrders, referralCodes, type MarketplaceOrderRow } from "../db/schema";
import { ruleInBatch } from "../fraud/engine";
import { systemAccountId, userAccountId } from "../ledger/accounts";
import { clawBack } from "../ledger/debt-settlement";
import { applyPlans, applyStatements, type ApplyOptions, type IdempotencyWrite, type Statement } from "../ledger/executor";
import { checkGuards, guard, GuardError, type Guard } from "../ledger/guards";
import { entryPlan, type LedgerPlan } from "../ledger/plan";
import { applySpending, spendingPlan } from "../ledger/spending";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { TermsCache } from "../lib/terms-cache";
import { statStatements } from "../live/badges";
import { callerInGoodStanding, callerNotBanned, recipientActive, userNotBanned } from "../users/users.guards";
import type { TransactionView } from "../wallet/wallet.view";
import { eachApart, type FanoutSource } from "../jobs/fanout";
import { dedupeKey, raiseAlert } from "../fraud/alerts";
import { commissionBps, orderRefundLegs, orderSplit, sellerTier, type SellerTier } from "./marketplace-rules";
import { notAboutThemselves } from "../lib/auth";

const DAY_MS = 86_400_000;
const ESCROW = systemAccountId("marketplace_escrow", "COIN");
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const orderView = (o: MarketplaceOrderRow) => ({
  id: o.id,
  buyerId: o.buyerId,
  sellerId: o.sellerId,
  productId: o.productId,
  amount: o.amount,
  tier: o.tier,
  rates: { commissionBps: o.commissionBps, processingBps: o.processingBps, affiliateBps: o.affiliateBps },
  shares: { seller: o.sellerShare, platform: o.platformShare, processing: o.processingShare, affiliate: o.affiliateShare },
  affiliateId: o.affiliateId,
  status: o.status,
  releaseDueAt: iso(o.releaseDueAt)!,
  releasedAt: iso(o.releasedAt),
  refundedAt: iso(o.refundedAt),
  refundKind: o.refundKind,
  refundAmount: o.refundAmount,
  createdAt: iso(o.createdAt)!,
});
export type OrderView = ReturnType<typeof orderView>;

/** Sales that count for a tier: the seller's orders of the last 30 days that were not refunded. */
const sales30dSql = (sellerId: string, now: number) =>
  sql<number>`(select count(*) from ${marketplaceOrders} where ${marketplaceOrders.sellerId} = ${sellerId} and ${marketplaceOrders.createdAt} > ${now - 30 * DAY_MS} and ${marketplaceOrders.status} != 'refunded')`;
const verifiedSql = (sellerId: string) => sql<number>`exists (select 1 from ${businessVerifications} where ${businessVerifications.userId} = ${sellerId} and ${businessVerifications.status} = 'verified')`;

/** The seller's tier, 30-day sales and verification, read in one query. */
export async function sellerStanding(db: Db, config: Config, sellerId: string, now: number) {
  const [row] = await db
    .select({ sales30d: sales30dSql(sellerId, now), verified: verifiedSql(sellerId), verification: sql<string | null>`(select ${businessVerifications.status} from ${businessVerifications} where ${businessVerifications.userId} = ${sellerId})` })
    .from(sql`(select 1)`);
  const sales30d = row?.sales30d ?? 0;
  const verified = row?.verified === 1;
  const tier = sellerTier(sales30d, verified, config);
  return { sellerId, tier, commissionBps: commissionBps(tier, config), sales30d, verification: (row?.verification ?? "none") as "none" | "pending" | "verified" | "rejected" };
}

export interface OrderBody {
  order: OrderView;
  transaction: TransactionView;
}

/**
 * SPEC §11: the buyer pays at once; the seller's (and affiliate's) share waits in escrow; commission by
 * the seller's tier at the moment of sale and the rates are frozen on the order. The tier is read, then
 * the batch is guarded by it (a sale or verification in between sizes the order again). A referral code
 * must exist and be neither the buyer's nor the seller's; an affiliate seen on the buyer's device raises
 * `suspicious_device` (decided inside the batch).
 */
export async function placeOrder(
  db: Db,
  config: Config,
  buyerId: string,
  input: { sellerId: string; productId: string; amount: number; referralCode?: string },
  ctx: { deviceFingerprint: string | null; record: (o: { status: 201; body: OrderBody }) => IdempotencyWrite | undefined; alongside?: Statement[] },
): Promise<{ status: 201; body: OrderBody }> {
  if (input.sellerId === buyerId) throw new ApiError("self_order", "You cannot buy from yourself.");
  for (let attempt = 0; ; attempt++) {
    const now = Date.now();
    // The seller's tier as remembered (the batch's seller_tier_changed guard refuses a stale one; a retry reads it
    // fresh) and the code's owner (codes never change): in steady state the order is one round trip.
    const [{ value: tier }, code] = await Promise.all([
      sellerTiers.get(input.sellerId, async () => (await sellerStanding(db, config, input.sellerId, now)).tier, attempt > 0),
      input.referralCode ? referralOwners.get(input.referralCode, () => db.query.referralCodes.findFirst({ where: eq(referralCodes.code, input.referralCode!) })).then((r) => r.value) : Promise.resolve(undefined),
    ]);
    let affiliateId: string | null = null;
    if (input.referralCode) {
      if (!code) throw new ApiError("invalid_referral_code", "No such referral code.");
      if (code.userId === buyerId) throw new ApiError("invalid_referral_code", "You cannot use your own referral code.");
      if (code.userId === input.sellerId) throw new ApiError("invalid_referral_code", "The seller's own referral code earns nothing on their sales.");
      affiliateId = code.userId;
    }
    try {
      return await orderAt(db, config, buyerId, input, tier!, affiliateId, ctx, now);
    } catch (error) {
      if (!(error instanceof GuardError && error.guard === "seller_tier_changed") || attempt >= 3) throw error;
    }
  }
}

/** Sellers' tiers, referral codes' owners and placed orders' frozen terms as last read (or written) in this isolate (lib/terms-cache.ts). */
const sellerTiers = new TermsCache<SellerTier>(2_000);
const referralOwners = new TermsCache<{ code: string; userId: string }>(2_000);
const orderTerms = new TermsCache<MarketplaceOrderRow>(2_000);

async function orderAt(db: Db, config: Config, buyerId: string, input: Parameters<typeof placeOrder>[3], tier: SellerTier, affiliateId: string | null, ctx: Parameters<typeof placeOrder>[4], now: number) {
  const rates = { commissionBps: commissionBps(tier, config), processingBps: config.MARKETPLACE_PROCESSING_BPS, affiliateBps: affiliateId ? config.MARKETPLACE_AFFILIATE_BPS : 0 };
  const split = orderSplit(input.amount, rates);
  if (split.seller <= 0) {
    // The seller's share is floored (SPEC §3): an amount too small leaves them nothing, and nothing to release.
    const minimum = Math.ceil(10_000 / (10_000 - rates.commissionBps - rates.processingBps - rates.affiliateBps));
    throw new ApiError("below_minimum", `An order of ${input.amount} coins leaves the seller nothing after commission, processing and the affiliate's share; the minimum is ${minimum}.`);
  }
  const orderId = newId(now);
  const txId = newId(now);
  const row: MarketplaceOrderRow = {
    id: orderId,
    buyerId,
    sellerId: input.sellerId,
    productId: input.productId,
    amount: input.amount,
    tier,
    ...rates,
    sellerShare: split.seller,
    platformShare: split.platform,
    processingShare: split.processing,
    affiliateShare: split.affiliate,
    affiliateId,
    referralCode: affiliateId ? input.referralCode! : null,
    status: "escrow",
    transactionId: txId,
    releaseDueAt: now + config.MARKETPLACE_ESCROW_DAYS * DAY_MS,
    releasedAt: null,
    releasedBy: null,
    refundedAt: null,
    refundedBy: null,
    refundKind: null,
    refundAmount: null,
    createdAt: now,
  };
  const plan = spendingPlan(
    config,
    {
      txId,
      buyerId,
      type: "purchase",
      amount: input.amount,
      counterpartyId: input.sellerId,
      metadata: { source: "marketplace", orderId, productId: input.productId, tier, ...rates, ...split },
      credits: [
        { accountId: ESCROW, asset: "COIN", amount: split.seller + split.affiliate },
        { accountId: systemAccountId("platform_revenue", "COIN"), asset: "COIN", amount: split.platform },
        { accountId: systemAccountId("processing_fees", "COIN"), asset: "COIN", amount: split.processing },
      ],
      audit: { action: "marketplace.ordered", subjectType: "marketplace_order", subjectId: orderId, details: { sellerId: input.sellerId, productId: input.productId, amount: input.amount, tier, affiliateId } },
      deviceFingerprint: ctx.deviceFingerprint,
    },
    now,
  );
  const tierNow = sql`case when ${verifiedSql(input.sellerId)} and ${sales30dSql(input.sellerId, now)} >= ${config.MARKETPLACE_PREMIUM_MIN_SALES} then 'premium_partner'
    when ${verifiedSql(input.sellerId)} and ${sales30dSql(input.sellerId, now)} >= ${config.MARKETPLACE_VERIFIED_MIN_SALES} then 'verified_business' else 'basic' end`;
  const selfReferral =
    affiliateId && ctx.deviceFingerprint
      ? ruleInBatch(
          db,
          config,
          "suspicious_device",
          "referral",
          { userId: buyerId, deviceFingerprint: ctx.deviceFingerprint },
          { affiliateSharesBuyerDevice: sql`exists (select 1 from ${deviceAccounts} where ${deviceAccounts.fingerprint} = ${ctx.deviceFingerprint} and ${deviceAccounts.userId} = ${affiliateId})` },
          now,
        )
      : [];
  const placed = await applySpending(db, plan, {
    buyerId,
    body: (transaction) => ({ order: orderView(row), transaction }),
    balancesAt: "$.transaction",
    record: ctx.record,
    guards: [...recipientActive(input.sellerId), ...(affiliateId ? userNotBanned(affiliateId, "referral_code_unusable") : []), guard("seller_tier_changed", sql`${tierNow} != ${tier}`)],
    alongside: [db.insert(marketplaceOrders).values(row), ...selfReferral, ...(ctx.alongside ?? [])],
  });
  // Its terms are frozen: a confirm in this isolate needs no read (its batch is guarded by the order still being in escrow).
  orderTerms.set(orderId, row);
  return placed;
}

export async function findOrder(db: Db, id: string) {
  return db.query.marketplaceOrders.findFirst({ where: eq(marketplaceOrders.id, id) });
}

/** The order, to its buyer, seller, affiliate or an admin; to anyone else it does not exist. */
export async function visibleOrder(db: Db, id: string, caller: { id: string; role: string }) {
  return visible(await findOrder(db, id), caller);
}

function visible(order: MarketplaceOrderRow | undefined, caller: { id: string; role: string }): MarketplaceOrderRow {
  if (!order || (caller.role !== "admin" && ![order.buyerId, order.sellerId, order.affiliateId].includes(caller.id))) throw new ApiError("not_found", "No such order.");
  return order;
}

/**
 * POST /orders/{id}/refund: the order as remembered in this isolate (its parties never change; the batch is
 * guarded by its status, and by the caller not being banned), so a seller's refund of an order in escrow is
 * one round trip; any refusal of remembered terms is decided again on a fresh read.
 */
export async function refundOrderById(db: Db, config: Config, id: string, caller: { id: string; role: string }, record?: OrderRecord) {
  for (let fresh = false; ; fresh = true) {
    const { value, remembered } = await orderTerms.get(id, () => findOrder(db, id), fresh);
    try {
      const refunded = await refundOrder(db, config, visible(value, caller), caller, record);
      orderTerms.forget(id);
      return refunded;
    } catch (error) {
      if (!(remembered && error instanceof ApiError && error.status < 500)) throw error;
    }
  }
}

const escrowGuard = (id: string) => guard("order_not_in_escrow", sql`not exists (select 1 from ${marketplaceOrders} where ${marketplaceOrders.id} = ${id} and ${marketplaceOrders.status} = 'escrow')`);

/** The idempotency record of an order decision, given the order as the decision leaves it (written in its batch). */
export type OrderRecord = (order: MarketplaceOrderRow) => IdempotencyWrite | undefined;

/**
 * Releases an order's escrow, once: the seller's share to the seller and the affiliate's to the
 * affiliate (each their own transaction, so each earns under `marketplace`), in ONE batch guarded by
 * the order still being in escrow — a confirm and a refund race to one winner — and by the seller not
 * being banned (a banned seller earns nothing: the escrow stays held until an admin refunds the order).
 * A banned affiliate does not hold up the seller's sale: their share, which came out of the seller's,
 * goes to the seller, and the order's shares say so (a refund after release claws back what was paid).
 * That is decided at commit too: the batch assuming an affiliate in good standing is refused if they
 * are banned, and the forfeiting one is applied (a ban is permanent).
 * `callerGuards`: the standing the one who releases needs (a buyer's confirm moves the buyer's money).
 */
export async function releaseOrder(db: Db, config: Config, order: MarketplaceOrderRow, actor: string, now: number, opts: { record?: OrderRecord; callerGuards?: Guard[] } = {}): Promise<MarketplaceOrderRow> {
  try {
    return await releaseAs(db, config, order, actor, now, opts, false);
  } catch (error) {
    if (!(error instanceof GuardError && error.guard === "order_affiliate_banned")) throw error;
    return releaseAs(db, config, order, actor, now, opts, true);
  }
}

async function releaseAs(db: Db, config: Config, order: MarketplaceOrderRow, actor: string, now: number, opts: { record?: OrderRecord; callerGuards?: Guard[] }, affiliateForfeits: boolean): Promise<MarketplaceOrderRow> {
  const txIds = { seller: newId(now), affiliate: newId(now) };
  // Coins earned (SPEC §10 Top Earner), in the release's batch.
  const earned = (userId: string, amount: number, role: "seller" | "affiliate") => statStatements(db, config, userId, { coinsEarned: amount }, txIds[role], now);
  const part = (userId: string, amount: number, type: "escrow_release" | "commission", role: "seller" | "affiliate"): LedgerPlan =>
    entryPlan({
      tx: { id: txIds[role], type, asset: "COIN", amount, userId, counterpartyId: order.buyerId, metadata: { source: "marketplace", earners: [userId], orderId: order.id, role, ...(affiliateForfeits && role === "seller" ? { affiliateForfeited: order.affiliateShare } : {}) } },
      postings: [
        { accountId: ESCROW, asset: "COIN", amount: -amount },
        { accountId: userAccountId(userId, "COIN"), asset: "COIN", amount },
      ],
      sideAccountId: userAccountId(userId, "COIN"),
      onceKeys: [`marketplace_release:${order.id}:${role}`],
      audit: { actorId: actor, action: "marketplace.released", subjectType: "marketplace_order", subjectId: order.id, details: { role, amount, ...(affiliateForfeits && role === "seller" ? { affiliateForfeited: order.affiliateShare, affiliateId: order.affiliateId } : {}) } },
      now,
    });
  const shares = affiliateForfeits ? { sellerShare: order.sellerShare + order.affiliateShare, affiliateShare: 0 } : { sellerShare: order.sellerShare, affiliateShare: order.affiliateShare };
  const released = { ...order, ...shares, status: "released" as const, releasedAt: now, releasedBy: actor };
  const plans: { plan: LedgerPlan; options: ApplyOptions }[] = [
    {
      plan: part(order.sellerId, shares.sellerShare, "escrow_release", "seller"),
      options: {
        idempotency: opts.record?.(released),
        guards: [
          ...(opts.callerGuards ?? []),
          escrowGuard(order.id),
          ...userNotBanned(order.sellerId, "order_payee_banned"),
          ...(order.affiliateId && !affiliateForfeits ? userNotBanned(order.affiliateId, "order_affiliate_banned") : []),
        ],
        alongside: [
          db.update(marketplaceOrders).set({ ...shares, status: "released", releasedAt: now, releasedBy: actor }).where(eq(marketplaceOrders.id, order.id)),
          ...earned(order.sellerId, shares.sellerShare, "seller"),
        ],
      },
    },
  ];
  if (order.affiliateId && shares.affiliateShare > 0) {
    plans.push({ plan: part(order.affiliateId, shares.affiliateShare, "commission", "affiliate"), options: { guards: [], alongside: earned(order.affiliateId, shares.affiliateShare, "affiliate") } });
  }
  await applyPlans(db, plans);
  return released;
}

/**
 * Refunds an order once. In escrow (its seller or an admin): everything back to the buyer. Released
 * (an admin): the seller's and affiliate's shares are clawed back at the frozen rates — what their
 * wallets cannot cover when the refund commits becomes recorded debt — and the commission returned;
 * processing keeps its share.
 */
export async function refundOrder(db: Db, config: Config, order: MarketplaceOrderRow, caller: { id: string; role: string }, record?: OrderRecord): Promise<MarketplaceOrderRow> {
  if (order.status === "refunded") throw new ApiError("conflict", "The order was already refunded.");
  const admin = caller.role === "admin";
  // An admin does not refund their own purchase (it pays them); as its seller, refunding in escrow is theirs to do.
  if (admin && !(order.status === "escrow" && caller.id === order.sellerId)) notAboutThemselves(caller.id, order.buyerId, "refund an order");
  if (!admin && !(order.status === "escrow" && caller.id === order.sellerId)) {
    throw new ApiError("forbidden", order.status === "escrow" ? "Only the seller or an admin refunds an order." : "Only an admin refunds an order after release.");
  }
  const when = order.status === "escrow" ? ("before_release" as const) : ("after_release" as const);
  const legs = orderRefundLegs(order, when);
  const now = Date.now();
  // A claw-back is booked to the earner's debt; the batch settles it from what their wallet has available
  // at commit (ledger/debt-settlement.ts), so debt is only what the wallet cannot cover.
  const clawback = (userId: string | null, share: number) => (userId ? clawBack(userId, "COIN", share) : []);
  const refundTxId = newId(now);
  const plan = entryPlan({
    tx: {
      id: refundTxId,
      type: "refund",
      asset: "COIN",
      amount: legs.buyer,
      userId: order.buyerId,
      counterpartyId: order.sellerId,
      metadata: { source: "marketplace", earners: when === "after_release" ? [order.sellerId, ...(order.affiliateId ? [order.affiliateId] : [])] : [], orderId: order.id, kind: when },
    },
    postings: [
      { accountId: userAccountId(order.buyerId, "COIN"), asset: "COIN", amount: legs.buyer },
      { accountId: ESCROW, asset: "COIN", amount: -legs.escrow },
      ...clawback(order.sellerId, legs.seller),
      ...clawback(order.affiliateId, legs.affiliate),
      { accountId: systemAccountId("platform_revenue", "COIN"), asset: "COIN", amount: -legs.platform },
      { accountId: systemAccountId("processing_fees", "COIN"), asset: "COIN", amount: -legs.processing },
    ],
    sideAccountId: userAccountId(order.buyerId, "COIN"),
    onceKeys: [`marketplace_refund:${order.id}`],
    audit: { actorId: caller.id, action: "marketplace.refunded", subjectType: "marketplace_order", subjectId: order.id, details: { kind: when, refunded: legs.buyer } },
    now,
  });
  const refunded: MarketplaceOrderRow = { ...order, status: "refunded", refundedAt: now, refundedBy: caller.id, refundKind: when, refundAmount: legs.buyer };
  try {
    await applyPlans(db, [
      {
        plan,
        options: {
          idempotency: record?.(refunded),
          guards: [...callerNotBanned(caller.id), when === "before_release" ? escrowGuard(order.id) : guard("order_not_released", sql`not exists (select 1 from ${marketplaceOrders} where ${marketplaceOrders.id} = ${order.id} and ${marketplaceOrders.status} = 'released')`)],
          alongside: [
            db.update(marketplaceOrders).set({ status: "refunded", refundedAt: now, refundedBy: caller.id, refundKind: when, refundAmount: legs.buyer }).where(eq(marketplaceOrders.id, order.id)),
            // What the release earned them is taken back from the Top Earner count with the coins.
            ...(when === "after_release" ? statStatements(db, config, order.sellerId, { coinsEarned: -legs.seller }, refundTxId, now) : []),
            ...(when === "after_release" && order.affiliateId ? statStatements(db, config, order.affiliateId, { coinsEarned: -legs.affiliate }, refundTxId, now) : []),
          ],
        },
      },
    ]);
    return refunded;
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_applied") throw new ApiError("conflict", "The order was already refunded.");
    throw error;
  }
}

/**
 * The buyer confirms delivery: the escrow (still the buyer's money) is released at once, if the buyer is in
 * good standing. Recorded debt does not stop it: the escrowed coins left the wallet at purchase, and the
 * cron would release them anyway.
 */
export async function confirmOrder(db: Db, config: Config, id: string, caller: { id: string; role: string }, now: number, record?: OrderRecord) {
  const buyerId = caller.id;
  const load = () => findOrder(db, id);
  // An order's terms never change; only its status does, and the release's batch is guarded by it. Remembered
  // terms (placed in this isolate) save the read; any refusal is decided on a fresh one.
  for (let fresh = false; ; fresh = true) {
    const { value: known, remembered } = await orderTerms.get(id, load, fresh);
    if (remembered && (known?.buyerId !== buyerId || known.status !== "escrow")) continue;
    // To anyone but its parties (and admins, who see every order) the order does not exist; the others are told
    // only the buyer confirms.
    const order = visible(known, caller);
    if (order.buyerId !== buyerId) throw new ApiError("forbidden", "Only the order's buyer confirms delivery.");
    if (order.status !== "escrow") throw new ApiError("conflict", `The order is ${order.status}.`);
    try {
      const released = await releaseOrder(db, config, order, buyerId, now, { record, callerGuards: callerInGoodStanding(buyerId) });
      orderTerms.forget(id);
      return released;
    } catch (error) {
      if (!(remembered && error instanceof GuardError && error.guard === "order_not_in_escrow")) throw error;
    }
  }
}

/** A chunk of due orders, each released in its own batch (one already decided is skipped). */
export type EscrowReleaseMessage = { kind: "escrow_release"; cutoff: number; orderIds: string[] };

export const escrowReleaseSource: FanoutSource<EscrowReleaseMessage> = {
  chunk: () => 50,
  page: async (db, cutoff, after, limit) =>
    (
      await db
        .select({ id: marketplaceOrders.id })
        .from(marketplaceOrders)
        .where(and(eq(marketplaceOrders.status, "escrow"), lte(marketplaceOrders.releaseDueAt, Number(cutoff)), gt(marketplaceOrders.id, after)))
        .orderBy(asc(marketplaceOrders.id))
        .limit(limit)
    ).map((r) => r.id),
  message: (cutoff, orderIds) => ({ kind: "escrow_release", cutoff: Number(cutoff), orderIds }),
  sent: async () => {},
};

/**
 * A chunk of due orders, each released in its own batch: one confirmed or refunded meanwhile is skipped;
 * one whose seller is banned stays in escrow, with one alert per order for an admin to refund it (a banned
 * affiliate's share goes to the seller, see releaseOrder); one that fails otherwise does not hold up the others (the message is retried after).
 */
export async function handleEscrowRelease(db: Db, config: Config, message: EscrowReleaseMessage, now: number): Promise<number> {
  let released = 0;
  const outcomes = await eachApart(message.orderIds, (id) => id, async (id) => {
    const order = await findOrder(db, id);
    if (!order || order.status !== "escrow" || order.releaseDueAt > message.cutoff) return;
    try {
      await releaseOrder(db, config, order, "system:escrow-release", now);
      released++;
    } catch (error) {
      if (error instanceof GuardError && error.guard === "order_payee_banned") {
        const alert = { userId: order.sellerId, alertType: "escrow_payee_banned", severity: "high" as const, details: { orderId: order.id, sellerId: order.sellerId, affiliateId: order.affiliateId, amount: order.amount } };
        await raiseAlert(db, { ...alert, dedupeKey: await dedupeKey("escrow_payee_banned", order.id) });
      } else if (!(error instanceof GuardError && error.guard === "order_not_in_escrow") && !(error instanceof ApiError && error.code === "already_applied")) throw error;
    }
  });
  outcomes.raise("escrow release");
  return released;
}

/** One referral code per user: the caller's, created on first request. */
export async function referralCodeFor(db: Db, userId: string, now: number) {
  const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  for (let attempt = 0; attempt < 5; attempt++) {
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    const code = [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
    const [inserted] = (await applyStatements(db, [db.insert(referralCodes).values({ code, userId, createdAt: now }).onConflictDoNothing().returning()])) as [unknown[]];
    const mine = await db.query.referralCodes.findFirst({ where: eq(referralCodes.userId, userId) });
    if (mine) return { code: mine.code, created: inserted.length > 0 };
  }
  throw new Error("could not allocate a referral code");
}

export async function submitBusinessVerification(db: Db, userId: string, input: { businessName: string; licenseNumber: string; taxId: string }, now: number) {
  const [rows] = (await applyStatements(db, [
    db
      .insert(businessVerifications)
      .values({ userId, ...input, status: "pending", submittedAt: now })
      // Only a rejected submission is replaced: a pending one is what an admin may be reviewing (they approve what they saw).
      .onConflictDoUpdate({ target: businessVerifications.userId, set: { ...input, status: "pending", submittedAt: now, reviewedBy: null, reviewedAt: null, note: null }, setWhere: eq(businessVerifications.status, "rejected") })
      .returning(),
    insertWhere(
      db,
      auditLog,
      { actorId: userId, action: "business_verification.submitted", subjectType: "user", subjectId: userId, details: { businessName: input.businessName }, createdAt: now },
      sql`where exists (select 1 from ${businessVerifications} where ${businessVerifications.userId} = ${userId} and ${businessVerifications.status} = 'pending' and ${businessVerifications.submittedAt} = ${now})`,
    ),
  ])) as [(typeof businessVerifications.$inferSelect)[]];
  if (!rows[0]) {
    const current = await db.query.businessVerifications.findFirst({ where: eq(businessVerifications.userId, userId) });
    throw new ApiError("conflict", current?.status === "pending" ? "Your submission is being reviewed; it can be changed once it is decided." : "Your business is already verified.");
  }
  return verificationView(rows[0]);
}

export const verificationView = (v: typeof businessVerifications.$inferSelect) => ({
  userId: v.userId,
  businessName: v.businessName,
  licenseNumber: v.licenseNumber,
  taxId: v.taxId,
  status: v.status,
  submittedAt: iso(v.submittedAt)!,
  reviewedBy: v.reviewedBy,
  reviewedAt: iso(v.reviewedAt),
  note: v.note,
});

export async function reviewBusinessVerification(db: Db, adminId: string, userId: string, decision: "verified" | "rejected", note: string | undefined, now: number, submittedAt?: number) {
  notAboutThemselves(adminId, userId, "review a business verification");
  // The submission the admin saw, when they name it: one sent since is not decided on that view.
  const seen =
    submittedAt === undefined
      ? []
      : [checkGuards(db, [guard("verification_replaced", sql`exists (select 1 from ${businessVerifications} where ${businessVerifications.userId} = ${userId} and ${businessVerifications.status} = 'pending' and ${businessVerifications.submittedAt} <> ${submittedAt})`)])];
  const [rows] = (await applyStatements(db, [
    ...seen,
    db
      .update(businessVerifications)
      .set({ status: decision, reviewedBy: adminId, reviewedAt: now, note: note ?? null })
      .where(and(eq(businessVerifications.userId, userId), eq(businessVerifications.status, "pending")))
      .returning(),
    insertWhere(
      db,
      auditLog,
      { actorId: adminId, action: `business_verification.${decision}`, subjectType: "user", subjectId: userId, details: { note: note ?? null }, createdAt: now },
      sql`where exists (select 1 from ${businessVerifications} where ${businessVerifications.userId} = ${userId} and ${businessVerifications.reviewedBy} = ${adminId} and ${businessVerifications.reviewedAt} = ${now})`,
    ),
  ]).then((results) => results.slice(seen.length))) as [(typeof businessVerifications.$inferSelect)[]];
  if (!rows[0]) throw new ApiError("not_found", "No pending business verification for that user.");
  return verificationView(rows[0]);
}

/** A page of business verifications, oldest submission first (a review queue), after the position `after` (submittedAt and user id). */
export async function listBusinessVerifications(db: Db, status: "pending" | "verified" | "rejected", limit: number, after?: { submittedAt: number; userId: string }) {
  const rows = await db
    .select()
    .from(businessVerifications)
    .where(and(eq(businessVerifications.status, status), after ? sql`(${businessVerifications.submittedAt}, ${businessVerifications.userId}) > (${after.submittedAt}, ${after.userId})` : undefined))
    .orderBy(asc(businessVerifications.submittedAt), asc(businessVerifications.userId))
    .limit(limit + 1);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(verificationView), next: rows.length > limit && last ? `${last.submittedAt}:${last.userId}` : null };
}

