import { and, between, count, eq, gte, lt, notInArray, sql, type SQLWrapper } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { OPERATIONAL_ALERTS } from "../fraud/alerts";
import { activityDays, dailyMetrics, fraudAlerts, metricUserDays, paymentOrders, transactions, users } from "../db/schema";
import { gatewayLatency } from "./gateway-latency";
import { earningsByUserSql } from "../creator/earnings";
import { idFloor } from "../lib/ids";
import { ApiError } from "../lib/errors";
import { addDays, businessDay, checkDayRange, dayStart, offsetMinutes } from "../lib/time";

export const METRICS_MAX_DAYS = 366;

/**
 * Writes one business day's rollup in ONE batch, from bounded range scans of that day's rows (ids and
 * timestamps of the day; transactions by their time-ordered ids): the per-user rows (active, paid,
 * earned) and the day's figures, with the gateway latency histogram its recorder kept. Rerunnable: it
 * replaces what an earlier run wrote for the day. A day that has not begun has nothing to roll up: its row
 * would report it `computed` before it happened (409).
 */
export async function rollupDay(db: Db, env: Env, config: Config, day: string, now: number): Promise<void> {
  if (day > businessDay(now, config.BUSINESS_TZ_OFFSET)) throw new ApiError("conflict", `${day} has not begun yet in business time (${config.BUSINESS_TZ_OFFSET}).`);
  const start = dayStart(day, config.BUSINESS_TZ_OFFSET);
  const end = dayStart(addDays(day, 1), config.BUSINESS_TZ_OFFSET);
  const [lo, hi] = [idFloor(start), idFloor(end)];
  const inDay = (column: SQLWrapper) => sql`${column} >= ${start} and ${column} < ${end}`;
  const txOfDay = sql`${transactions.id} >= ${lo} and ${transactions.id} < ${hi}`;
  // Counted on the day the action was decided: a later review that keeps it does not count it again.
  const decidedOn = (action: "frozen" | "banned") => sql`(select count(*) from ${fraudAlerts} where ${inDay(fraudAlerts.actionDecidedAt)} and ${fraudAlerts.actionTaken} = ${action})`;
  const userRows = sql`select ${day}, u, max(a), max(p), sum(r), sum(e) from (
      select ${transactions.userId} as u, 1 as a, 0 as p, 0 as r, 0 as e from ${transactions} where ${txOfDay} and ${transactions.userId} is not null
      union all select ${transactions.counterpartyId}, 1, 0, 0, 0 from ${transactions} where ${txOfDay} and ${transactions.counterpartyId} is not null
      union all select ${activityDays.userId}, 1, 0, 0, 0 from ${activityDays} where ${activityDays.day} = ${day}
      union all select ${paymentOrders.userId}, 1, 1, ${paymentOrders.amountIdr}, 0 from ${paymentOrders} where ${inDay(paymentOrders.paidAt)}
      union all select u, 1, 0, 0, earned from (${earningsByUserSql(lo, hi, config.COIN_VALUE_IDR)})
    ) where u in (select ${users.id} from ${users}) group by u`;
  const ordersPaid = sql`(select count(*) from ${paymentOrders} where ${inDay(paymentOrders.paidAt)})`;
  const figures = {
    day,
    newUsers: sql`(select count(*) from ${users} where ${inDay(users.createdAt)})`,
    newPayers: sql`(select count(*) from ${users} where ${inDay(users.firstPaidAt)})`,
    ordersPaid,
    // An order reported failed and then confirmed paid (the gateway's status is the truth) is a paid order only.
    ordersFinal: sql`${ordersPaid} + (select count(*) from ${paymentOrders} where ${inDay(paymentOrders.failedAt)} and ${paymentOrders.paidAt} is null)`,
    latency: await gatewayLatency(env).histogram(start, end),
    // Alerts about what users did: the platform's own (jobs, gateways, the ledger) flag no transaction.
    flaggedTransactions: sql`(select count(*) from ${fraudAlerts} where ${fraudAlerts.createdAt} >= ${start} and ${fraudAlerts.createdAt} < ${end} and ${notInArray(fraudAlerts.alertType, [...OPERATIONAL_ALERTS])})`,
    // Orders first charged back that day, however many (partial) chargebacks each had, on any days.
    chargebacks: sql`(select count(*) from ${paymentOrders} where ${inDay(paymentOrders.chargedBackAt)})`,
    freezes: decidedOn("frozen"),
    bans: decidedOn("banned"),
    computedAt: now,
  };
  const excluded = (column: string) => sql.raw(`excluded.${column}`);
  await db.batch([
    db.delete(metricUserDays).where(eq(metricUserDays.day, day)),
    db.insert(metricUserDays).select(sql`${userRows}`),
    insertWhere(db, dailyMetrics, figures, sql`where 1`).onConflictDoUpdate({
      target: dailyMetrics.day,
      set: {
        newUsers: excluded("new_users"),
        newPayers: excluded("new_payers"),
        ordersFinal: excluded("orders_final"),
        ordersPaid: excluded("orders_paid"),
        latency: excluded("latency"),
        flaggedTransactions: excluded("flagged_transactions"),
        chargebacks: excluded("chargebacks"),
        freezes: excluded("freezes"),
        bans: excluded("bans"),
        computedAt: excluded("computed_at"),
      },
    }),
  ]);
}

