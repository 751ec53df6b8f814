import { and, asc, count, eq, gt, inArray, isNull, lt, ne, sql } from "drizzle-orm";
import { selectInChunks } from "../db/in-chunks";
import type { Db } from "../db/client";
import type { Config } from "../config";
import { activityDays, batchRuns, collectFailures, dailyActivity, fraudAlerts, payouts, users, type DailyActivityRow, type PayoutRow } from "../db/schema";
import { weightsOf } from "../activity/activity.routes";
import { type Level, type PopulationStats } from "../activity/bot-rules";
import { classifyDay, columnDefaultsOf, columnParams, rbarParams, signalColumns, thresholdsOf, type Signal, type SignalColumn, type SignalParams } from "../activity/signals";
import { alertStatement, alertWhen, dedupeKey, raiseAlert } from "../fraud/alerts";
import { actionStatements, whitelistedUsers } from "../fraud/engine";
import { ApiError } from "../lib/errors";
import { addDays, dayStart } from "../lib/time";
import { campaignsById, cappedPayoutStatement, earnedLine, holdPayoutStatement, payLines, suspendedLineStatement, suspendedOwners, termsToDecide, type PayoutTerms } from "./batch-payouts";
import type { Statement } from "../ledger/executor";
import { eachApart, startFanout, type FanoutSource, type QueueDeps } from "./fanout";

/**
 * The daily batch (SPEC §8) in bounded steps over the queue:
 *  1. start: the day's run row, then a fan-out (`fanout.ts`) of `collect` messages of BATCH_CHUNK_USERS
 *     active users each;
 *  2. collect: each user's day summary from their Durable Object into daily_activity (first write wins;
 *     the object closes the day to new events); the message that completes collection computes μ and σ
 *     once and starts the fan-out of `pay` messages;
 *  3. pay: classify each user once and act (A ban, B hold, C pay); the last one marks the day done.
 * Every step is safe to repeat: rows are insert-or-ignore, money moves under once-keys and guards, a
 * user's classification and a payout's terms are decided once. A message that exhausts its retries
 * lands in the dead-letter queue, which marks the run `failed`; POST .../run resumes it.
 */
export type BatchMessage = { kind: "collect" | "pay"; day: string; userIds: string[] };

export type BatchDeps = QueueDeps;

/** Users of the day not collected yet. */
export const collectSource: FanoutSource<BatchMessage> = {
  chunk: (config) => config.BATCH_CHUNK_USERS,
  page: async (db, day, after, limit) =>
    (
      await db
        .select({ id: activityDays.userId })
        .from(activityDays)
        .leftJoin(dailyActivity, and(eq(dailyActivity.day, activityDays.day), eq(dailyActivity.userId, activityDays.userId)))
        .where(and(eq(activityDays.day, day), gt(activityDays.userId, after), isNull(dailyActivity.userId)))
        .orderBy(asc(activityDays.userId))
        .limit(limit)
    ).map((r) => r.id),
  message: (day, userIds) => ({ kind: "collect", day, userIds }),
  sent: countMessages,
};

/** Every collected user of the day (paying skips what is already decided). */
export const paySource: FanoutSource<BatchMessage> = {
  chunk: (config) => config.BATCH_CHUNK_USERS,
  page: async (db, day, after, limit) =>
    (await db.select({ id: dailyActivity.userId }).from(dailyActivity).where(and(eq(dailyActivity.day, day), gt(dailyActivity.userId, after))).orderBy(asc(dailyActivity.userId)).limit(limit)).map((r) => r.id),
  message: (day, userIds) => ({ kind: "pay", day, userIds }),
  sent: countMessages,
};

async function countMessages(db: Db, day: string, messages: number) {
  await db.update(batchRuns).set({ queueMessages: sql`${batchRuns.queueMessages} + ${messages}` }).where(eq(batchRuns.day, day));
}

/**
 * Starts, restarts or resumes a day's run. Collection resumes with the users not collected yet; once μ
 * and σ are fixed they are never recomputed, and paying (again) touches only what is still undecided.
 */
