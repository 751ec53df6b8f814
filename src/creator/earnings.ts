import { and, eq, gte, inArray, lt, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { postings, transactions } from "../db/schema";
import { userAccountId, userDebtAccountId } from "../ledger/accounts";
import { addDays, businessDay, checkDayRange, dayStart, offsetMinutes } from "../lib/time";

/**
 * Where a user's earnings come from, and in which asset each source pays. A movement that earns marks
 * its transaction's metadata with `source` and `earners` (the users it pays); its postings on an
 * earner's wallet and debt account are their earning (a refund's claw-back is a negative earning of
 * the same source).
 */
export const EARNING_SOURCES = { content: "COIN", gifts: "COIN", marketplace: "COIN", payouts: "IDR" } as const;
export type EarningSource = keyof typeof EARNING_SOURCES;
type BySource = Record<EarningSource, number>;

const zero = (): BySource => ({ content: 0, gifts: 0, marketplace: 0, payouts: 0 });
const isSource = (s: string): s is EarningSource => Object.hasOwn(EARNING_SOURCES, s);

export const EARNINGS_MAX_DAYS = 366;

/**
 * A user's earnings between two business days (inclusive), by source and by business day, summed from
 * the ledger's postings: what reached their wallet, net of claw-backs (also those booked as debt).
 * Debt settlements are not earnings (they move between the user's own accounts).
 */
export async function creatorEarnings(db: Db, userId: string, range: { from?: string; to?: string }, now: number, tzOffset: string) {
  const to = range.to ?? businessDay(now, tzOffset);
  const from = range.from ?? addDays(to, -29);
  checkDayRange(from, to, EARNINGS_MAX_DAYS);
  const rows = await earningsQuery(db, userId, from, to, tzOffset);
  const totals = zero();
  const days = new Map<string, BySource>();
  for (const r of rows) {
    if (!isSource(r.source)) continue;
    totals[r.source] += r.amount;
    const d = days.get(r.day) ?? days.set(r.day, zero()).get(r.day)!;
    d[r.source] += r.amount;
  }
  return { from, to, assets: EARNING_SOURCES, totals, days: [...days].map(([d, by]) => ({ day: d, ...by })) };
}

/**
 * The rows of `creatorEarnings`: (business day, source, amount). A posting is never older than its
 * transaction, so the postings since `from` bound the scan (index on account and time), whatever the
 * user's history before.
 */
export function earningsQuery(db: Db, userId: string, from: string, to: string, tzOffset: string) {
  const day = sql<string>`strftime('%Y-%m-%d', (${transactions.createdAt} + ${offsetMinutes(tzOffset) * 60_000}) / 1000, 'unixepoch')`;
  const source = sql<string>`json_extract(${transactions.metadata}, '$.source')`;
  const start = dayStart(from, tzOffset);
  return db
    .select({ day, source, amount: sql<number>`sum(${postings.amount})` })
    .from(postings)
    .innerJoin(transactions, eq(transactions.id, postings.transactionId))
    .where(
      and(
        inArray(postings.accountId, (["COIN", "IDR"] as const).flatMap((asset) => [userAccountId(userId, asset), userDebtAccountId(userId, asset)])),
        gte(postings.createdAt, start),
        sql`exists (select 1 from json_each(${transactions.metadata}, '$.earners') where value = ${userId})`,
        gte(transactions.createdAt, start),
        lt(transactions.createdAt, dayStart(addDays(to, 1), tzOffset)),
      ),
    )
    .groupBy(day, source)
    .orderBy(day);
}

/**
 * The same rule for everyone at once (the metrics rollup): each earner's earnings in the transactions
 * with ids in [lo, hi) (a time range, ids being ULIDs), in rupiah value (coins at COIN_VALUE_IDR), as
 * rows (u, earned).
 */
export function earningsByUserSql(lo: string, hi: string, coinValueIdr: number): SQL {
  return sql`select je.value as u, sum(${postings.amount} * (case ${transactions.asset} when 'COIN' then ${coinValueIdr} else 1 end)) as earned
    from ${transactions} join json_each(${transactions.metadata}, '$.earners') je
    join ${postings} on ${postings.transactionId} = ${transactions.id}
      and ${postings.accountId} in ('usr:' || je.value || ':' || ${transactions.asset}, 'debt:' || je.value || ':' || ${transactions.asset})
    where ${transactions.id} >= ${lo} and ${transactions.id} < ${hi}
    group by je.value`;
}
