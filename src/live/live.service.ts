import { and, asc, desc, eq, gt, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { auditLog, boostPurchases, gifts, liveGifts, liveStreams, transactions, users, type GiftRow } from "../db/schema";
import { ruleInBatch } from "../fraud/engine";
import { systemAccountId, userAccountId } from "../ledger/accounts";
import { applyStatements, type IdempotencyWrite, type Statement } from "../ledger/executor";
import { guard, GuardError } from "../ledger/guards";
import { applySpending, spendingPlan } from "../ledger/spending";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { TermsCache } from "../lib/terms-cache";
import { recipientActive } from "../users/users.guards";
import type { TransactionView } from "../wallet/wallet.view";
import { announce } from "../realtime/outbox";
import { statStatements } from "./badges";
import { boostPrice, boostTerms, giftSplit, type BoostLevel } from "./live-rules";

export const giftView = (g: GiftRow) => ({ id: g.id, name: g.name, coins: g.coins, animation: g.animation, active: g.active, sortOrder: g.sortOrder });

export async function giftCatalogue(db: Db, opts: { includeRetired: boolean }) {
  const rows = await db.select().from(gifts).where(opts.includeRetired ? undefined : eq(gifts.active, true)).orderBy(asc(gifts.sortOrder), asc(gifts.id));
  return rows.map(giftView);
}

export async function saveGift(db: Db, adminId: string, id: string, fields: { name: string; coins: number; animation: string; active?: boolean; sortOrder?: number }, mode: "create" | "update", now: number) {
  const values = { name: fields.name, coins: fields.coins, animation: fields.animation, active: fields.active ?? true, sortOrder: fields.sortOrder ?? 0 };
  const write =
    mode === "create"
      ? db.insert(gifts).values({ id, ...values, createdAt: now, updatedAt: now }).onConflictDoNothing().returning()
      : db.update(gifts).set({ ...values, updatedAt: now }).where(eq(gifts.id, id)).returning();
  // Audited only when the write happened (a duplicate create or an unknown id writes nothing).
  const audit = insertWhere(
    db,
    auditLog,
    { actorId: adminId, action: `gift.${mode}d`, subjectType: "gift", subjectId: id, details: values, createdAt: now },
    sql`where exists (select 1 from ${gifts} where ${gifts.id} = ${id} and ${gifts.updatedAt} = ${now})`,
  );
  const [rows] = (await applyStatements(db, [write, audit])) as [GiftRow[]];
  const row = rows[0];
  if (!row) throw mode === "create" ? new ApiError("conflict", "A gift with that id exists.") : new ApiError("not_found", "No gift with that id.");
  return giftView(row);
}

export interface GiftBody {
  streamId: string;
  gift: ReturnType<typeof giftView>;
  quantity: number;
  streamerId: string;
  transaction: TransactionView;
}

/**
 * SPEC §10: the sender pays coins × quantity, split streamer / platform / processing, in ONE batch:
 * the sender's standing and spending limits, the streamer existing and not banned, the stream bound to
 * its streamer (the first gift binds it), the streamer's counters and badges, and the
 * large_gift_to_new_account rule decided on the streamer's age at commit time.
 */
export async function sendGift(
  db: Db,
  config: Config,
  senderId: string,
  streamId: string,
  input: { giftId: string; streamerId: string; quantity: number },
  ctx: { deviceFingerprint: string | null; record: (o: { status: 201; body: GiftBody }) => IdempotencyWrite | undefined; alongside?: Statement[] },
): Promise<{ status: 201; body: GiftBody }> {
  if (input.streamerId === senderId) throw new ApiError("self_gift", "You cannot send a gift to yourself.");
  // The gift's price as remembered (one round trip in all); the batch's gift_changed guard refuses stale terms, and they are read again.
  const load = () => db.query.gifts.findFirst({ where: and(eq(gifts.id, input.giftId), eq(gifts.active, true)) });
  const { value: known, remembered } = await giftTerms.get(input.giftId, load);
  try {
    if (known) return await giftAt(db, config, senderId, streamId, input, known, ctx);
  } catch (error) {
    // A refusal of remembered terms (a per-transaction limit at a stale price, gift_changed) is decided again on
    // fresh ones; a transport error is not a refusal (the batch may have committed: never sent again here).
    if (!(remembered && error instanceof ApiError && error.status < 500)) throw error;
  }
  const gift = remembered ? (await giftTerms.get(input.giftId, load, true)).value : undefined;
  if (!gift) throw new ApiError("not_found", "No gift with that id in the catalogue.");
  return giftAt(db, config, senderId, streamId, input, gift, ctx);
}

/** Catalogue entries as last read in this isolate (lib/terms-cache.ts). */
const giftTerms = new TermsCache<GiftRow>(200);

async function giftAt(db: Db, config: Config, senderId: string, streamId: string, input: Parameters<typeof sendGift>[4], gift: GiftRow, ctx: Parameters<typeof sendGift>[5]): Promise<{ status: 201; body: GiftBody }> {
  const now = Date.now();
  const amount = gift.coins * input.quantity;
  const split = giftSplit(amount, config);
  const txId = newId(now);
  const plan = spendingPlan(
    config,
    {
      txId,
      buyerId: senderId,
      type: "gift",
      amount,
      counterpartyId: input.streamerId,
      metadata: { source: "gifts", earners: [input.streamerId], streamId, giftId: gift.id, quantity: input.quantity, streamerShare: split.streamer, platformShare: split.platform, processingShare: split.processing },
      credits: [
        { accountId: userAccountId(input.streamerId, "COIN"), asset: "COIN", amount: split.streamer },
        { accountId: systemAccountId("platform_revenue", "COIN"), asset: "COIN", amount: split.platform },
        { accountId: systemAccountId("processing_fees", "COIN"), asset: "COIN", amount: split.processing },
      ],
      audit: { action: "live.gift", subjectType: "stream", subjectId: streamId, details: { giftId: gift.id, quantity: input.quantity, amount, streamerId: input.streamerId } },
      deviceFingerprint: ctx.deviceFingerprint,
    },
    now,
  );
  const ageDays = sql`((${now} - (select ${users.createdAt} from ${users} where ${users.id} = ${input.streamerId})) / 86400000.0)`;
  return applySpending(db, plan, {
    buyerId: senderId,
    body: (transaction) => ({ streamId, gift: giftView(gift), quantity: input.quantity, streamerId: input.streamerId, transaction }),
    balancesAt: "$.transaction",
    record: ctx.record,
    before: [db.insert(liveStreams).values({ id: streamId, streamerId: input.streamerId, createdAt: now }).onConflictDoNothing()],
    guards: [
      // The price the sender saw is the price paid: a gift repriced or retired since it was read is refused, not charged anew.
      guard("gift_changed", sql`not exists (select 1 from ${gifts} where ${gifts.id} = ${gift.id} and ${gifts.active} = 1 and ${gifts.coins} = ${gift.coins})`),
      ...recipientActive(input.streamerId),
      guard("stream_streamer_mismatch", sql`exists (select 1 from ${liveStreams} where ${liveStreams.id} = ${streamId} and ${liveStreams.streamerId} != ${input.streamerId})`),
    ],
    alongside: [
      db.insert(liveGifts).values({ transactionId: txId, streamId, senderId, streamerId: input.streamerId, giftId: gift.id, quantity: input.quantity, amount, createdAt: now }),
      ...statStatements(db, config, input.streamerId, { giftsReceived: input.quantity, coinsEarned: split.streamer }, txId, now),
      ...ruleInBatch(db, config, "large_gift_to_new_account", "gift", { userId: senderId, deviceFingerprint: ctx.deviceFingerprint }, { coins: sql`${amount}`, recipientAgeDays: ageDays }, now),
      ...(ctx.alongside ?? []),
    ],
  });
}

/** A stream's top senders and totals, summed from the gifts' transactions. */
export async function leaderboard(db: Db, streamId: string, limit: number) {
  const coins = sql<number>`sum(${transactions.amount})`;
  const [top, [totals]] = await db.batch([
    db
      .select({ userId: liveGifts.senderId, coins, gifts: sql<number>`sum(${liveGifts.quantity})` })
      .from(liveGifts)
      .innerJoin(transactions, eq(transactions.id, liveGifts.transactionId))
      .where(eq(liveGifts.streamId, streamId))
      .groupBy(liveGifts.senderId)
      .orderBy(desc(coins), asc(liveGifts.senderId))
      .limit(limit),
    db
      .select({ coins: sql<number>`coalesce(sum(${transactions.amount}), 0)`, gifts: sql<number>`coalesce(sum(${liveGifts.quantity}), 0)`, senders: sql<number>`count(distinct ${liveGifts.senderId})` })
      .from(liveGifts)
      .innerJoin(transactions, eq(transactions.id, liveGifts.transactionId))
      .where(eq(liveGifts.streamId, streamId)),
  ]);
  return { streamId, totals: totals ?? { coins: 0, gifts: 0, senders: 0 }, top: top.map((r, i) => ({ rank: i + 1, ...r })) };
}

/** Quotes a boost request tries before answering that concurrent boosts kept changing its price. */
const BOOST_QUOTES = 4;

/**
 * Boosts of a level in force (running, or queued behind one on the same stream): what demand pricing counts.
 * A banned streamer's stream is not featured, so its boosts do not count.
 */
const activeBoostsSql = (level: BoostLevel, now: number) =>
  sql<number>`(select count(*) from ${boostPurchases} where ${boostPurchases.level} = ${level} and ${boostPurchases.expiresAt} > ${now}
    and not exists (select 1 from live_streams ls join users u on u.id = ls.streamer_id where ls.id = boost_purchases.stream_id and u.status = 'banned'))`;

/** When the stream's last boost of that level ends (0: never boosted at that level). */
const lastEndSql = (streamId: string, level: BoostLevel) =>
  sql<number>`coalesce((select max(${boostPurchases.expiresAt}) from ${boostPurchases} where ${boostPurchases.streamId} = ${streamId} and ${boostPurchases.level} = ${level}), 0)`;

export async function boostQuote(db: Db, config: Config, level: BoostLevel, now: number) {
  const [row] = await db.select({ n: activeBoostsSql(level, now) }).from(sql`(select 1)`);
  return boostPrice(level, row?.n ?? 0, config);
}

export interface BoostBody {
  streamId: string;
  level: BoostLevel;
  price: number;
  multiplierBps: number;
  featuredFrom: string;
  featuredUntil: string;
  homepage: boolean;
  transaction: TransactionView;
}

/** A level's demand as last read (or bought) in this isolate: boosts in force, and when the first of them ends (the count holds until then, unless others buy). */
interface Demand {
  active: number;
  until: number;
}
const boostDemand = new TermsCache<Demand>(2);
/**
 * When a stream's boosts of a level end, as last read or bought in this isolate. A stream not remembered is
 * taken as not boosted at that level (its boost starts now); the batch's guard refuses that when it is wrong.
 */
const boostEnds = new TermsCache<number>(1000);
const endsKey = (level: BoostLevel, streamId: string) => `${level}:${streamId}`;

/** The boosts of a level in force now, when the first of them ends, and when the stream's last one ends: one query. */
async function readDemand(db: Db, streamId: string, level: BoostLevel, now: number) {
  const firstEnd = sql<number | null>`(select min(${boostPurchases.expiresAt}) from ${boostPurchases} where ${boostPurchases.level} = ${level} and ${boostPurchases.expiresAt} > ${now})`;
  const [row] = await db.select({ active: activeBoostsSql(level, now), firstEnd, lastEnd: lastEndSql(streamId, level) }).from(sql`(select 1)`);
  const demand = { active: row?.active ?? 0, until: row?.firstEnd ?? Number.MAX_SAFE_INTEGER };
  boostDemand.set(level, demand);
  boostEnds.set(endsKey(level, streamId), row?.lastEnd ?? 0);
  return { ...demand, lastEnd: row?.lastEnd ?? 0 };
}

/**
 * SPEC §10: a boost is paid to platform boost revenue at the price quoted from current demand. The demand
 * is remembered per isolate (lib/terms-cache.ts: one round trip in steady state) or read in one query; the
 * batch is guarded by it and by where the boost starts (if a boost of the level started or ended in
 * between, or the stream was boosted meanwhile, it is quoted again, and refused as 409 price_changed above
 * the caller's `maxPrice`). A boost on a stream already boosted at that level starts when the last one
 * ends. Boosts of a level bought at the same moment each change the others' price: after a few fresh quotes
 * lost that way (with a random pause between them) the answer is 409 `conflict`, transient (an
 * Idempotency-Key does not remember it): the client sends again.
 */
export async function boostStream(
  db: Db,
  config: Config,
  buyerId: string,
  streamId: string,
  input: { level: BoostLevel; maxPrice?: number },
  ctx: { deviceFingerprint: string | null; record: (o: { status: 201; body: BoostBody }) => IdempotencyWrite | undefined; alongside?: Statement[] },
): Promise<{ status: 201; body: BoostBody }> {
  const ends = endsKey(input.level, streamId);
  for (let attempt = 0, fresh = false; ; ) {
    const now = Date.now();
    const known = fresh ? undefined : boostDemand.peek(input.level);
    const remembered = known !== undefined && known.until > now;
    const state = remembered ? { ...known, lastEnd: boostEnds.peek(ends) ?? 0 } : await readDemand(db, streamId, input.level, now);
    const quote = boostPrice(input.level, state.active, config);
    try {
      if (input.maxPrice !== undefined && quote.price > input.maxPrice) {
        throw new ApiError("price_changed", `The ${input.level} boost costs ${quote.price} coins now, above your maxPrice of ${input.maxPrice}.`);
      }
      const result = await boostAt(db, config, buyerId, streamId, quote, state.lastEnd, ctx, now);
      const expiresAt = Date.parse(result.body.featuredUntil);
      boostDemand.set(input.level, { active: state.active + 1, until: Math.min(state.until, expiresAt) });
      boostEnds.set(ends, expiresAt);
      return result;
    } catch (error) {
      // A refusal of remembered demand (moved, a per-transaction limit or maxPrice at a stale price) is decided
      // again on a fresh read; a transport error is not a refusal (the batch may have committed: never sent again here).
      if (remembered && error instanceof ApiError && error.status < 500) {
        fresh = true;
        continue;
      }
      if (!(error instanceof GuardError && error.guard === "boost_demand_changed")) throw error;
      if (++attempt >= BOOST_QUOTES) {
        throw new ApiError("conflict", `Other ${input.level} boosts were bought at the same moment and kept changing the price; send the request again.`, { transient: true });
      }
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * attempt));
    }
  }
}