export async function startBatch(deps: BatchDeps, day: string, now: number) {
  const { db } = deps;
  const [{ active } = { active: 0 }] = await db.select({ active: count() }).from(activityDays).where(eq(activityDays.day, day));
  // Whether μ and σ are fixed is read by the upsert itself: collection may fix them a moment before.
  const [run] = await db
    .insert(batchRuns)
    .values({ day, status: "collecting", activeUsers: active, startedAt: now })
    .onConflictDoUpdate({
      target: batchRuns.day,
      set: { status: sql`case when ${batchRuns.mu} is not null then 'paying' else 'collecting' end`, activeUsers: active, runs: sql`${batchRuns.runs} + 1`, startedAt: now, finishedAt: null },
    })
    .returning({ mu: batchRuns.mu });
  const fixed = run?.mu !== null && run?.mu !== undefined;
  if (active === 0) {
    await db.update(batchRuns).set({ status: "done", finishedAt: now }).where(eq(batchRuns.day, day));
    return batchProgress(db, day);
  }
  if (fixed) {
    await startFanout(deps.env.BATCH_QUEUE, "pay", day);
    return batchProgress(db, day);
  }
  const [{ collected } = { collected: 0 }] = await db.select({ collected: settledUsersSql(day) }).from(sql`(select 1)`);
  if (collected >= active) {
    await maybeStartPaying(deps, day, now);
    return batchProgress(db, day);
  }
  await startFanout(deps.env.BATCH_QUEUE, "collect", day);
  return batchProgress(db, day);
}

/**
 * Scheduled: the records of objects that failed to give a day's summary, once no run can take that day any
 * more (past the activity retention, the objects no longer hold it).
 */
export async function purgeCollectFailures(db: Db, now: number, config: Pick<Config, "ACTIVITY_RETENTION_DAYS">): Promise<void> {
  await db.delete(collectFailures).where(lt(collectFailures.updatedAt, now - config.ACTIVITY_RETENTION_DAYS * 86_400_000));
}

/**
 * Housekeeping (every 15 minutes): a run still collecting or paying BATCH_STALL_MINUTES after it (re)started
 * was most likely left behind by an invocation that stopped between a commit and its queue send (the cron's
 * start, or the collect that fixed μ and σ): no message will ever move it on. A slow run is not: each look
 * notes the run's progress (users collected and classified, messages sent), and only a run that made none
 * between two looks is resumed — claimed by one housekeeping run, then resumed (every step is safe to
 * repeat), which restarts its clock; one alert per day tells a person. However old the day: paying needs
 * no object, and a collection the objects can no longer answer fails loudly (their summaries refuse a day
 * they no longer keep: users given up with alerts, or dead letters). A `failed` run (dead letters) waits
 * for an admin, as before.
 */
export async function resumeStalledRuns(deps: BatchDeps, now: number): Promise<string[]> {
  const { db, config } = deps;
  const looking = await db
    .select({ day: batchRuns.day, status: batchRuns.status, watched: batchRuns.watched, queueMessages: batchRuns.queueMessages })
    .from(batchRuns)
    .where(and(inArray(batchRuns.status, ["collecting", "paying"]), lt(batchRuns.startedAt, now - config.BATCH_STALL_MINUTES * 60_000)))
    .orderBy(asc(batchRuns.day))
    .limit(10);
  const resumed: string[] = [];
  for (const run of looking) {
    const [counts] = await db.select({ collected: count(), classified: count(dailyActivity.level) }).from(dailyActivity).where(eq(dailyActivity.day, run.day));
    const progress = `${run.status}:${counts?.collected ?? 0}:${counts?.classified ?? 0}:${run.queueMessages}`;
    const unchanged = and(eq(batchRuns.day, run.day), inArray(batchRuns.status, ["collecting", "paying"]), eq(batchRuns.watched, progress));
    if (run.watched !== progress) {
      await db.update(batchRuns).set({ watched: progress }).where(and(eq(batchRuns.day, run.day), eq(batchRuns.status, run.status)));
      continue;
    }
    const [claimed] = await db.update(batchRuns).set({ watched: null }).where(unchanged).returning({ day: batchRuns.day });
    if (!claimed) continue;
    await raiseAlert(db, { userId: null, alertType: "batch_stalled", severity: "high", details: { day: run.day, status: run.status, progress, resumedAt: new Date(now).toISOString() }, dedupeKey: await dedupeKey("batch_stalled", run.day) });
    await startBatch(deps, run.day, now);
    resumed.push(run.day);
  }
  return resumed;
}

