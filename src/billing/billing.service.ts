import { and, asc, eq, gt, gte, isNull, lt, lte, or, sql, type SQL } from "drizzle-orm";
import type { Config } from "../config";
import { loadRuntimeConfig } from "../secrets";
import { createDb, type Db } from "../db/client";
import { batchRuns, invoiceRuns, payouts, usageInvoices, type UsageInvoiceRow } from "../db/schema";
import { systemAccountId, userAccountId } from "../ledger/accounts";
import { applyPlan, applyStatements } from "../ledger/executor";
import { checkGuards, guard, GuardError } from "../ledger/guards";
import { movePlan } from "../ledger/plan";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";
import { businessMonth, monthBefore, monthRange, previousMonth, usageCost, type UsageCost, type UsagePlan } from "./usage-pricing";
import { enqueueOutbox } from "../jobs/queue";
import type { Outbox } from "../realtime/outbox";
import { dedupeKey, raiseAlert } from "../fraud/alerts";

export const usagePlan = (config: Config, creditLimitUnits = config.USAGE_CREDIT_LIMIT_UNITS): UsagePlan => ({
  creditLimitUnits,
  unitPriceIdr: config.USAGE_UNIT_PRICE_IDR,
  overagePriceIdr: config.USAGE_OVERAGE_PRICE_IDR,
  tiers: config.USAGE_TIERS,
});

export interface CampaignUnits {
  campaignId: string;
  units: number;
}

/** One invoice per advertiser and month, so its id is derived rather than drawn. */
export const invoiceId = (advertiserId: string, month: string) => `inv-${month}-${advertiserId}`;
/** The same id in SQL, of a payout's advertiser and a month given as SQL or text. */
const invoiceIdSql = (month: SQL | string) => sql`'inv-' || ${month} || '-' || ${payouts.advertiserId}`;

/**
 * The payouts month M's invoice takes: those of its own days, and unbilled ones of an earlier month X that
 * were released after X's invoice run, once M is the next month to run after them (X is M's month before,
 * or that month has had its run too). A payout of a month that has not had its run waits for it, so every
 * month is priced at its own tier, whenever it runs. Late means paid after the month's run, or after the
 * advertiser's invoice of that month was paid (final), so an advertiser whose invoice failed in a run keeps
 * that month's payouts for the month's rerun (its `invoice_failed` alert asks for one), at that month's tier.
 */
function inMonthScope(month: string) {
  const { from, to } = monthRange(month);
  const ran = (m: SQL | string) => sql`exists (select 1 from ${invoiceRuns} where ${invoiceRuns.month} = ${m})`;
  const payoutMonth = sql`substr(${payouts.day}, 1, 7)`;
  // Paid after its month's run (a payout paid by the batch is decided when it is created), or its month's invoice
  // for the advertiser is paid already (final: a run that stopped before recording itself is recorded later).
  const late = sql`(coalesce(${payouts.decidedAt}, ${payouts.createdAt}) > (select ${invoiceRuns.ranAt} from ${invoiceRuns} where ${invoiceRuns.month} = ${payoutMonth})
    or exists (select 1 from ${usageInvoices} where ${usageInvoices.id} = ${invoiceIdSql(payoutMonth)} and ${usageInvoices.status} = 'paid'))`;
  const before = monthBefore(month);
  return or(and(gte(payouts.day, from), lte(payouts.day, to)), and(lt(payouts.day, from), ran(payoutMonth), late, or(sql`${payoutMonth} = ${before}`, ran(before))))!;
}

/**
 * What an advertiser's invoice for `month` bills: every paid payout in the month's scope (inMonthScope) not
 * billed by another invoice. So a held payout released after its month was invoiced is billed by the
 * next month's invoice, never lost and never twice; an unpaid invoice keeps the payouts it claimed.
 */
function billable(month: string, advertiserId: string) {
  return and(
    eq(payouts.advertiserId, advertiserId),
    eq(payouts.status, "paid"),
    inMonthScope(month),
    or(isNull(payouts.invoiceId), eq(payouts.invoiceId, invoiceId(advertiserId, month))),
  );
}

