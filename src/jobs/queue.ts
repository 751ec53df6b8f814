import { raiseAlert, dedupeKey } from "../fraud/alerts";
import { handleContentRefundMessage, contentRefundSource, type ContentRefundMessage } from "./content-refunds";
import { collectSource, handleBatchMessage, handleDeadLetter, paySource, type BatchMessage } from "./daily-batch";
import { escrowReleaseSource, handleEscrowRelease, type EscrowReleaseMessage } from "../marketplace/marketplace.service";
import { outboxMessages, publishReliably, type Outbox, type RealtimeConfig, type RealtimeMessage } from "../realtime/outbox";
import { fanoutStep, sendBatches, type FanoutMessage, type FanoutSource, type FanoutSourceName, type QueueDeps } from "./fanout";
import { businessDay } from "../lib/time";

/** Every message the one queue (and its dead-letter queue) carries. */
export type QueueMessage = BatchMessage | ContentRefundMessage | EscrowReleaseMessage | FanoutMessage | RealtimeMessage;

const SOURCES: { [K in FanoutSourceName]: FanoutSource<QueueMessage> } = { collect: collectSource, pay: paySource, content_refund: contentRefundSource, escrow_release: escrowReleaseSource };

export async function handleQueueMessage(deps: QueueDeps, body: QueueMessage, now: number): Promise<void> {
  if (body.kind === "fanout") await fanoutStep(deps, SOURCES[body.source], body);
  else if (body.kind === "realtime") await publishReliably(deps.env, deps.config, body.events, body.hops ?? 0);
  else if (body.kind === "content_refund") await handleContentRefundMessage(deps.db, deps.config, body, now);
  else if (body.kind === "escrow_release") await handleEscrowRelease(deps.db, deps.config, body, now);
  else await handleBatchMessage(deps, body, now);
}

/**
 * A message that exhausted its retries: a daily-batch step marks the day's run failed (POST
 * /api/admin/batches/{day}/run resumes it); a refund chunk or fan-out step raises a critical alert
 * (POST /api/admin/content/{id}/refunds/resume sends what is left); an escrow release raises an alert
 * (the next run picks the due orders up again).
 */
export async function handleDeadQueueMessage(deps: QueueDeps, body: QueueMessage, now: number): Promise<void> {
  // Realtime events that could not be delivered: clients catch up through replay or resync.
  if (body.kind === "realtime") return;
  if (body.kind === "fanout") {
    if (body.source === "content_refund") return deadRefunds(deps, body.key, `fanout after ${body.after || "(start)"}`, 0);
    if (body.source === "escrow_release") return deadEscrow(deps, `fanout after ${body.after || "(start)"}`, 0, now);
    return handleDeadLetter(deps, { kind: body.source, day: body.key, userIds: [] }, now);
  }
  if (body.kind === "content_refund") return deadRefunds(deps, body.contentId, body.purchaseIds.join(","), body.purchaseIds.length);
  if (body.kind === "escrow_release") return deadEscrow(deps, body.orderIds.join(","), body.orderIds.length, now);
  return handleDeadLetter(deps, body, now);
}

async function deadRefunds(deps: QueueDeps, contentId: string, what: string, purchases: number) {
  await raiseAlert(deps.db, {
    userId: null,
    alertType: "content_refund_chunk_failed",
    severity: "critical",
    details: { contentId, purchases, resume: `POST /api/admin/content/${contentId}/refunds/resume` },
    dedupeKey: await dedupeKey("content_refund_chunk_failed", contentId, what),
  });
}

/**
 * Escrow release is retried by the next cron run anyway (due orders stay due); a person is still told,
 * once per business day (the same fan-out step fails the same way run after run while a fault lasts).
 */
async function deadEscrow(deps: QueueDeps, what: string, orders: number, now: number) {
  await raiseAlert(deps.db, {
    userId: null,
    alertType: "escrow_release_failed",
    severity: "high",
    details: { orders, note: "due orders stay in escrow and are picked up by the next run" },
    dedupeKey: await dedupeKey("escrow_release_failed", businessDay(now, deps.config.BUSINESS_TZ_OFFSET), what),
  });
}

/**
 * A job's realtime events, handed to the queue in bounded messages (those too large for one message are
 * published here, see outboxMessages). A send that fails does not stop the others; the failure is thrown
 * once all were tried.
 */
export async function enqueueOutbox(env: Env, config: RealtimeConfig, outbox: Outbox): Promise<void> {
  const { messages, direct } = outboxMessages(outbox);
  if (direct.length > 0) await publishReliably(env, config, direct);
  const failed: string[] = [];
  for (const group of sendBatches(messages)) {
    await env.BATCH_QUEUE.sendBatch(group.map((body) => ({ body }))).catch((e) => failed.push(e instanceof Error ? e.message : String(e)));
  }
  if (failed.length > 0) throw new Error(`${failed.length} realtime sends failed: ${failed[0]}`);
}