export async function handleBatchMessage(deps: BatchDeps, message: BatchMessage, now: number): Promise<void> {
  if (message.kind === "collect") await collect(deps, message, now);
  else await pay(deps, message, now);
}

/**
 * A message that exhausted its retries (from the dead-letter queue): the run is marked failed with a
 * critical alert, once per chunk, and waits for POST /api/admin/batches/{day}/run to resume it.
 */
export async function handleDeadLetter(deps: BatchDeps, message: BatchMessage, now: number): Promise<void> {
  const { db } = deps;
  // A stale one (its work was finished by a resumed run since) leaves a finished run alone.
  const unfinished = sql`exists (select 1 from ${batchRuns} where ${batchRuns.day} = ${message.day} and ${batchRuns.status} != 'done')`;
  await db.batch([
    alertWhen(
      db,
      {
        userId: null,
        alertType: "batch_chunk_failed",
        severity: "critical",
        details: { day: message.day, kind: message.kind, users: message.userIds.length, firstUser: message.userIds[0] ?? null, resume: `POST /api/admin/batches/${message.day}/run` },
        dedupeKey: await dedupeKey("batch_chunk_failed", message.day, message.kind, message.userIds.join(",")),
      },
      now,
      unfinished,
    ),
    db
      .update(batchRuns)
      .set({ status: "failed", failedChunks: sql`${batchRuns.failedChunks} + 1` })
      .where(and(eq(batchRuns.day, message.day), ne(batchRuns.status, "done"))),
  ]);
}

/**
 * A user whose object failed this many times, over at least COLLECT_GIVE_UP_AFTER_MS, while others of the
 * day answered is left out of the day: a blip of a few seconds (a deploy resetting objects) gives up on nobody.
 */
const COLLECT_GIVE_UP_ATTEMPTS = 3;
const COLLECT_GIVE_UP_AFTER_MS = 60_000;

/** Users of the day collected, or given up on (see collect): the day can go on once they are all its active users. */
const settledUsersSql = (day: string) =>
  sql<number>`((select count(*) from ${dailyActivity} where ${dailyActivity.day} = ${day})
    + (select count(*) from ${collectFailures} f where f.day = ${day} and f.given_up_at is not null and not exists (select 1 from ${dailyActivity} d where d.day = f.day and d.user_id = f.user_id)))`;

/**
 * A chunk's summaries, each user apart: those that answered are recorded at once. A user whose object
 * fails while others of the day answer counts a failure; the message then fails (the queue retries it,
 * backing off) until that user has failed COLLECT_GIVE_UP_ATTEMPTS times over COLLECT_GIVE_UP_AFTER_MS,
 * when the day goes on without them and an alert names them (one user's broken object — its storage full,
 * say — cannot stop everyone's batch; a resumed run tries them again). While no object of the day has
 * answered it is an outage, not a user: nobody is given up on, and the message fails as before (retried,
 * then dead-lettered: the run waits for an admin). A user given up on is not paid for that day (while the
 * day is still collecting, a resumed run asks them again).
 */
