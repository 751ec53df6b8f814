import type { Config } from "../config";
import type { Db } from "../db/client";

/**
 * Fan-out in bounded steps. A job over many ids (the day's users, an item's purchases) is not sent to
 * the queue by one invocation: a `fanout` message reads ONE page of ids after its cursor, sends that
 * page's work messages and the next `fanout` message, and is done. Each invocation does bounded work
 * whatever the population; a step that fails is retried by the queue from its own cursor (work messages
 * are idempotent, so a page sent twice costs work, never money); one that exhausts its retries reaches
 * the dead-letter queue and is reported like a failed work message.
 */
export type FanoutMessage = { kind: "fanout"; source: FanoutSourceName; key: string; after: string };
export type FanoutSourceName = "collect" | "pay" | "content_refund" | "escrow_release";

export interface QueueDeps {
  db: Db;
  config: Config;
  env: Env;
}

export interface FanoutSource<M> {
  /** Ids per work message. */
  chunk(config: Config): number;
  /** The next ids after `after`, ascending (keyset paging), at most `limit`. */
  page(db: Db, key: string, after: string, limit: number): Promise<string[]>;
  message(key: string, ids: string[]): M;
  /** Counts the work messages sent (progress). */
  sent(db: Db, key: string, messages: number): Promise<void>;
}

/** Cloudflare Queues: at most 100 messages and 256 KB per sendBatch; a margin is kept for framing. */
const SEND_MAX_MESSAGES = 100;
const SEND_MAX_BYTES = 200 * 1024;

/** Groups messages into sendBatch calls within the Queues limits, whatever the ids' length. */
export function sendBatches<T>(bodies: T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = new TextEncoder().encode(JSON.stringify(body)).length + 64;
    if (current.length > 0 && (current.length === SEND_MAX_MESSAGES || bytes + size > SEND_MAX_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(body);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Starts a fan-out: one message, whatever the number of ids behind it. */
export async function startFanout(queue: Queue, source: FanoutSourceName, key: string): Promise<void> {
  await queue.send({ kind: "fanout", source, key, after: "" } satisfies FanoutMessage);
}

/** One step: a page of work messages and, when the page was full, the next step. */
export async function fanoutStep<M>(deps: QueueDeps, source: FanoutSource<M>, step: FanoutMessage): Promise<number> {
  // QUEUE_FANOUT_PAGE (1000): with chunks of 50–100 ids, 10–20 work messages and the next step.
  const page = deps.config.QUEUE_FANOUT_PAGE;
  const ids = await source.page(deps.db, step.key, step.after, page);
  const size = source.chunk(deps.config);
  const work: M[] = [];
  for (let i = 0; i < ids.length; i += size) work.push(source.message(step.key, ids.slice(i, i + size)));
  const next: FanoutMessage[] = ids.length === page ? [{ ...step, after: ids.at(-1)! }] : [];
  // The next step goes first: the fan-out runs ahead of the work, so the backlog (and the consumers the
  // platform scales up for it) reflects the whole job rather than one page at a time.
  for (const group of sendBatches<M | FanoutMessage>([...next, ...work])) await deps.env.BATCH_QUEUE.sendBatch(group.map((body) => ({ body })));
  if (work.length > 0) await source.sent(deps.db, step.key, work.length);
  return work.length;
}

/**
 * One queue message's items, each worked on in turn: one that throws (a row no run can process) does not
 * stop the others. Once the caller has finished its own work, `raise` throws one error naming the
 * failures, so the message is retried and then dead-lettered with an alert; without failures it does nothing.
 */
export async function eachApart<T>(items: T[], idOf: (item: T) => string, work: (item: T) => Promise<unknown>) {
  const failed: string[] = [];
  for (const item of items) {
    try {
      await work(item);
    } catch (error) {
      failed.push(`${idOf(item)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return {
    raise(what: string) {
      if (failed.length > 0) throw new Error(`${what}: ${failed.length} of ${items.length} not processed (${failed.slice(0, 5).join("; ")})`);
    },
  };
}
