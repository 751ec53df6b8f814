import type { Context } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

export type RateBucket = "value" | "activity" | "kyc" | "campaign" | "withdraw_method";

/** Counts this request against the caller's limit for `bucket` in their Durable Object; 429 with Retry-After past it. */
export async function rateLimit(c: Context<AppEnv>, bucket: RateBucket, limit: number, windowMs: number, what: string) {
  const stub = c.env.USER_ACTIVITY.get(c.env.USER_ACTIVITY.idFromName(c.var.user.id));
  const gate = await stub.admit(bucket, Date.now(), limit, windowMs);
  if (!gate.allowed) {
    throw new ApiError("rate_limited", `At most ${limit} ${what} per ${windowMs >= 3_600_000 ? `${windowMs / 3_600_000} h` : `${windowMs / 60_000} min`}.`, { headers: { "retry-after": String(gate.retryAfterSeconds) } });
  }
  return gate;
}