async function collect(deps: BatchDeps, { day, userIds }: BatchMessage, now: number) {
  const { db, env, config } = deps;
  const weights = weightsOf(config);
  const opts = { minMinutes: config.BOT_REGULARITY_MIN_MINUTES };
  const results = await Promise.allSettled(userIds.map((id) => env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(id)).summary(day, weights, opts)));
  const rows = results.flatMap((r, i) =>
    r.status === "fulfilled"
      ? [
          {
            day,
            userId: userIds[i]!,
            activeMinutes: r.value.activeMinutes,
            weightedUnits: r.value.weightedUnits,
            rbar: r.value.rbar,
            rbarSe: r.value.rbarSe,
            activeHours: r.value.activeHours,
            rateDispersion: r.value.rateDispersion,
            cadence: r.value.cadence,
            campaignUnits: r.value.campaignUnits,
          },
        ]
      : [],
  );
  for (let i = 0; i < rows.length; i += 10) {
    await db.insert(dailyActivity).values(rows.slice(i, i + 10)).onConflictDoNothing();
  }
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [{ userId: userIds[i]!, error: r.reason instanceof Error ? r.reason.message : String(r.reason) }] : []));
  // An outage is judged by the day: no object of it has answered (a resumed collection's chunk may hold only the broken users).
  if (failed.length > 0 && rows.length === 0) {
    const [answered] = await db.select({ n: count() }).from(dailyActivity).where(eq(dailyActivity.day, day));
    if ((answered?.n ?? 0) === 0) throw new Error(`no summary of ${day} yet: ${failed[0]!.error}`);
  }
  const stillFailing: string[] = [];
  for (const f of failed) {
    const attempts = sql`${collectFailures.attempts} + 1`;
    const since = sql`coalesce(${collectFailures.firstFailedAt}, ${collectFailures.updatedAt})`;
    const [row] = await db
      .insert(collectFailures)
      .values({ day, userId: f.userId, attempts: 1, lastError: f.error.slice(0, 500), firstFailedAt: now, updatedAt: now })
      .onConflictDoUpdate({
        target: [collectFailures.day, collectFailures.userId],
        set: {
          attempts,
          lastError: f.error.slice(0, 500),
          firstFailedAt: since,
          givenUpAt: sql`coalesce(${collectFailures.givenUpAt}, case when ${attempts} >= ${COLLECT_GIVE_UP_ATTEMPTS} and ${now} - ${since} >= ${COLLECT_GIVE_UP_AFTER_MS} then ${now} end)`,
          updatedAt: now,
        },
      })
      .returning({ attempts: collectFailures.attempts, givenUpAt: collectFailures.givenUpAt });
    if (row?.givenUpAt == null) {
      stillFailing.push(`${f.userId}: ${f.error}`);
      continue;
    }
    await raiseAlert(db, {
      userId: f.userId,
      alertType: "batch_user_uncollected",
      severity: "high",
      details: { day, attempts: row?.attempts ?? 0, error: f.error.slice(0, 500), note: "the day went on without this user, who is not paid for it" },
      dedupeKey: await dedupeKey("batch_user_uncollected", day, f.userId),
    });
  }
  if (stillFailing.length > 0) throw new Error(`summaries of ${day} failed for ${stillFailing.length} user(s): ${stillFailing[0]}`);
  await maybeStartPaying(deps, day, now);
}

/** Once every active user is collected, μ and σ are fixed for the day and the pay step is fanned out, once. */
async function maybeStartPaying(deps: BatchDeps, day: string, now: number) {
  const { db, config } = deps;
  const run = await db.query.batchRuns.findFirst({ where: eq(batchRuns.day, day) });
  if (!run || run.status !== "collecting") return;
  const [{ n } = { n: 0 }] = await db.select({ n: settledUsersSql(day) }).from(sql`(select 1)`);
  if (n < run.activeUsers) return;
  const stats = await populationStats(db, day);
  const params = rbarParams(stats.rbar, config);
  const defaults = columnDefaultsOf(config);
  const signalParams = Object.fromEntries(
    SIGNAL_COLUMNS.map((c) => [c, columnParams(stats[c], defaults[c], { mode: config.BOT_PARAMS_MODE, minPopulation: config.BOT_MIN_POPULATION })]),
  ) as Record<SignalColumn, SignalParams>;
  const [won] = await db
    .update(batchRuns)
    .set({ status: "paying", mode: config.BOT_PARAMS_MODE, mu: params.mu, sigma: params.sigma, population: stats.rbar.n, paramsSource: params.source, signalParams })
    .where(and(eq(batchRuns.day, day), eq(batchRuns.status, "collecting"), isNull(batchRuns.mu)))
    .returning();
  if (!won) return;
  try {
    await startFanout(deps.env.BATCH_QUEUE, "pay", day);
  } catch (error) {
    // Nothing was queued: undo the switch so this message's retry (or the next collect) starts paying again.
    await db.update(batchRuns).set({ status: "collecting", mu: null, sigma: null, population: null, paramsSource: null, signalParams: null }).where(and(eq(batchRuns.day, day), eq(batchRuns.status, "paying")));
    throw error;
  }
}

