import { createMiddleware } from "hono/factory";
import { sql } from "drizzle-orm";
import type { AppEnv } from "../env";
import { deviceAccounts, fraudAlerts } from "../db/schema";
import { ApiError } from "../lib/errors";
import { deviceFingerprint } from "../lib/request";
import { newId } from "../lib/ids";
import { checkRules, isWhitelisted } from "./engine";

/**
 * For every value-moving route: the per-user rate limit (429 + Retry-After) from the user's Durable
 * Object before the handler, then — after the response is decided, off the request path — the
 * velocity rule and the device bookkeeping with the shared-device rule.
 */
export const valueMovingGuard = createMiddleware<AppEnv>(async (c, next) => {
  const { config, user, db } = c.var;
  const now = Date.now();
  const stub = c.env.USER_ACTIVITY.get(c.env.USER_ACTIVITY.idFromName(user.id));
  const gate = await stub.admit(now, config.RATE_LIMIT_PER_MINUTE);
  const fingerprint = deviceFingerprint(c);
  const subject = { userId: user.id, deviceFingerprint: fingerprint };
  const background = async () => {
    await checkRules(db, config, subject, { event: "value_request", attemptsLastMinute: gate.attemptsLastMinute }, now);
    if (fingerprint) await recordDevice(c.var.db, config.DEVICE_MAX_ACCOUNTS, subject, c.req.raw.headers, now);
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
async function recordDevice(db: AppEnv["Variables"]["db"], maxAccounts: number, subject: { userId: string; deviceFingerprint: string | null }, headers: Headers, now: number) {
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
  const accounts = counted[0]?.n ?? 0;
  if (accounts <= maxAccounts || (await isWhitelisted(db, subject, now))) return;
  // One alert per device and account count, however many requests see it.
  await db
    .insert(fraudAlerts)
    .values({ id: `device_${accounts}_${fingerprint.slice(0, 80)}`, userId: subject.userId, alertType: "suspicious_device", severity: "medium", details: { accounts, maxAccounts, rule: "suspicious_device", params: { maxAccounts } }, deviceFingerprint: fingerprint, createdAt: now })
    .onConflictDoNothing();
}
