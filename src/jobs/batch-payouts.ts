import { and, eq, inArray, sql } from "drizzle-orm";
import { selectInChunks } from "../db/in-chunks";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { auditLog, campaigns, payouts, users, type CampaignRow, type PayoutRow } from "../db/schema";
import { activityPayout } from "../activity/bot-rules";
import { capDailyPayout } from "../activity/signals";
import { campaignAccountId, systemAccountId, userAccountId } from "../ledger/accounts";
import { applyPlan, applyPlans, applyStatements, idempotencyRecord, type IdempotencyWrite } from "../ledger/executor";
import { checkGuards, guard, GuardError } from "../ledger/guards";
import { payeeNotBanned } from "../users/users.guards";
import { entryPlan } from "../ledger/plan";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { bpsOf } from "../lib/money";
import { notAboutThemselves } from "../lib/auth";

export interface PayoutLine {
  day: string;
  userId: string;
  campaign: CampaignRow;
  units: number;
}

/** The rupiah a line earned before the daily cap: units × the campaign's rate fee, at most RATE_FEE_MAX_IDR per unit. */
export function earnedIdr(line: PayoutLine, config: Config): number {
  return activityPayout(line.units, Math.min(line.campaign.rateFeeIdr ?? config.RATE_FEE_IDR, config.RATE_FEE_MAX_IDR));
}

/** A payout's terms are fixed when its row is first written; a release or a rerun pays exactly these. */
export type PayoutTerms = Pick<PayoutRow, "id" | "day" | "userId" | "campaignId" | "advertiserId" | "units" | "amountIdr" | "feeIdr" | "cappedIdr">;

/** A line as earned, before the cap decides what it pays and the fee is charged on that. */
export type EarnedLine = Omit<PayoutTerms, "feeIdr" | "cappedIdr">;

export function earnedLine(line: PayoutLine, config: Config): EarnedLine {
  const id = `po_${line.day}_${line.userId}_${line.campaign.id}`;
  return { id, day: line.day, userId: line.userId, campaignId: line.campaign.id, advertiserId: line.campaign.ownerId, units: line.units, amountIdr: earnedIdr(line, config) };
}

export const termsOfRow = (row: PayoutRow): PayoutTerms => ({
  id: row.id,
  day: row.day,
  userId: row.userId,
  campaignId: row.campaignId,
  advertiserId: row.advertiserId,
  units: row.units,
  amountIdr: row.amountIdr,
  feeIdr: row.feeIdr,
  cappedIdr: row.cappedIdr,
});

/**
 * One user's earned lines of a day under PAYOUT_DAILY_CAP_IDR (`capDailyPayout`: the cap shared in
 * proportion to each campaign's line), as payout terms. The creator payout fee (SPEC §7) is charged on
 * top, on what a line pays — so a day of any volume is priced from at most the cap. A capped line's units
 * (what usage billing counts) shrink in the same proportion, rounded down: no advertiser pays for, or is
 * billed for, activity the platform did not pay for. The withheld rupiah are recorded in cappedIdr.
 */
export function capLines(lines: EarnedLine[], capIdr: number, config: Config): PayoutTerms[] {
  return capDailyPayout(lines, capIdr).map(({ paidIdr, cappedIdr, ...line }) => ({
    ...line,
    amountIdr: paidIdr,
    feeIdr: bpsOf(paidIdr, config.CREATOR_PAYOUT_FEE_BPS),
    cappedIdr,
    units: cappedIdr === 0 ? line.units : line.amountIdr === 0 ? 0 : Math.floor((line.units * paidIdr) / line.amountIdr),
  }));
}

/**
 * The terms a run acts on for one user's day. A line an earlier run decided keeps its terms: it is left
 * out, except a line short of budget, which is tried again at the terms it was recorded with. Every
 * decided line's amount counts against the cap, and the undecided lines share only what is left of it.
 * So a run resumed after a partial one (a user's lines can straddle two commits) never pays more than
 * the cap in total, even if a rate changed in between; it may split a rupiah of rounding differently.
 */
export function termsToDecide(fresh: EarnedLine[], decided: PayoutRow[], capIdr: number, config: Config): PayoutTerms[] {
  const ids = new Set(decided.map((row) => row.id));
  // A suspended campaign's line never pays: it holds no part of the cap.
  const left = Math.max(0, capIdr - decided.reduce((sum, row) => sum + (row.status === "campaign_suspended" ? 0 : row.amountIdr), 0));
  return [
    ...decided.filter((row) => row.status === "insufficient_budget").map(termsOfRow),
    ...capLines(
      fresh.filter((line) => !ids.has(line.id)),
      left,
      config,
    ),
  ];
}

/**
 * Records a line of a campaign whose owner is frozen or banned when the run judges it: it pays nothing
 * (amount 0) and takes no share of the user's cap. (An owner suspended between judging and paying is
 * refused by the payment's own guard and recorded the same way, with the share it was given.)
 */
export function suspendedLineStatement(db: Db, line: EarnedLine, now: number) {
  return recordStatement(db, { ...line, amountIdr: 0, feeIdr: 0, cappedIdr: 0 }, "campaign_suspended", now);
}