/** The columns of daily_activity each signal column is stored in. */
const COLUMN_SQL: Record<"rbar" | SignalColumn, string> = { rbar: "rbar", activeMinutes: "active_minutes", activeHours: "active_hours", rateDispersion: "rate_dispersion", cadence: "cadence" };

/**
 * The median and MAD of the day's R̄ and of each signal column, over users who were active (a user whose
 * only report was refused has no minutes; a regularity column counts only days long enough to have one),
 * computed by SQL in three rounds of concurrent reads (counts, medians, MADs), so no invocation loads the population.
 */
async function populationStats(db: Db, day: string): Promise<Record<"rbar" | SignalColumn, PopulationStats>> {
  const columns = Object.keys(COLUMN_SQL) as ("rbar" | SignalColumn)[];
  const where = (c: string) => sql`day = ${day} and active_minutes > 0 and ${sql.raw(c)} is not null`;
  // (Concurrent reads, not one db.batch: drizzle's D1 batch does not bind parameters of raw SQL.)
  const n = await Promise.all(columns.map(async (c) => (await db.all<{ n: number }>(sql`select count(*) as n from daily_activity where ${where(COLUMN_SQL[c])}`))[0]?.n ?? 0));
  // The middle one or two values of an expression (by offset); their mean is the median.
  const middle = async (expr: ReturnType<typeof sql>, c: string, count: number) => {
    const rows = await db.all<{ v: number }>(sql`select ${expr} as v from daily_activity where ${where(c)} order by v limit ${count % 2 === 1 ? 1 : 2} offset ${Math.max(0, Math.floor((count - 1) / 2))}`);
    return rows.length === 0 ? 0 : rows.reduce((a, r) => a + r.v, 0) / rows.length;
  };
  const medians = await Promise.all(columns.map((c, i) => middle(sql.raw(COLUMN_SQL[c]), COLUMN_SQL[c], n[i]!)));
  const mads = await Promise.all(columns.map((c, i) => middle(sql`abs(${sql.raw(COLUMN_SQL[c])} - ${medians[i]})`, COLUMN_SQL[c], n[i]!)));
  return Object.fromEntries(columns.map((c, i) => [c, { n: n[i]!, median: n[i] === 0 ? 0 : medians[i]!, mad: n[i] === 0 ? 0 : mads[i]! }])) as Record<"rbar" | SignalColumn, PopulationStats>;
}

const SIGNAL_COLUMNS = Object.keys(signalColumns) as SignalColumn[];

const ACTION: Record<Level, "banned" | "held" | "paid"> = { A: "banned", B: "held", C: "paid" };
const LEVEL_OF_ACTION: Record<"banned" | "held" | "paid", Level> = { banned: "A", held: "B", paid: "C" };

