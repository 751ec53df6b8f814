import { AsyncLocalStorage } from "node:async_hooks";

/** One call to a payment gateway, as the metrics need it (SPEC §14: gateway latency p50/p95). */
export interface GatewayCall {
  gateway: string;
  operation: string;
  ms: number;
  outcome: "ok" | "error";
  at: number;
}

/**
 * The gateway calls of the current request (or job), kept in async-local storage so the integrations
 * need no extra parameter. The request's database wrapper writes them with its next batch (no extra
 * round trip); any left when the request ends are written after the answer.
 */
const calls = new AsyncLocalStorage<GatewayCall[]>();

export const withGatewayCalls = <T>(sink: GatewayCall[], fn: () => T): T => calls.run(sink, fn);

/** Times a gateway call and records it, whatever its outcome. */
export async function timed<T>(gateway: string, operation: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  let outcome: GatewayCall["outcome"] = "error";
  try {
    const result = await work();
    outcome = "ok";
    return result;
  } finally {
    calls.getStore()?.push({ gateway, operation, ms: Math.max(0, Date.now() - started), outcome, at: started });
  }
}