/**
 * Advertisers with anything billable in the month's scope (or one advertiser's), and their units per
 * campaign: what the month's invoice bills, and (GET /api/billing/usage) what it is expected to bill.
 */
function billableUnits(db: Db, month: string, advertiserId?: string) {
  const ownInvoice = sql`${payouts.invoiceId} = ${invoiceIdSql(month)}`;
  return db
    .select({ advertiserId: payouts.advertiserId, campaignId: payouts.campaignId, units: sql<number>`sum(${payouts.units})`.mapWith(Number) })
    .from(payouts)
    .where(
      and(
        eq(payouts.status, "paid"),
        inMonthScope(month),
        or(isNull(payouts.invoiceId), ownInvoice),
        advertiserId === undefined ? undefined : eq(payouts.advertiserId, advertiserId),
      ),
    )
    .groupBy(payouts.advertiserId, payouts.campaignId)
    .orderBy(asc(payouts.advertiserId), asc(payouts.campaignId));
}

/** The monthly invoice run waits for the batch of the month's last day: a payout paid later would be billed a month late. */
export async function lastBatchFinished(db: Db, month: string): Promise<boolean> {
  const run = await db.query.batchRuns.findFirst({ where: eq(batchRuns.day, monthRange(month).to) });
  return run?.status === "done";
}

/**
 * An advertiser's usage of a month as its invoice bills it (SPEC §8.1 "units and cost so far"): a paid
 * invoice's own figures; otherwise what the invoice would bill if it ran now (`billable`: paid payouts up
 * to the month's end that no other invoice billed). One round trip.
 */
export async function usageFor(db: Db, advertiserId: string, month: string, config: Config) {
  const [invoices, rows] = await db.batch([
    db.select().from(usageInvoices).where(and(eq(usageInvoices.advertiserId, advertiserId), eq(usageInvoices.month, month))),
    billableUnits(db, month, advertiserId),
  ]);
  const paid = invoices.find((i) => i.status === "paid");
  if (paid) {
    const { byCampaign, ...cost } = paid.breakdown as unknown as UsageCost & { byCampaign: CampaignUnits[] };
    return { month, units: paid.units, byCampaign, cost };
  }
  const byCampaign: CampaignUnits[] = rows.map(({ campaignId, units }) => ({ campaignId, units }));
  const units = byCampaign.reduce((sum, r) => sum + r.units, 0);
  return { month, units, byCampaign, cost: usageCost(units, usagePlan(config)) };
}

interface Invoice {
  advertiserId: string;
  month: string;
  byCampaign: CampaignUnits[];
  cost: UsageCost;
}

/**
 * Debits the invoice from the advertiser's IDR wallet, at most once per advertiser and month
 * (once-key), together with marking the invoice paid and its payouts billed. A guard aborts the batch
 * if the billable units changed since they were priced (a payout released meanwhile); the run then
 * prices again. A wallet that cannot cover it leaves the invoice unpaid (its payouts claimed), re-priced
 * on every retry since nothing has been charged for it yet.
 */