/** An owner in one of these states suspends their campaigns: they pay nothing (read when judging, guarded when paying). */
const SUSPENDING: ("frozen" | "banned")[] = ["frozen", "banned"];

/** Owners among `ownerIds` who are frozen or banned: their campaigns pay nothing. */
export async function suspendedOwners(db: Db, ownerIds: string[]): Promise<Set<string>> {
  const rows = await selectInChunks(ownerIds, (chunk) => db.select({ id: users.id }).from(users).where(and(inArray(users.id, chunk), inArray(users.status, SUSPENDING))));
  return new Set(rows.map((r) => r.id));
}

/** Records a line the daily cap withheld entirely: nothing moves, nothing is paid later. */
export function cappedPayoutStatement(db: Db, terms: PayoutTerms, now: number) {
  return db.insert(payouts).values({ ...terms, status: "capped", createdAt: now }).onConflictDoNothing();
}

/** Records a level-B line as held: no money moves until an admin releases it. */
export function holdPayoutStatement(db: Db, terms: PayoutTerms, now: number) {
  return db.insert(payouts).values({ ...terms, status: "held", createdAt: now }).onConflictDoNothing();
}

/** Records a line that moved nothing (insufficient budget, suspended campaign); a row already there wins. */
const recordStatement = (db: Db, terms: PayoutTerms, status: "insufficient_budget" | "campaign_suspended", now: number) =>
  db.insert(payouts).values({ ...terms, status, createdAt: now }).onConflictDoNothing();

const BATCH_ACTOR = "system:daily-batch";

/**
 * Which payouts a movement may pay: the batch pays a line that is new or was short of budget; a release
 * pays a held one. Anything else (paid, held, rejected, suspended) aborts the batch, so a rejected payout
 * is never paid, whatever a rerun's classification says, and release and reject race to one winner.
 */
type Expect = "new" | "held";

/** The ledger plan, guards and row of one paid line (once-key `payout:<day>:<user>:<campaign>`). */
function payoutPlan(db: Db, terms: PayoutTerms, expect: Expect, now: number, actorId: string, record?: PayoutRecord) {
  const txId = newId(now);
  const decidedBy = actorId === BATCH_ACTOR ? null : actorId;
  const { amountIdr, feeIdr } = terms;
  const plan = entryPlan({
    tx: { id: txId, type: "payout", asset: "IDR", amount: amountIdr, userId: terms.userId, metadata: { source: "payouts", earners: [terms.userId], day: terms.day, campaignId: terms.campaignId, units: terms.units, feeIdr } },
    postings: [
      { accountId: campaignAccountId(terms.campaignId), asset: "IDR", amount: -(amountIdr + feeIdr) },
      { accountId: userAccountId(terms.userId, "IDR"), asset: "IDR", amount: amountIdr },
      { accountId: systemAccountId("platform_revenue", "IDR"), asset: "IDR", amount: feeIdr },
    ],
    sideAccountId: userAccountId(terms.userId, "IDR"),
    onceKeys: [`payout:${terms.day}:${terms.userId}:${terms.campaignId}`],
    audit: { actorId, action: "payout.paid", subjectType: "user", subjectId: terms.userId, details: { day: terms.day, campaignId: terms.campaignId, amountIdr, feeIdr } },
    now,
  });
  const row = (status: string) => sql`exists (select 1 from ${payouts} where ${payouts.id} = ${terms.id} and ${payouts.status} ${sql.raw(status)})`;
  const guards = [
    expect === "held" ? guard("payout_not_held", sql`not ${row("= 'held'")}`) : guard("payout_not_payable", row("!= 'insufficient_budget'")),
    ...payeeNotBanned(terms.userId),
    guard("campaign_suspended", sql`exists (select 1 from ${campaigns} join ${users} on ${users.id} = ${campaigns.ownerId} where ${campaigns.id} = ${terms.campaignId} and ${inArray(users.status, SUSPENDING)})`),
  ];
  const upsert = db
    .insert(payouts)
    .values({ ...terms, status: "paid", transactionId: txId, decidedBy, decidedAt: now, createdAt: now })
    .onConflictDoUpdate({ target: [payouts.day, payouts.userId, payouts.campaignId], set: { status: "paid", transactionId: txId, decidedBy, decidedAt: now } });
  return { plan, options: { guards, alongside: [upsert], idempotency: record?.({ status: "paid", transactionId: txId, decidedBy, decidedAt: now }) } };
}

/** The idempotency record of a payout decision, given what the decision sets on the row (written in its batch). */
export type PayoutRecord = (decided: Pick<PayoutRow, "status" | "transactionId" | "decidedBy" | "decidedAt">) => IdempotencyWrite | undefined;

export type LineResult = "paid" | "insufficient_budget" | "campaign_suspended" | "payee_banned" | "already_decided" | "nothing";

/**
 * Pays one line: the campaign's budget gives payout + fee, the user's IDR wallet gets the payout and
 * platform revenue the fee, in one batch under its once-key and guards — a second run, a resumed run or
 * an admin release can never pay it twice. A budget that cannot cover payout + fee, or a campaign whose
 * owner is frozen or banned, moves nothing and is recorded as such (the batch may retry a short budget).
 */
