import { createMiddleware } from "hono/factory";
import { sql } from "drizzle-orm";
import type { AppEnv } from "../env";
import { deviceAccounts } from "../db/schema";
import { ApiError } from "../lib/errors";
import { deviceFingerprint } from "../lib/request";
import { checkRules } from "./engine";
import { evaluateRules } from "./rules";
import { findingStatements } from "./engine";
import { applyStatements } from "../ledger/executor";

/**
 * For every value-moving route: the per-user rate limit (429 + Retry-After) from the user's Durable
 * Object before the handler, then — after the response is decided, off the request path — the
 * velocity rule and the device bookkeeping with the shared-device rule.
 */
export const valueMovingGuard = createMiddleware<AppEnv>(async (c, next) => {
  const { config, user, db } = c.var;
  const now = Date.now();
  const stub = c.env.USER_ACTIVITY.get(c.env.USER_ACTIVITY.idFromName(user.id));
  const gate = await stub.admit("value", now, config.RATE_LIMIT_PER_MINUTE);
  const fingerprint = deviceFingerprint(c);
  const subject = { userId: user.id, deviceFingerprint: fingerprint };
  const background = async () => {
    await checkRules(db, config, subject, { event: "value_request", attemptsLastMinute: gate.attemptsInWindow }, now);
    if (fingerprint) await recordDevice(c.var.db, config, subject, c.req.raw.headers, now);
  };
  // Started only once the answer is decided, so it never competes with the request's own D1 work.
  const afterwards = () => c.executionCtx.waitUntil(background().catch((e) => console.error("fraud checks failed", e instanceof Error ? e.message : String(e))));
  if (!gate.allowed) {
    afterwards();
    throw new ApiError("rate_limited", `At most ${config.RATE_LIMIT_PER_MINUTE} value-moving requests per minute.`, { headers: { "retry-after": String(gate.retryAfterSeconds) } });
  }
  try {
    await next();
  } finally {
    afterwards();
  }
});

/** Records the device with the request's details and raises `suspicious_device` past DEVICE_MAX_ACCOUNTS accounts. */
async function recordDevice(db: AppEnv["Variables"]["db"], config: AppEnv["Variables"]["config"], subject: { userId: string; deviceFingerprint: string | null }, headers: Headers, now: number) {
  const fingerprint = subject.deviceFingerprint!;
  const clip = (v: string | null) => (v ? v.slice(0, 200) : null);
  const details = { userAgent: clip(headers.get("user-agent")), ip: clip(headers.get("cf-connecting-ip")), screen: clip(headers.get("x-screen-resolution")), timezone: clip(headers.get("x-timezone")) };
  const [, counted] = await db.batch([
    db
      .insert(deviceAccounts)
      .values({ fingerprint, userId: subject.userId, ...details, firstSeen: now, lastSeen: now })
      .onConflictDoUpdate({ target: [deviceAccounts.fingerprint, deviceAccounts.userId], set: { ...details, lastSeen: now } }),
    db.select({ n: sql<number>`count(*)` }).from(deviceAccounts).where(sql`${deviceAccounts.fingerprint} = ${fingerprint}`),
  ]);
  const findings = evaluateRules({ event: "device_seen", accountsOnDevice: counted[0]?.n ?? 0 }, config, subject, now);
  await applyStatements(db, await findingStatements(db, subject, findings, now));
}
