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

/**
 * Gateway call latencies (SPEC §14), kept by one Durable Object rather than D1: a request that called a
 * gateway hands its timings here after answering, so timing costs the request no D1 write. The metrics
 * rollup reads a day's histogram from it. Kept 400 days.
 */
export class GatewayLatency extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS calls (at INTEGER NOT NULL, bucket INTEGER NOT NULL, gateway TEXT NOT NULL, operation TEXT NOT NULL, outcome TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS calls_at ON calls (at);`);
  }

  record(calls: GatewayCall[]): void {
    for (const c of calls) this.sql.exec("INSERT INTO calls (at, bucket, gateway, operation, outcome) VALUES (?, ?, ?, ?, ?)", c.at, latencyBucket(c.ms), c.gateway, c.operation, c.outcome);
    this.sql.exec("DELETE FROM calls WHERE at < ?", Date.now() - KEEP_MS);
  }

  /** Bucket upper bound (ms) → calls, for calls made in [start, end). */
  histogram(start: number, end: number): Record<string, number> {
    const rows = this.sql.exec<{ bucket: number; n: number }>("SELECT bucket, count(*) AS n FROM calls WHERE at >= ? AND at < ? GROUP BY bucket", start, end).toArray();
    return Object.fromEntries(rows.map((r) => [String(r.bucket), r.n]));
  }
}

export const gatewayLatency = (env: Env) => env.GATEWAY_LATENCY.get(env.GATEWAY_LATENCY.idFromName("gateways"));

/** Hands a request's (or job's) gateway timings to the recorder. */
export async function recordGatewayCalls(env: Env, calls: GatewayCall[]): Promise<void> {
  if (calls.length === 0) return;
  await gatewayLatency(env).record(calls.splice(0));
}