async function boostAt(db: Db, config: Config, buyerId: string, streamId: string, quote: ReturnType<typeof boostPrice>, lastEnd: number, ctx: Parameters<typeof boostStream>[5], now: number) {
  const terms = boostTerms(quote.level, config);
  const txId = newId(now);
  const startsAt = Math.max(now, lastEnd);
  const expiresAt = startsAt + terms.durationMs;
  const plan = spendingPlan(
    config,
    {
      txId,
      buyerId,
      type: "boost",
      amount: quote.price,
      counterpartyId: null,
      metadata: { streamId, level: quote.level, baseCoins: quote.baseCoins, multiplierBps: quote.multiplierBps, activeBoosts: quote.activeBoosts, startsAt, expiresAt },
      credits: [{ accountId: systemAccountId("boost_revenue", "COIN"), asset: "COIN", amount: quote.price }],
      audit: { action: "live.boost", subjectType: "stream", subjectId: streamId, details: { level: quote.level, price: quote.price } },
      deviceFingerprint: ctx.deviceFingerprint,
    },
    now,
  );
  return applySpending(db, plan, {
    buyerId,
    body: (transaction) => ({
      streamId,
      level: quote.level,
      price: quote.price,
      multiplierBps: quote.multiplierBps,
      featuredFrom: new Date(startsAt).toISOString(),
      featuredUntil: new Date(expiresAt).toISOString(),
      homepage: terms.homepage,
      transaction,
    }),
    balancesAt: "$.transaction",
    record: ctx.record,
    guards: [
      // A banned streamer's stream is not featured, so it is not sold a place there either (first: it does not depend on the quote).
      guard("stream_streamer_banned", sql`exists (select 1 from ${liveStreams} join ${users} on ${users.id} = ${liveStreams.streamerId} where ${liveStreams.id} = ${streamId} and ${users.status} = 'banned')`),
      guard("boost_demand_changed", sql`${activeBoostsSql(quote.level, now)} != ${quote.activeBoosts} or max(${now}, ${lastEndSql(streamId, quote.level)}) != ${startsAt}`),
    ],
    alongside: [
      // Everyone in the lobby hears of it once the boost is bought.
      announce(db.insert(boostPurchases).values({ transactionId: txId, streamId, buyerId, level: quote.level, price: quote.price, multiplierBps: quote.multiplierBps, startsAt, expiresAt, createdAt: now }), () => [
        { to: { room: "lobby" }, type: "stream-boosted", at: now, data: { streamId, boostLevel: quote.level, startsAt: new Date(startsAt).toISOString(), expiresAt: new Date(expiresAt).toISOString() } },
      ]),
      ...statStatements(db, config, buyerId, { boostsBought: 1 }, txId, now),
      ...(ctx.alongside ?? []),
    ],
  });
}

