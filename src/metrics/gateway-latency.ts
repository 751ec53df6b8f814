import { DurableObject } from "cloudflare:workers";
import type { GatewayCall } from "../lib/telemetry";

/** A latency's histogram bucket: its upper bound in ms (1 ms up to 100, 10 ms up to 1 s, 100 ms up to 10 s, then 1 s). */
export function latencyBucket(ms: number): number {
  const m = Math.max(0, Math.ceil(ms));
  if (m <= 100) return m;
  if (m <= 1000) return Math.ceil(m / 10) * 10;
  if (m <= 10_000) return Math.ceil(m / 100) * 100;
  return Math.ceil(m / 1000) * 1000;
}

const KEEP_MS = 400 * 86_400_000;
const MINUTE = 60_000;

/**
 * Gateway call latencies (SPEC §14), kept by one Durable Object rather than D1: a request that called a
 * gateway hands its timings here after answering, so timing costs the request no D1 write. The metrics
 * rollup reads a day's histogram from it. Kept 400 days, as counts per minute, gateway, operation,
 * outcome and latency bucket: a busy minute adds to a few counts, never a row per call (a row per call
 * for 400 days would outgrow an object's storage at a few calls a second).
 */
export class GatewayLatency extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private purgedMinute = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS call_counts (
        minute INTEGER NOT NULL, gateway TEXT NOT NULL, operation TEXT NOT NULL, outcome TEXT NOT NULL, bucket INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (minute, gateway, operation, outcome, bucket));`);
    // Calls kept a row each by earlier versions become counts, once.
    if (this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'").toArray().length > 0) {
      ctx.storage.transactionSync(() => {
        this.sql.exec(`INSERT INTO call_counts (minute, gateway, operation, outcome, bucket, n)
          SELECT at / ${MINUTE}, gateway, operation, outcome, bucket, count(*) FROM calls WHERE true GROUP BY 1, 2, 3, 4, 5
          ON CONFLICT (minute, gateway, operation, outcome, bucket) DO UPDATE SET n = n + excluded.n`);
        this.sql.exec("DROP TABLE calls");
      });
    }
  }

  record(calls: GatewayCall[]): void {
    for (const c of calls) {
      this.sql.exec(
        "INSERT INTO call_counts (minute, gateway, operation, outcome, bucket, n) VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (minute, gateway, operation, outcome, bucket) DO UPDATE SET n = n + 1",
        Math.floor(c.at / MINUTE),
        c.gateway,
        c.operation,
        c.outcome,
        latencyBucket(c.ms),
      );
    }
    const minute = Math.floor(Date.now() / MINUTE);
    if (minute !== this.purgedMinute) {
      this.sql.exec("DELETE FROM call_counts WHERE minute < ?", minute - KEEP_MS / MINUTE);
      this.purgedMinute = minute;
    }
  }

  /** Bucket upper bound (ms) → calls, for calls made in [start, end) (bounds to the minute; a business day's are whole minutes). */
  histogram(start: number, end: number): Record<string, number> {
    const rows = this.sql
      .exec<{ bucket: number; n: number }>("SELECT bucket, sum(n) AS n FROM call_counts WHERE minute >= ? AND minute < ? GROUP BY bucket", Math.ceil(start / MINUTE), Math.ceil(end / MINUTE))
      .toArray();
    return Object.fromEntries(rows.map((r) => [String(r.bucket), r.n]));
  }
}

export const gatewayLatency = (env: Env) => env.GATEWAY_LATENCY.get(env.GATEWAY_LATENCY.idFromName("gateways"));

/** Hands a request's (or job's) gateway timings to the recorder. */
export async function recordGatewayCalls(env: Env, calls: GatewayCall[]): Promise<void> {
  if (calls.length === 0) return;
  await gatewayLatency(env).record(calls.splice(0));
}