async function pay(deps: BatchDeps, { day, userIds }: BatchMessage, now: number) {
  const { db, config } = deps;
  const run = await db.query.batchRuns.findFirst({ where: eq(batchRuns.day, day) });
  if (!run || run.mu === null || run.sigma === null) throw new Error(`batch ${day} has no population parameters yet`);
  const params = { mu: run.mu, sigma: run.sigma };
  // A run whose μ and σ were fixed before the signals existed judges them with the configured values.
  const defaults = columnDefaultsOf(config);
  const columns = run.signalParams ?? (Object.fromEntries(SIGNAL_COLUMNS.map((c) => [c, { mu: defaults[c].mu, sigma: defaults[c].sigma, source: "fixed" }])) as Record<SignalColumn, SignalParams>);
  const thresholds = thresholdsOf(config);
  const rows = await selectInChunks(userIds, (ids) => db.select().from(dailyActivity).where(and(eq(dailyActivity.day, day), inArray(dailyActivity.userId, ids))));
  const decided = new Map<string, PayoutRow[]>();
  for (const p of await selectInChunks(userIds, (ids) => db.select().from(payouts).where(and(eq(payouts.day, day), inArray(payouts.userId, ids))))) decided.set(p.userId, [...(decided.get(p.userId) ?? []), p]);
  const known = await campaignsById(db, [...new Set(rows.flatMap((r) => Object.keys(r.campaignUnits)))]);
  const suspended = await suspendedOwners(db, [...new Set([...known.values()].map((c) => c.ownerId))]);
  const whitelisted = await whitelistedUsers(db, userIds, { from: dayStart(day, config.BUSINESS_TZ_OFFSET), to: dayStart(addDays(day, 1), config.BUSINESS_TZ_OFFSET) });

  /** One user's day: classified (once), acted on (A ban, B hold, C records what the cap withheld); C's lines to pay. */
  const judge = async (row: DailyActivityRow) => {
    // A classification stands once made: a rerun never turns a held (or rejected) day into a paid one.
    const day_ = row.level
      ? { level: row.level, decidedBy: row.decidedBy, z: { rbar: row.z ?? 0, ...(row.signalZ ?? {}) } }
      : classifyDay({ ...row, rbar: row.rbar }, { rbar: params, columns }, thresholds);
    const { level } = day_;
    // What is done about it: a whitelisted user skips the bot levels like every rule (SPEC §12), and a
    // classified day keeps the action recorded with it (a whitelist added or lifted later changes nothing).
    const act: Level = row.level && row.action && row.action !== "none" ? LEVEL_OF_ACTION[row.action] : whitelisted.has(row.userId) ? "C" : level;
    const earlier = decided.get(row.userId) ?? [];
    const fresh = Object.entries(row.campaignUnits)
      .filter(([id, units]) => units > 0 && known.has(id))
      .map(([id, units]) => earnedLine({ day, userId: row.userId, campaign: known.get(id)!, units }, config));
    // A campaign whose owner is frozen or banned pays nothing and takes no share of the cap.
    const paysNothing = fresh.filter((l) => suspended.has(l.advertiserId) && !earlier.some((p) => p.id === l.id));
    const terms = termsToDecide(fresh.filter((l) => !suspended.has(l.advertiserId)), earlier, config.PAYOUT_DAILY_CAP_IDR, config);
    const capped = terms.filter((t) => t.amountIdr === 0 && t.cappedIdr > 0);
    const payable = terms.filter((t) => t.amountIdr > 0);
    const records: Statement[] = [...capped.map((t) => cappedPayoutStatement(db, t, now)), ...paysNothing.map((l) => suspendedLineStatement(db, l, now))];
    // (A statement is a thenable: it is built after the key is awaited, never returned from an async function.)
    const key = act === "C" ? "" : await dedupeKey("bot_level", day, row.userId);
    const alert = (severity: "critical" | "high") =>
      alertStatement(
        db,
        {
          userId: row.userId,
          alertType: `bot_level_${level}`,
          severity,
          details: { day, decidedBy: day_.decidedBy, rbar: row.rbar, rbarSe: row.rbarSe, z: day_.z.rbar, mu: params.mu, sigma: params.sigma, activeMinutes: row.activeMinutes, activeHours: row.activeHours, rateDispersion: row.rateDispersion, cadence: row.cadence, signalZ: day_.z },
          actionTaken: level === "A" ? "banned" : null,
          dedupeKey: key,
        },
        now,
      );
    // The ban (level 4, audited) once, with its alert: a rerun finds the alert and changes nothing, announces nothing.
    if (act === "A") await db.batch([alert("critical"), ...actionStatements(db, row.userId, 4, "batch:bot_level_A", `bot level A on ${day}`, now, sql`exists (select 1 from ${fraudAlerts} where ${fraudAlerts.dedupeKey} = ${key} and ${fraudAlerts.createdAt} < ${now})`)]);
    else if (act === "B") await db.batch([alert("high"), ...payable.map((t) => holdPayoutStatement(db, t, now)), ...records]);
    else if (records.length > 0) await db.batch(records as [Statement, ...Statement[]]);
    const { rbar: z, ...signalZ } = day_.z;
    return {
      toPay: act === "C" ? payable : [],
      classification: row.level
        ? null
        : db
            .update(dailyActivity)
            .set({ level, z, signalZ: signalZ as Record<Signal | SignalColumn, number | null>, decidedBy: day_.decidedBy, action: ACTION[act], classifiedAt: now })
            .where(and(eq(dailyActivity.day, day), eq(dailyActivity.userId, row.userId))),
    };
  };

  const classifications: Statement[] = [];
  const paid: PayoutTerms[] = [];
  // One user's row that cannot be processed must not stop the others: it is left unclassified, and the
  // message fails only after everyone else was decided.
  const judged = await eachApart(rows, (row) => row.userId, async (row) => {
    const { toPay, classification } = await judge(row);
    paid.push(...toPay);
    if (classification) classifications.push(classification);
  });
  await payLines(db, paid, now);
  // Classified last: a chunk that stops halfway is simply processed again (every step above is idempotent).
  for (let i = 0; i < classifications.length; i += 50) await db.batch(classifications.slice(i, i + 50) as [Statement, ...Statement[]]);
  // Whether anyone is left: one probe of the (day, classified_at) index, not a count of the day (which,
  // run by each of a day's pay messages, grew with the square of the population).
  const left = await db.select({ userId: dailyActivity.userId }).from(dailyActivity).where(and(eq(dailyActivity.day, day), isNull(dailyActivity.classifiedAt))).limit(1);
  if (left.length === 0) await db.update(batchRuns).set({ status: "done", finishedAt: now }).where(and(eq(batchRuns.day, day), inArray(batchRuns.status, ["paying", "failed"])));
  judged.raise(`pay ${day}`);
}

