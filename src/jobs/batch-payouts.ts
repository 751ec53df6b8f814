import { and, eq, inArray, sql } from "drizzle-orm";
import { selectInChunks } from "../db/in-chunks";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { campaigns, payouts, type CampaignRow } from "../db/schema";
import { activityPayout } from "../activity/bot-rules";
import { campaignAccountId, systemAccountId, userAccountId } from "../ledger/accounts";
import { applyPlan, applyPlans } from "../ledger/executor";
import { entryPlan } from "../ledger/plan";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { bpsOf } from "../lib/money";

export interface PayoutLine {
  day: string;
  userId: string;
  campaign: CampaignRow;
  units: number;
}

/** The rupiah a line pays and the creator payout fee charged on top to the campaign's budget (SPEC §7). */
export function payoutAmounts(line: PayoutLine, config: Config) {
  const amountIdr = activityPayout(line.units, line.campaign.rateFeeIdr ?? config.RATE_FEE_IDR);
  return { amountIdr, feeIdr: bpsOf(amountIdr, config.CREATOR_PAYOUT_FEE_BPS) };
}

const payoutId = (line: PayoutLine) => `po_${line.day}_${line.userId}_${line.campaign.id}`;

/** Records a level-B line as held: no money moves until an admin releases it. */
export function holdPayoutStatement(db: Db, line: PayoutLine, config: Config, now: number) {
  const { amountIdr, feeIdr } = payoutAmounts(line, config);
  return db
    .insert(payouts)
    .values({ id: payoutId(line), day: line.day, userId: line.userId, campaignId: line.campaign.id, advertiserId: line.campaign.ownerId, units: line.units, amountIdr, feeIdr, status: "held", createdAt: now })
    .onConflictDoNothing();
}

/** The ledger plan and payout row of one paid line (once-key `payout:<day>:<user>:<campaign>`). */
function payoutPlan(db: Db, line: PayoutLine, config: Config, now: number, actorId: string) {
  const { amountIdr, feeIdr } = payoutAmounts(line, config);
  const txId = newId(now);
  const decidedBy = actorId === BATCH_ACTOR ? null : actorId;
  const base = { id: payoutId(line), day: line.day, userId: line.userId, campaignId: line.campaign.id, advertiserId: line.campaign.ownerId, units: line.units, amountIdr, feeIdr, createdAt: now };
  const plan = entryPlan({
    tx: { id: txId, type: "payout", asset: "IDR", amount: amountIdr, userId: line.userId, metadata: { day: line.day, campaignId: line.campaign.id, units: line.units, feeIdr } },
    postings: [
      { accountId: campaignAccountId(line.campaign.id), asset: "IDR", amount: -(amountIdr + feeIdr) },
      { accountId: userAccountId(line.userId, "IDR"), asset: "IDR", amount: amountIdr },
      { accountId: systemAccountId("platform_revenue", "IDR"), asset: "IDR", amount: feeIdr },
    ],
    sideAccountId: userAccountId(line.userId, "IDR"),
    onceKeys: [`payout:${line.day}:${line.userId}:${line.campaign.id}`],
    audit: { actorId, action: "payout.paid", subjectType: "user", subjectId: line.userId, details: { day: line.day, campaignId: line.campaign.id, amountIdr, feeIdr } },
    now,
  });
  const row = db
    .insert(payouts)
    .values({ ...base, status: "paid", transactionId: txId, decidedBy, decidedAt: now })
    .onConflictDoUpdate({
      target: [payouts.day, payouts.userId, payouts.campaignId],
      set: { status: "paid", transactionId: txId, decidedBy, decidedAt: now },
      setWhere: sql`${payouts.status} in ('insufficient_budget', 'held')`,
    });
  return { plan, options: { alongside: [row] }, base };
}

const BATCH_ACTOR = "system:daily-batch";

/**
 * Pays one line: the campaign's budget gives payout + fee, the user's IDR wallet gets the payout and
 * platform revenue the fee, in one batch under its once-key — a second run, a resumed run or an admin
 * release can never pay it twice. A budget that cannot cover payout + fee moves nothing and records
 * `insufficient_budget` (a later run may pay it once the budget is topped up).
 */
export async function payLine(db: Db, line: PayoutLine, config: Config, now: number, actorId = BATCH_ACTOR): Promise<"paid" | "insufficient_budget" | "already_paid" | "nothing"> {
  if (payoutAmounts(line, config).amountIdr === 0) return "nothing";
  const { plan, options, base } = payoutPlan(db, line, config, now, actorId);
  try {
    await applyPlan(db, plan, options);
    return "paid";
  } catch (error) {
    if (error instanceof ApiError && error.code === "already_applied") return "already_paid";
    if (!(error instanceof ApiError && error.code === "insufficient_funds")) throw error;
    await db.insert(payouts).values({ ...base, status: "insufficient_budget" }).onConflictDoNothing();
    return "insufficient_budget";
  }
}

/** Lines committed together: one D1 commit per group instead of one per payout. */
const GROUP = 25;

/**
 * Pays many lines: each group of lines is tried as ONE batch; if that batch is refused (a budget ran
 * out, or a rerun meets lines already paid), the group falls back to paying line by line, which sorts
 * out each line's own outcome. Either way every line is paid at most once.
 */
export async function payLines(db: Db, lines: PayoutLine[], config: Config, now: number): Promise<void> {
  const payable = lines.filter((l) => payoutAmounts(l, config).amountIdr > 0);
  for (let i = 0; i < payable.length; i += GROUP) {
    const group = payable.slice(i, i + GROUP);
    try {
      await applyPlans(db, group.map((l) => payoutPlan(db, l, config, now, BATCH_ACTOR)));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      for (const line of group) await payLine(db, line, config, now);
    }
  }
}

export async function campaignsById(db: Db, ids: string[]): Promise<Map<string, CampaignRow>> {
  const rows = await selectInChunks(ids, (chunk) => db.select().from(campaigns).where(inArray(campaigns.id, chunk)));
  return new Map(rows.map((r) => [r.id, r]));
}

/** Admin decision on a held payout: release pays it (once), reject closes it. */
export async function decideHeldPayout(db: Db, config: Config, id: string, decision: "release" | "reject", adminId: string) {
  const row = await db.query.payouts.findFirst({ where: eq(payouts.id, id) });
  if (!row) throw new ApiError("not_found", "No such payout.");
  if (row.status !== "held") throw new ApiError("conflict", `The payout is ${row.status}, not held.`);
  const now = Date.now();
  if (decision === "reject") {
    const [updated] = await db.update(payouts).set({ status: "rejected", decidedBy: adminId, decidedAt: now }).where(and(eq(payouts.id, id), eq(payouts.status, "held"))).returning();
    if (!updated) throw new ApiError("conflict", "The payout was decided concurrently.");
    return updated;
  }
  const campaign = (await campaignsById(db, [row.campaignId])).get(row.campaignId);
  if (!campaign) throw new ApiError("not_found", "The payout's campaign no longer exists.");
  const result = await payLine(db, { day: row.day, userId: row.userId, campaign, units: row.units }, config, now, adminId);
  if (result === "insufficient_budget") throw new ApiError("insufficient_funds", "The campaign's budget cannot cover this payout and its fee; it stays held.");
  if (result === "already_paid") throw new ApiError("conflict", "The payout was released concurrently.");
  return (await db.query.payouts.findFirst({ where: eq(payouts.id, id) }))!;
}