/** Streams featured now (expired boosts, and streams of banned streamers, drop out by the query itself): homepage ones first. */
export async function featuredStreams(db: Db, now: number, limit: number) {
  const until = sql<number>`max(${boostPurchases.expiresAt})`;
  const homepage = sql<number>`max(${boostPurchases.level} = 'premium' and ${boostPurchases.startsAt} <= ${now})`;
  const rows = await db
    .select({ streamId: boostPurchases.streamId, until, homepage, streamerId: liveStreams.streamerId })
    .from(boostPurchases)
    .leftJoin(liveStreams, eq(liveStreams.id, boostPurchases.streamId))
    .leftJoin(users, eq(users.id, liveStreams.streamerId))
    // A banned streamer's stream drops out while the ban lasts.
    .where(and(gt(boostPurchases.expiresAt, now), sql`coalesce(${users.status}, 'active') != 'banned'`))
    .groupBy(boostPurchases.streamId)
    .having(sql`min(${boostPurchases.startsAt}) <= ${now}`)
    .orderBy(desc(homepage), desc(until), asc(boostPurchases.streamId))
    .limit(limit);
  return rows.map((r) => ({ streamId: r.streamId, streamerId: r.streamerId ?? null, homepage: r.homepage === 1, featuredUntil: new Date(r.until).toISOString() }));
}