/** Progress and totals of a day's run, counted from what it wrote (so re-runs never double count). */
export async function batchProgress(db: Db, day: string) {
  const run = await db.query.batchRuns.findFirst({ where: eq(batchRuns.day, day) });
  if (!run) throw new ApiError("not_found", "No batch has run for that day.");
  const [[collected], [classified], byLevel, byStatus] = await db.batch([
    db.select({ n: count() }).from(dailyActivity).where(eq(dailyActivity.day, day)),
    db.select({ n: count() }).from(dailyActivity).where(and(eq(dailyActivity.day, day), sql`${dailyActivity.classifiedAt} is not null`)),
    db.select({ level: dailyActivity.level, n: count() }).from(dailyActivity).where(eq(dailyActivity.day, day)).groupBy(dailyActivity.level),
    db
      .select({ status: payouts.status, n: count(), amount: sql<number>`coalesce(sum(${payouts.amountIdr}), 0)`, fee: sql<number>`coalesce(sum(${payouts.feeIdr}), 0)` })
      .from(payouts)
      .where(eq(payouts.day, day))
      .groupBy(payouts.status),
  ]);
  return {
    day,
    status: run.status,
    runs: run.runs,
    activeUsers: run.activeUsers,
    collected: collected?.n ?? 0,
    classified: classified?.n ?? 0,
    queueMessages: run.queueMessages,
    failedChunks: run.failedChunks,
    params: run.mu === null ? null : { mode: run.mode, mu: run.mu, sigma: run.sigma, population: run.population, source: run.paramsSource },
    levels: Object.fromEntries(byLevel.filter((l) => l.level).map((l) => [l.level, l.n])),
    payouts: Object.fromEntries(byStatus.map((s) => [s.status, { count: s.n, amountIdr: s.amount, feeIdr: s.fee }])),
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: run.finishedAt === null ? null : new Date(run.finishedAt).toISOString(),
  };
}