/** Nearest-rank percentile of a histogram (bucket upper bound → count): the bucket holding rank ceil(p × n). */
export function histogramPercentile(histogram: Record<string, number>, p: number): number | null {
  const buckets = Object.entries(histogram)
    .map(([b, n]) => [Number(b), n] as const)
    .sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(p * total));
  let seen = 0;
  for (const [b, n] of buckets) {
    seen += n;
    if (seen >= rank) return b;
  }
  return buckets.at(-1)![0];
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
const idr = (x: number) => Math.round(x * 100) / 100;

/**
 * SPEC §14 over business days [from, to]: past days from the rollups; today's rollup is computed (and
 * written) first, so it is live. A past day whose rollup was written while it was still today (a live read
 * before its 00:15 cron, or a cron that failed) is rolled up again first: it is never served as final.
 * Days without a rollup yet are listed with `computed: false`.
 */
export async function metricsReport(db: Db, env: Env, config: Config, range: { from: string; to: string }, now: number) {
  const { from, to } = range;
  checkDayRange(from, to, METRICS_MAX_DAYS);
  const today = businessDay(now, config.BUSINESS_TZ_OFFSET);
  const offsetMs = offsetMinutes(config.BUSINESS_TZ_OFFSET) * 60_000;
  const provisional = await db
    .select({ day: dailyMetrics.day })
    .from(dailyMetrics)
    .where(and(between(dailyMetrics.day, from, to), lt(dailyMetrics.day, today), sql`${dailyMetrics.computedAt} < (cast(strftime('%s', ${dailyMetrics.day}) as integer) + 86400) * 1000 - ${offsetMs}`));
  for (const { day } of provisional) await rollupDay(db, env, config, day, now);
  if (from <= today && today <= to) await rollupDay(db, env, config, today, now);
  const inRange = between(metricUserDays.day, from, to);
  const periodStart = dayStart(from, config.BUSINESS_TZ_OFFSET);
  const periodEnd = dayStart(addDays(to, 1), config.BUSINESS_TZ_OFFSET);
  const earnedBy = db
    .select({ total: sql<number>`sum(${metricUserDays.earnedIdr})`.as("total") })
    .from(metricUserDays)
    .where(and(inRange, sql`${metricUserDays.earnedIdr} != 0`))
    .groupBy(metricUserDays.userId)
    // An earner earned something over the period: a sale clawed back in it (a total of 0 or less) is not one.
    .having(sql`sum(${metricUserDays.earnedIdr}) > 0`)
    .as("earned_by");
  const [figures, perDay, [distinct], [signups], [creators]] = await db.batch([
    db.select().from(dailyMetrics).where(between(dailyMetrics.day, from, to)),
    db
      .select({ day: metricUserDays.day, active: sql<number>`sum(${metricUserDays.active})`, payers: sql<number>`sum(${metricUserDays.paid})`, revenue: sql<number>`sum(${metricUserDays.revenueIdr})` })
      .from(metricUserDays)
      .where(inRange)
      .groupBy(metricUserDays.day),
    db
      .select({
        active: sql<number>`count(distinct case when ${metricUserDays.active} = 1 then ${metricUserDays.userId} end)`,
        payers: sql<number>`count(distinct case when ${metricUserDays.paid} = 1 then ${metricUserDays.userId} end)`,
        revenue: sql<number>`coalesce(sum(${metricUserDays.revenueIdr}), 0)`,
      })
      .from(metricUserDays)
      .where(inRange),
    db
      .select({ n: count(), converted: sql<number>`count(case when ${users.firstPaidAt} >= ${periodStart} and ${users.firstPaidAt} < ${periodEnd} then 1 end)` })
      .from(users)
      .where(and(gte(users.createdAt, periodStart), lt(users.createdAt, periodEnd))),
    db.select({ n: count(), max: sql<number | null>`max(${earnedBy.total})` }).from(earnedBy),
  ]);
  const n = creators?.n ?? 0;
  const nth = (p: number) => db.select({ total: earnedBy.total }).from(earnedBy).orderBy(sql`${earnedBy.total}`).limit(1).offset(Math.max(0, Math.ceil(p * n) - 1));
  const [p50, p90, p99] = n === 0 ? [[], [], []] : await db.batch([nth(0.5), nth(0.9), nth(0.99)]);

  const byDay = new Map(figures.map((f) => [f.day, f]));
  const usersByDay = new Map(perDay.map((d) => [d.day, d]));
  const merged: Record<string, number> = {};
  const days = [];
  for (let d = from; d <= to; d = addDays(d, 1)) {
    const f = byDay.get(d);
    const u = usersByDay.get(d) ?? { active: 0, payers: 0, revenue: 0 };
    for (const [b, c] of Object.entries(f?.latency ?? {})) merged[b] = (merged[b] ?? 0) + c;
    days.push({
      date: d,
      computed: f !== undefined,
      activeUsers: u.active,
      dailyActivePayers: u.payers,
      revenueIdr: u.revenue,
      arpuIdr: idr(ratio(u.revenue, u.active)),
      arppuIdr: idr(ratio(u.revenue, u.payers)),
      newUsers: f?.newUsers ?? 0,
      newPayers: f?.newPayers ?? 0,
      paymentSuccessRate: ratio(f?.ordersPaid ?? 0, f?.ordersFinal ?? 0),
      gatewayLatencyMs: { p50: histogramPercentile(f?.latency ?? {}, 0.5), p95: histogramPercentile(f?.latency ?? {}, 0.95) },
      flaggedTransactions: f?.flaggedTransactions ?? 0,
      chargebacks: f?.chargebacks ?? 0,
      freezes: f?.freezes ?? 0,
      bans: f?.bans ?? 0,
    });
  }
  const sum = (k: "ordersPaid" | "ordersFinal" | "flaggedTransactions" | "chargebacks" | "freezes" | "bans") => figures.reduce((s, f) => s + f[k], 0);
  const active = distinct?.active ?? 0;
  const payers = distinct?.payers ?? 0;
  const revenue = distinct?.revenue ?? 0;
  return {
    from,
    to,
    days,
    totals: {
      activeUsers: active,
      payers,
      revenueIdr: revenue,
      arpuIdr: idr(ratio(revenue, active)),
      arppuIdr: idr(ratio(revenue, payers)),
      conversionRate: ratio(signups?.converted ?? 0, signups?.n ?? 0),
      paymentSuccessRate: ratio(sum("ordersPaid"), sum("ordersFinal")),
      gatewayLatencyMs: { p50: histogramPercentile(merged, 0.5), p95: histogramPercentile(merged, 0.95) },
      flaggedTransactions: sum("flaggedTransactions"),
      chargebackRate: ratio(sum("chargebacks"), sum("ordersPaid")),
      freezeRate: ratio(sum("freezes"), active),
      bansPerWeek: idr((sum("bans") * 7) / days.length),
      creatorEarnings: { creators: n, p50: p50?.[0]?.total ?? null, p90: p90?.[0]?.total ?? null, p99: p99?.[0]?.total ?? null, max: creators?.max ?? null },
    },
  };
}