export async function payLine(db: Db, terms: PayoutTerms, now: number, opts: { expect?: Expect; actorId?: string; record?: PayoutRecord } = {}): Promise<LineResult> {
  if (terms.amountIdr === 0) return "nothing";
  const expect = opts.expect ?? "new";
  const { plan, options } = payoutPlan(db, terms, expect, now, opts.actorId ?? BATCH_ACTOR, opts.record);
  try {
    await applyPlan(db, plan, options);
    return "paid";
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === "already_applied" || (error instanceof GuardError && (error.guard === "payout_not_held" || error.guard === "payout_not_payable"))) return "already_decided";
    const outcome =
      error.code === "insufficient_funds" ? "insufficient_budget" : error.code === "campaign_suspended" ? "campaign_suspended" : error instanceof GuardError && error.guard === "payee_banned" ? "payee_banned" : null;
    if (!outcome) throw error;
    // A held payout stays held (the admin is told); a new line records why nothing moved, and a banned
    // earner's line is held for an admin (rejected, or released if the ban is lifted).
    if (expect === "new") await db.batch([outcome === "payee_banned" ? holdPayoutStatement(db, terms, now) : recordStatement(db, terms, outcome, now)]);
    return outcome;
  }
}

/** Lines committed together: one D1 commit per group instead of one per payout. */
const GROUP = 25;

/**
 * Pays many lines: each group is tried as ONE batch; if that batch is refused (a budget ran out, a
 * campaign is suspended, a rerun meets lines already decided), the group falls back to paying line by
 * line, which sorts out each line's own outcome. Either way every line is paid at most once.
 */
export async function payLines(db: Db, lines: PayoutTerms[], now: number): Promise<void> {
  const payable = lines.filter((l) => l.amountIdr > 0);
  for (let i = 0; i < payable.length; i += GROUP) {
    const group = payable.slice(i, i + GROUP);
    try {
      await applyPlans(db, group.map((l) => payoutPlan(db, l, "new", now, BATCH_ACTOR)));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      for (const line of group) await payLine(db, line, now);
    }
  }
}

export async function campaignsById(db: Db, ids: string[]): Promise<Map<string, CampaignRow>> {
  const rows = await selectInChunks(ids, (chunk) => db.select().from(campaigns).where(inArray(campaigns.id, chunk)));
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * Admin decision on a held payout: release pays it (once, at the terms it was held with), reject closes
 * it. Both are decided inside their batch by the payout's status, so concurrent decisions have one winner.
 */
export async function decideHeldPayout(db: Db, id: string, decision: "release" | "reject", adminId: string, record?: (decided: PayoutRow) => IdempotencyWrite | undefined) {
  const row = await db.query.payouts.findFirst({ where: eq(payouts.id, id) });
  if (!row) throw new ApiError("not_found", "No such payout.");
  notAboutThemselves(adminId, row.userId, `${decision} a held payout`);
  // Nor one of their own campaign: rejecting it keeps their budget, releasing it spends it.
  notAboutThemselves(adminId, row.advertiserId, `${decision} a held payout of their own campaign`);
  if (row.status !== "held") throw new ApiError("conflict", `The payout is ${row.status}, not held.`);
  const now = Date.now();
  if (decision === "reject") {
    // One batch: the payout still held (else 409), its status, the audit entry and the idempotent answer.
    const rejected: PayoutRow = { ...row, status: "rejected", decidedBy: adminId, decidedAt: now };
    const idem = record?.(rejected);
    await applyStatements(db, [
      ...(idem ? [idempotencyRecord(db, idem, now)] : []),
      checkGuards(db, [guard("payout_not_held", sql`not exists (select 1 from ${payouts} where ${payouts.id} = ${id} and ${payouts.status} = 'held')`)]),
      db.update(payouts).set({ status: "rejected", decidedBy: adminId, decidedAt: now }).where(eq(payouts.id, id)),
      db.insert(auditLog).values({ actorId: adminId, action: "payout.rejected", subjectType: "payout", subjectId: id, details: { userId: row.userId, day: row.day, amountIdr: row.amountIdr }, createdAt: now }),
    ]);
    return rejected;
  }
  const result = await payLine(db, termsOfRow(row), now, { expect: "held", actorId: adminId, record: record && ((decided) => record({ ...row, ...decided })) });
  if (result === "insufficient_budget") throw new ApiError("insufficient_funds", "The campaign's budget cannot cover this payout and its fee; it stays held.");
  if (result === "campaign_suspended") throw new ApiError("campaign_suspended", "The campaign's owner is frozen or banned; the payout stays held.");
  if (result === "payee_banned") throw new ApiError("recipient_unavailable", "The earner is banned: the payout stays held. Reject it, or release it once the ban is lifted.");
  if (result === "already_decided") throw new ApiError("conflict", "The payout was decided concurrently.");
  return (await db.query.payouts.findFirst({ where: eq(payouts.id, id) }))!;
}
