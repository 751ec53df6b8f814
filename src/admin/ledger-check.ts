import { desc, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { ledgerChecks } from "../db/schema";
import { alertStatement, dedupeKey } from "../fraud/alerts";
import { applyStatements } from "../ledger/executor";
import { businessDay } from "../lib/time";

/**
 * The ledger's invariants (SPEC §4), checked by SQL over the whole ledger: every asset sums to zero,
 * no account that may not go negative is below zero (a user wallet or campaign budget never may, whatever
 * its flag says: the check does not trust the flag the CHECK constraint trusts), each balance equals the sum of its postings,
 * each transaction's postings sum to zero per asset, each lock equals its pending holds, every posting
 * is in its account's asset, and no debt account is positive (debt is what a user owes, never what the
 * platform owes them).
 */
export async function checkLedger(db: Db) {
  const [assets, negative, mismatched, unbalanced, locks, assetMismatches, positiveDebts] = await db.batch([
    db.all<{ asset: string; sum: number; accounts: number }>(sql`select asset, coalesce(sum(balance), 0) as sum, count(*) as accounts from accounts group by asset order by asset`),
    db.all<{ id: string; balance: number; locked: number }>(sql`select id, balance, locked from accounts where (allow_negative = 0 or kind in ('user_wallet', 'campaign_budget')) and (balance < 0 or balance - locked < 0) limit 100`),
    db.all<{ id: string; balance: number; postings: number }>(
      sql`select a.id, a.balance, coalesce(p.total, 0) as postings from accounts a
          left join (select account_id, sum(amount) as total from postings group by account_id) p on p.account_id = a.id
          where a.balance != coalesce(p.total, 0) limit 100`,
    ),
    db.all<{ transactionId: string; asset: string; sum: number }>(
      sql`select transaction_id as transactionId, asset, sum(amount) as sum from postings group by transaction_id, asset having sum(amount) != 0 limit 100`,
    ),
    db.all<{ id: string; locked: number; held: number }>(
      sql`select a.id, a.locked, coalesce(h.total, 0) as held from accounts a
          left join (select account_id, sum(amount) as total from holds where status = 'pending' group by account_id) h on h.account_id = a.id
          where a.locked != coalesce(h.total, 0) limit 100`,
    ),
    db.all<{ accountId: string; accountAsset: string; postingAsset: string; postings: number }>(
      sql`select p.account_id as accountId, a.asset as accountAsset, p.asset as postingAsset, count(*) as postings from postings p
          join accounts a on a.id = p.account_id where p.asset != a.asset group by p.account_id, p.asset limit 100`,
    ),
    db.all<{ id: string; balance: number }>(sql`select id, balance from accounts where kind = 'user_debt' and balance > 0 limit 100`),
  ]);
  const ok =
    assets.every((a) => a.sum === 0) &&
    negative.length === 0 &&
    mismatched.length === 0 &&
    unbalanced.length === 0 &&
    locks.length === 0 &&
    assetMismatches.length === 0 &&
    positiveDebts.length === 0;
  return {
    ok,
    checkedAt: new Date().toISOString(),
    assets,
    negativeAccounts: negative,
    balanceMismatches: mismatched,
    unbalancedTransactions: unbalanced,
    lockMismatches: locks,
    assetMismatches,
    positiveDebts,
  };
}

export type LedgerReport = Awaited<ReturnType<typeof checkLedger>>;

/** How long reports are kept. */
const KEEP_MS = 90 * 86_400_000;

/** The critical alert of a check that failed (or could not run); `key` makes it once per business day and kind. */
const ledgerAlert = (db: Db, now: number, key: string, details: Record<string, unknown>) =>
  alertStatement(db, { userId: null, alertType: "ledger_check_failed", severity: "critical", details, dedupeKey: key }, now);

/**
 * Runs the check and keeps its report (the console shows the latest, so viewing it scans nothing). A
 * failed check raises a critical `ledger_check_failed` alert, once per business day (`tzOffset`, the
 * platform's BUSINESS_TZ_OFFSET) however often it runs. A check that cannot run at all (a D1 time limit
 * as the ledger grows) raises one too, `ran: false`, and still throws: it never passes silently.
 */
export async function recordLedgerCheck(db: Db, now: number, tzOffset: string): Promise<LedgerReport> {
  const day = businessDay(now, tzOffset);
  let report: LedgerReport;
  try {
    report = await checkLedger(db);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).slice(0, 500);
    const key = await dedupeKey("ledger_check_failed", "not_run", day);
    await applyStatements(db, [ledgerAlert(db, now, key, { ran: false, error: message })]).catch((e) =>
      console.error("ledger check alert lost", e instanceof Error ? e.message : String(e)),
    );
    throw error;
  }
  const failed = report.ok
    ? []
    : [
        ledgerAlert(db, now, await dedupeKey("ledger_check_failed", day), {
          assets: report.assets.filter((a) => a.sum !== 0),
          negativeAccounts: report.negativeAccounts.length,
          balanceMismatches: report.balanceMismatches.length,
          unbalancedTransactions: report.unbalancedTransactions.length,
          lockMismatches: report.lockMismatches.length,
          assetMismatches: report.assetMismatches.length,
          positiveDebts: report.positiveDebts.length,
        }),
      ];
  await applyStatements(db, [db.insert(ledgerChecks).values({ checkedAt: now, ok: report.ok, report }), db.delete(ledgerChecks).where(lt(ledgerChecks.checkedAt, now - KEEP_MS)), ...failed]);
  return report;
}

/** The latest kept report, or undefined when the ledger was never checked. */
export async function latestLedgerCheck(db: Db): Promise<{ checkedAt: number; ok: boolean; report: Record<string, unknown> } | undefined> {
  return db.select({ checkedAt: ledgerChecks.checkedAt, ok: ledgerChecks.ok, report: ledgerChecks.report }).from(ledgerChecks).orderBy(desc(ledgerChecks.id)).limit(1).get();
}