async function chargeInvoice(db: Db, inv: Invoice, now: number): Promise<"charged" | "already_paid" | "unpaid"> {
  const { advertiserId, month, cost } = inv;
  const id = invoiceId(advertiserId, month);
  const fields = { units: cost.units, amountIdr: cost.totalIdr, breakdown: { ...cost, byCampaign: inv.byCampaign }, updatedAt: now };
  const target = [usageInvoices.advertiserId, usageInvoices.month];
  const transactionId = newId(now);
  const wallet = userAccountId(advertiserId, "IDR");
  const priced = sql`(select coalesce(sum(${payouts.units}), 0) from ${payouts} where ${billable(month, advertiserId)})`;
  const claim = [
    checkGuards(db, [guard("invoice_units_changed", sql`${priced} != ${cost.units}`)]),
    db.update(payouts).set({ invoiceId: id }).where(billable(month, advertiserId)),
  ];
  const plan = movePlan({
    tx: { id: transactionId, type: "fee", asset: "IDR", amount: cost.totalIdr, userId: advertiserId, metadata: { month, units: cost.units, invoiceId: id } },
    from: wallet,
    to: systemAccountId("platform_revenue", "IDR"),
    sideAccountId: wallet,
    audit: { actorId: "system:billing", action: "usage_invoice.paid", subjectType: "usage_invoice", subjectId: id, details: { month, units: cost.units, amountIdr: cost.totalIdr } },
    onceKeys: [`invoice:${advertiserId}:${month}`],
    now,
  });
  try {
    await applyPlan(db, plan, {
      before: claim,
      alongside: [
        db
          .insert(usageInvoices)
          .values({ id, advertiserId, month, ...fields, status: "paid", transactionId, createdAt: now })
          .onConflictDoUpdate({ target, set: { ...fields, status: "paid", transactionId } }),
      ],
    });
    return "charged";
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // A concurrent run charged it first.
    if (error.code === "already_applied") return "already_paid";
    if (error.code !== "insufficient_funds") throw error;
  }
  await applyStatements(db, [
    ...claim,
    db.insert(usageInvoices).values({ id, advertiserId, month, ...fields, status: "unpaid", transactionId: null, createdAt: now }).onConflictDoUpdate({ target, set: fields, setWhere: eq(usageInvoices.status, "unpaid") }),
  ]);
  return "unpaid";
}

export interface InvoiceRun {
  month: string;
  invoices: number;
  paid: number;
  unpaid: number;
  /** Advertisers whose invoice could not be issued (an error, alerted as `invoice_failed`); a rerun tries them again. */
  failed: number;
  /** Sum of the month's invoices (paid and unpaid). */
  totalIdr: number;
  /** What this run debited; 0 on a rerun that found nothing left to charge. */
  chargedIdr: number;
}

/**
 * SPEC §8.1: invoices every advertiser with billable units in `month`, which must have ended in
 * business time. Safe to rerun and to run concurrently: paid invoices are skipped (and the once-key
 * refuses a second debit), unpaid ones are tried again. One advertiser whose invoice fails (a D1 error,
 * usage that kept changing) does not stop the others: it is counted, alerted, and left to a rerun.
 */
export async function issueMonthlyInvoices(db: Db, config: Config, month: string, now: number): Promise<InvoiceRun> {
  if (month >= businessMonth(now, config.BUSINESS_TZ_OFFSET)) {
    throw new ApiError("conflict", `${month} has not ended yet in business time (${config.BUSINESS_TZ_OFFSET}); it is invoiced from the 1st of the next month.`);
  }
  const [rows, existing] = await db.batch([billableUnits(db, month), db.select().from(usageInvoices).where(eq(usageInvoices.month, month))]);
  const paidBefore = new Map(existing.filter((i) => i.status === "paid").map((i) => [i.advertiserId, i]));
  const byAdvertiser = new Map<string, CampaignUnits[]>();
  for (const { advertiserId, campaignId, units } of rows) {
    const list = byAdvertiser.get(advertiserId) ?? byAdvertiser.set(advertiserId, []).get(advertiserId)!;
    list.push({ campaignId, units });
  }

  const run: InvoiceRun = { month, invoices: 0, paid: 0, unpaid: 0, failed: 0, totalIdr: 0, chargedIdr: 0 };
  const plan = usagePlan(config);
  for (const [advertiserId, byCampaign] of byAdvertiser) {
    const done = paidBefore.get(advertiserId);
    let amount = done?.amountIdr ?? 0;
    let unpaid = false;
    if (!done) {
      let units = byCampaign;
      let outcome: Awaited<ReturnType<typeof chargeInvoice>> | "nothing" | "failed" | null = null;
      // A payout released while the invoice was priced aborts the charge: price again (a few times).
      for (let attempt = 0; outcome === null; attempt++) {
        const cost = usageCost(units.reduce((sum, r) => sum + r.units, 0), plan);
        amount = cost.totalIdr;
        if (cost.totalIdr === 0) outcome = "nothing";
        else {
          try {
            outcome = await chargeInvoice(db, { advertiserId, month, byCampaign: units, cost }, now);
          } catch (error) {
            if (error instanceof GuardError && error.guard === "invoice_units_changed" && attempt < 3) {
              units = (await billableUnits(db, month, advertiserId)).map(({ campaignId, units: u }) => ({ campaignId, units: u }));
              continue;
            }
            outcome = "failed";
            await invoiceFailed(db, advertiserId, month, error);
          }
        }
      }
      if (outcome === "nothing") continue;
      if (outcome === "failed") {
        run.failed++;
        continue;
      }
      if (outcome === "charged") run.chargedIdr += amount;
      unpaid = outcome === "unpaid";
    }
    run.invoices++;
    run[unpaid ? "unpaid" : "paid"]++;
    run.totalIdr += amount;
  }
  // Every advertiser was gone through (whatever each outcome): the month has had its run.
  await db.insert(invoiceRuns).values({ month, ranAt: now }).onConflictDoNothing();
  return run;
}

