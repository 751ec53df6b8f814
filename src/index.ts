import { recordLedgerCheck } from "./admin/ledger-check";
import { createApp } from "./app";
import { loadRuntimeConfig } from "./secrets";
import { createDb } from "./db/client";
import { recordGatewayCalls } from "./metrics/gateway-latency";
import { withGatewayCalls, type GatewayCall } from "./lib/telemetry";
import { purgeRejectedPhotos } from "./kyc/kyc.service";
import { purgeConsoleSessions } from "./console/session";
import { purgeIdempotencyKeys } from "./lib/idempotency";
import { reconcileWithdrawals } from "./payouts/withdrawals.service";
import { purgeCollectFailures, resumeStalledRuns, startBatch } from "./jobs/daily-batch";
import { dedupeKey, raiseAlert } from "./fraud/alerts";
import type { Config } from "./config";
import { rollupDay } from "./metrics/metrics.service";
import { startFanout } from "./jobs/fanout";
import type { Outbox } from "./realtime/outbox";
import { enqueueOutbox, handleDeadQueueMessage, handleQueueMessage, type QueueMessage } from "./jobs/queue";
import { previousBusinessDay } from "./lib/time";
import { runMonthlyBilling } from "./billing/billing.service";
import { DAILY_BATCH_CRON, MONTHLY_BILLING_CRON } from "./jobs/crons";

export { UserActivity } from "./durable/user-activity";
export { RealtimeRoom } from "./realtime/room";
export { GatewayLatency } from "./metrics/gateway-latency";

const app = createApp();

/**
 * The daily ledger check, its alert (if it fails, or cannot run) announced through the queue like any
 * job's events.
 */
async function dailyLedgerCheck(env: Env, scheduledTime: number): Promise<void> {
  const outbox: Outbox = [];
  try {
    await recordLedgerCheck(createDb(env.DB, { outbox }), scheduledTime, loadRuntimeConfig(env).BUSINESS_TZ_OFFSET);
  } catch (e) {
    console.error("ledger check failed to run", e instanceof Error ? e.message : String(e));
  }
  await enqueueOutbox(env, loadRuntimeConfig(env), outbox).catch((e) => console.error("ledger check events lost", e instanceof Error ? e.message : String(e)));
}

/**
 * The daily batch's start. If it cannot start, nothing was queued, so no dead letter will ever tell
 * anyone: a critical alert does (once per day), and POST /api/admin/batches/{day}/run starts it.
 */
async function startDailyBatch(env: Env, config: Config, day: string, scheduledTime: number): Promise<void> {
  const outbox: Outbox = [];
  const db = createDb(env.DB, { outbox });
  try {
    await startBatch({ db, config, env }, day, scheduledTime);
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    console.error(`daily batch ${day} did not start`, error);
    await raiseAlert(db, { userId: null, alertType: "batch_start_failed", severity: "critical", details: { day, error, resume: `POST /api/admin/batches/${day}/run` }, dedupeKey: await dedupeKey("batch_start_failed", day) }).catch(
      (alertError) => console.error("batch start alert lost", alertError instanceof Error ? alertError.message : String(alertError)),
    );
  }
  await enqueueOutbox(env, config, outbox).catch((e) => console.error("batch start events lost", e instanceof Error ? e.message : String(e)));
}

/**
 * Every 15 minutes: housekeeping that keeps nothing held or stored longer than it should be (and
 * releases marketplace escrow that is due). Each step
 * runs whatever happened to the others (a failing Iris must not keep KYC photos past their retention).
 */
async function housekeeping(env: Env, scheduledTime: number) {
  const config = loadRuntimeConfig(env);
  const outbox: Outbox = [];
  const calls: GatewayCall[] = [];
  const db = createDb(env.DB, { outbox });
  const steps = {
    idempotency: () => purgeIdempotencyKeys(db, scheduledTime - config.IDEMPOTENCY_TTL_HOURS * 3_600_000),
    consoleSessions: () => purgeConsoleSessions(db, scheduledTime),
    withdrawals: () => reconcileWithdrawals(db, config, env, scheduledTime),
    kycRetention: () => purgeRejectedPhotos(db, env.KYC_BUCKET, config, scheduledTime),
    // Marketplace orders whose escrow period has passed by the scheduled time, released in queue chunks.
    escrowRelease: () => startFanout(env.BATCH_QUEUE, "escrow_release", String(scheduledTime)),
    // Daily batch runs left behind by an invocation that stopped before its queue send.
    stalledBatches: () => resumeStalledRuns({ db, config, env }, scheduledTime),
    collectFailures: () => purgeCollectFailures(db, scheduledTime, config),
  };
  const results = await withGatewayCalls(calls, () => Promise.allSettled(Object.values(steps).map((step) => step())));
  results.forEach((r, i) => {
    if (r.status === "rejected") console.error(`housekeeping step ${Object.keys(steps)[i]} failed`, r.reason instanceof Error ? r.reason.message : String(r.reason));
  });
  // Timings are best effort; what the steps settled is announced whatever happens to them.
  await recordGatewayCalls(env, calls).catch((e) => console.error("gateway timings lost", e instanceof Error ? e.message : String(e)));
  await enqueueOutbox(env, config, outbox);
}

