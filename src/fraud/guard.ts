import { sql } from "drizzle-orm";
import type { Context, Next } from "hono";
import { createMiddleware } from "hono/factory";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { deviceAccounts } from "../db/schema";
import type { GateResult } from "../durable/user-activity";
import type { AppEnv, Sidecar } from "../env";
import { applyStatements, type Statement } from "../ledger/executor";
import { ApiError } from "../lib/errors";
import { rateLimit } from "../lib/rate-limit";
import { deviceFingerprint } from "../lib/request";
import { alertWhen, dedupeKey } from "./alerts";
import { findingStatements, whitelistedSql, type Subject } from "./engine";
import { ruleById, ruleConfig } from "./rules";

/**
 * For every value-moving route, one Durable Object call before the handler: the per-user rate limit
 * (429 + Retry-After), the velocity rules and device novelty, all remembered by the user's object. What
 * must reach D1 (an alert raised for the first time in its window, a device new for this user) is
 * returned as statements that ride in the request's own batch; in steady state a request costs D1
 * nothing beyond that batch, and a refused one nothing at all.
 */
export const valueMovingGuard = createMiddleware<AppEnv>(async (c, next) => {
  const { config, user, db } = c.var;
  const now = Date.now();
  const fingerprint = deviceFingerprint(c);
  const stub = c.env.USER_ACTIVITY.get(c.env.USER_ACTIVITY.idFromName(user.id));
  const gate = await stub.gate({ userId: user.id, now, limitPerMinute: config.RATE_LIMIT_PER_MINUTE, rules: ruleConfig(config), device: fingerprint });
  const statements = await gateStatements(db, config, { userId: user.id, deviceFingerprint: fingerprint }, gate, c.req.raw.headers, now);
  if (!gate.allowed) {
    await applyStatements(db, statements);
    throw new ApiError("rate_limited", `At most ${config.RATE_LIMIT_PER_MINUTE} value-moving requests per minute.`, { headers: { "retry-after": String(gate.retryAfterSeconds) } });
  }
  await withSidecar(c, statements, next);
});

/**
 * Activity reports' rate limit, which also notes the request's device: one new for the caller gets its
 * record and the shared-device rule (accounts that only earn are linked too), riding in the report's batch.
 */
export const activityGuard = createMiddleware<AppEnv>(async (c, next) => {
  const { config, user, db } = c.var;
  const fingerprint = deviceFingerprint(c);
  const gate = await rateLimit(c, "activity", config.ACTIVITY_REQUESTS_PER_MINUTE, 60_000, "activity reports", fingerprint);
  const subject = { userId: user.id, deviceFingerprint: fingerprint };
  await withSidecar(c, gate.newDevice && fingerprint ? await deviceStatements(db, config, subject, c.req.raw.headers, Date.now()) : [], next);
});

/**
 * Hands the gate's D1 statements to the route (`c.var.sidecar`), to ride in its own batch. If the request's
 * batch did not carry them (it failed or was refused before it, or the route has none) they are written
 * alone, once: the user's object already remembers what they record.
 */
async function withSidecar(c: Context<AppEnv>, statements: Statement[], next: Next) {
  const sidecar: Sidecar = { statements, applied: false };
  c.set("sidecar", sidecar);
  try {
    await next();
  } finally {
    if (!sidecar.applied && sidecar.statements.length > 0) {
      await applyStatements(c.var.db, sidecar.statements).catch((e) => console.error("fraud bookkeeping failed", e instanceof Error ? e.message : String(e)));
    }
  }
}

/** The D1 statements a gate result calls for: first-time alerts of its findings, and a new device's record with the shared-device rule. */
async function gateStatements(db: Db, config: Config, subject: Subject, gate: GateResult, headers: Headers, now: number): Promise<Statement[]> {
  const out = await findingStatements(db, subject, gate.findings, now);
  if (gate.newDevice && subject.deviceFingerprint) out.push(...(await deviceStatements(db, config, subject, headers, now)));
  return out;
}

/**
 * A (device, user) pair seen for the first time: its record with the request's details, and
 * `suspicious_device` when the device now has more than DEVICE_MAX_ACCOUNTS accounts — decided in SQL
 * from the device's accounts at commit time; one alert per device and account.
 */
async function deviceStatements(db: Db, config: Config, subject: Subject, headers: Headers, now: number): Promise<Statement[]> {
  const fingerprint = subject.deviceFingerprint!;
  const clip = (v: string | null) => (v ? v.slice(0, 200) : null);
  const details = { userAgent: clip(headers.get("user-agent")), ip: clip(headers.get("cf-connecting-ip")), screen: clip(headers.get("x-screen-resolution")), timezone: clip(headers.get("x-timezone")) };
  const rule = ruleById("suspicious_device", "device_seen");
  const params = rule.params(config);
  const accounts = sql`(select count(*) from ${deviceAccounts} where ${deviceAccounts.fingerprint} = ${fingerprint})`;
  return [
    db.insert(deviceAccounts).values({ fingerprint, userId: subject.userId, ...details, firstSeen: now, lastSeen: now }).onConflictDoNothing(),
    alertWhen(
      db,
      {
        userId: subject.userId,
        alertType: rule.id,
        severity: rule.severity,
        details: sql`json_object('rule', ${rule.id}, 'level', ${rule.level}, 'params', json(${JSON.stringify(params)}), 'facts', json_object('accountsOnDevice', ${accounts}))`,
        deviceFingerprint: fingerprint,
        dedupeKey: await dedupeKey(rule.id, fingerprint, subject.userId),
      },
      now,
      sql`${rule.firesSql!({ accountsOnDevice: accounts }, params)} and not ${whitelistedSql(subject, now, rule.about)}`,
    ),
  ];
}