/** An advertiser's invoice that could not be issued: one alert per advertiser and month (best effort: the run goes on). */
async function invoiceFailed(db: Db, advertiserId: string, month: string, error: unknown) {
  const reason = error instanceof Error ? error.message : String(error);
  console.error(`usage invoice of ${advertiserId} for ${month} failed: ${reason}`);
  const alert = { userId: advertiserId, alertType: "invoice_failed", severity: "high" as const, details: { month, reason: reason.slice(0, 500) } };
  await raiseAlert(db, { ...alert, dedupeKey: await dedupeKey("invoice_failed", advertiserId, month) }).catch((e) =>
    console.error("invoice_failed alert not written", e instanceof Error ? e.message : String(e)),
  );
}

/** A month's invoices by advertiser, a page at a time: `limit + 1` rows after the advertiser `after`. */
export async function listInvoices(db: Db, month: string, q: { status?: UsageInvoiceRow["status"]; after?: string; limit: number }) {
  return db
    .select()
    .from(usageInvoices)
    .where(and(eq(usageInvoices.month, month), q.status ? eq(usageInvoices.status, q.status) : undefined, q.after ? gt(usageInvoices.advertiserId, q.after) : undefined))
    .orderBy(asc(usageInvoices.advertiserId))
    .limit(q.limit + 1);
}

/** The monthly cron (00:30 business time on the 1st): invoices the month that just ended. */
/**
 * The monthly cron. It bills only once the daily batch of the month's last day has finished, since a
 * paid invoice is final and units paid later would never be billed; otherwise it waits for an admin
 * run (POST /api/admin/billing/invoices/{month}/run) after that batch.
 */
export async function runMonthlyBilling(env: Env, scheduledTime: number): Promise<InvoiceRun | null> {
  const config = loadRuntimeConfig(env);
  const outbox: Outbox = [];
  const db = createDb(env.DB, { outbox });
  const month = previousMonth(scheduledTime, config.BUSINESS_TZ_OFFSET);
  if (!(await lastBatchFinished(db, month))) {
    // Nothing retries by itself: an admin runs the month once that batch is done (one alert per month).
    const detail = `usage invoices for ${month} deferred: the batch of ${monthRange(month).to} has not finished; run POST /api/admin/billing/invoices/${month}/run after it`;
    console.error(detail);
    await raiseAlert(db, { userId: null, alertType: "billing_deferred", severity: "high", details: { month, detail }, dedupeKey: await dedupeKey("billing_deferred", month) });
    await enqueueOutbox(env, config, outbox).catch((e) => console.error("alert event not queued", e instanceof Error ? e.message : String(e)));
    return null;
  }
  try {
    const run = await issueMonthlyInvoices(db, config, month, scheduledTime);
    console.log("usage invoices", JSON.stringify(run));
    return run;
  } finally {
    // The charges that committed reach their advertisers' sockets, as when an admin runs the month.
    await enqueueOutbox(env, config, outbox).catch((e) => console.error("invoice events not queued", e instanceof Error ? e.message : String(e)));
  }
}
