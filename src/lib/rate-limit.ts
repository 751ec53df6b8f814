import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { Config } from "../config";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

export type RateBucket = "value" | "activity" | "kyc" | "campaign" | "withdraw_method";

const per = (windowMs: number) => (windowMs >= 3_600_000 ? `${windowMs / 3_600_000} h` : `${windowMs / 60_000} min`);

/**
 * Counts this request against the caller's limit for `bucket` in their Durable Object; 429 with Retry-After
 * past it. With `device`, the object also says whether that device is new for the caller (`newDevice`).
 */
export async function rateLimit(c: Context<AppEnv>, bucket: RateBucket, limit: number, windowMs: number, what: string, device: string | null = null) {
  const stub = c.env.USER_ACTIVITY.get(c.env.USER_ACTIVITY.idFromName(c.var.user.id));
  const gate = await stub.admit(bucket, Date.now(), limit, windowMs, device);
  if (!gate.allowed) {
    throw new ApiError("rate_limited", `At most ${limit} ${what} per ${per(windowMs)}.`, { headers: { "retry-after": String(gate.retryAfterSeconds) } });
  }
  return gate;
}

/** The same, as a middleware (app.ts runs it before the caller is loaded, and before the body is read or validated). */
export const rateLimited = (bucket: RateBucket, limit: (config: Config) => number, windowMs: number, what: string) =>
  createMiddleware<AppEnv>(async (c, next) => {
    await rateLimit(c, bucket, limit(c.var.config), windowMs, what);
    await next();
  });