/**
 * Local development only (ENVIRONMENT=development, never in production): `GET /__scheduled?cron=&time=`
 * fires a cron at a chosen scheduled time. wrangler dev's own /cdn-cgi/handler/scheduled reaches the
 * static-assets router instead of this Worker (it answers 500), and its /__scheduled ignores `time`.
 */
async function fireCron(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  const cron = url.searchParams.get("cron") ?? "";
  const time = Number(url.searchParams.get("time") ?? Date.now());
  if (!Number.isSafeInteger(time) || time <= 0) return new Response("time must be epoch milliseconds\n", { status: 400 });
  await worker.scheduled({ cron, scheduledTime: time, type: "scheduled", noRetry() {} } as ScheduledController, env, ctx);
  return new Response(`ran ${cron || "(no cron)"} at ${new Date(time).toISOString()}\n`);
}

const worker = {
  fetch(request, env, ctx) {
    if (env.ENVIRONMENT === "development" && request.method === "GET" && new URL(request.url).pathname === "/__scheduled") return fireCron(request, env, ctx);
    return app.fetch(request, env, ctx);
  },

  async scheduled(controller, env, ctx) {
    if (controller.cron === DAILY_BATCH_CRON) {
      const config = loadRuntimeConfig(env);
      // The day is the business day that ended before the scheduled time, so any run can be replayed.
      const day = previousBusinessDay(controller.scheduledTime, config.BUSINESS_TZ_OFFSET);
      ctx.waitUntil(startDailyBatch(env, config, day, controller.scheduledTime));
      // The metrics rollup of the day that ended (rerunnable; today's is computed when asked for).
      ctx.waitUntil(rollupDay(createDb(env.DB), env, config, day, controller.scheduledTime).catch((e) => console.error("metrics rollup failed", e instanceof Error ? e.message : String(e))));
      // The ledger's invariants, once a day (a failure raises a critical alert, announced to the admins' room; the console shows the report).
      ctx.waitUntil(dailyLedgerCheck(env, controller.scheduledTime));
      return;
    }
    if (controller.cron === MONTHLY_BILLING_CRON) {
      ctx.waitUntil(runMonthlyBilling(env, controller.scheduledTime).then(() => undefined));
      return;
    }
    ctx.waitUntil(housekeeping(env, controller.scheduledTime));
  },

  async queue(batch, env) {
    const outbox: Outbox = [];
    const deps = { db: createDb(env.DB, { outbox }), config: loadRuntimeConfig(env), env };
    const deadLetters = batch.queue.endsWith("-dlq");
    for (const message of batch.messages) {
      try {
        if (deadLetters) await handleDeadQueueMessage(deps, message.body, Date.now());
        else await handleQueueMessage(deps, message.body, Date.now());
        message.ack();
      } catch (error) {
        console.error("queue message failed", error instanceof Error ? error.message : String(error));
        // Backing off (2, 8, 32, 120, 120 s: about 5 minutes over max_retries 5), so a blip of a minute is outlived.
        message.retry({ delaySeconds: Math.min(120, 2 * 4 ** Math.max(0, message.attempts - 1)) });
      }
    }
    // Payouts, refunds and releases reach their users' sockets once their batches committed, through
    // the queue in bounded messages (a chunk of payouts touches hundreds of users). Sent before this
    // delivery ends: a send left to waitUntil stalled the local queue while it awaited this delivery.
    if (outbox.length > 0) await enqueueOutbox(env, deps.config, outbox).catch((e) => console.error("realtime events not queued", e instanceof Error ? e.message : String(e)));
  },
} satisfies ExportedHandler<Env, QueueMessage>;

export default worker;
