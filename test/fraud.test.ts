import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import type { UserActivity } from "../src/durable/user-activity";
import { evaluateRules, RULES, ruleConfig, type Facts } from "../src/fraud/rules";
import { sql } from "drizzle-orm";
import { createDb } from "../src/db/client";
import { newId } from "../src/lib/ids";
import { adjust, adminToken, balanceOf, call, tokenFor, d1Before, expectLedgerOk, expectProblem, irisReferenceOf, kycForm, midtransNotification, newUser, postMidtransWebhook, setUserStatus, sim, verifiedUser } from "./helpers";

const config = loadConfig({});
const fired = (facts: Parameters<typeof evaluateRules>[0]) => evaluateRules(facts, config).map((f) => f.ruleId);
const alertsOf = async (userId: string) =>
  (await env.DB.prepare("select * from fraud_alerts where user_id = ? order by created_at").bind(userId).all<Record<string, any>>()).results;
const strict = { RATE_LIMIT_PER_MINUTE: "10", RAPID_TRANSACTIONS_PER_MINUTE: "10" };

describe("rules at and just past their thresholds", () => {
  it("rapid_transactions: more than 10 value-moving requests in a minute", () => {
    expect(fired({ event: "value_request", attemptsLastMinute: 10 })).toEqual([]);
    expect(fired({ event: "value_request", attemptsLastMinute: 11 })).toEqual(["rapid_transactions"]);
  });
  it("large_gift_to_new_account: ≥ 1,000 coins to an account younger than 7 days", () => {
    expect(fired({ event: "gift", coins: 999, recipientAgeDays: 1 })).toEqual([]);
    expect(fired({ event: "gift", coins: 1000, recipientAgeDays: 6.99 })).toEqual(["large_gift_to_new_account"]);
    expect(fired({ event: "gift", coins: 5000, recipientAgeDays: 7 })).toEqual([]);
  });
  it("multiple_failed_payments: ≥ 5 failed payments in an hour", () => {
    expect(fired({ event: "payment_failed", failedLastHour: 4, previousAlertAt: null })).toEqual([]);
    expect(fired({ event: "payment_failed", failedLastHour: 5, previousAlertAt: null })).toEqual(["multiple_failed_payments"]);
  });
  it("unusual_withdraw_pattern: ≥ 10 × the median past withdrawal", () => {
    expect(fired({ event: "withdrawal", grossIdr: 499_999, medianPastGrossIdr: 50_000 })).toEqual([]);
    expect(fired({ event: "withdrawal", grossIdr: 500_000, medianPastGrossIdr: 50_000 })).toEqual(["unusual_withdraw_pattern"]);
    expect(fired({ event: "withdrawal", grossIdr: 9_000_000, medianPastGrossIdr: null })).toEqual([]);
  });
  it("a rule decided inside a batch says in SQL what it says in TypeScript, at and around its thresholds (a NULL fact never fires)", async () => {
    const samples: Facts[] = [
      ...[0, 999, 1000, 5000].flatMap((coins) => [0, 6.99, 7, 30].map((recipientAgeDays) => ({ event: "gift" as const, coins, recipientAgeDays }))),
      ...[0, 4, 5, 6].map((failedLastHour) => ({ event: "payment_failed" as const, failedLastHour, previousAlertAt: null })),
      ...[0, 49_999, 500_000, 9_000_000].flatMap((grossIdr) => [null, 0, 50_000].map((medianPastGrossIdr) => ({ event: "withdrawal" as const, grossIdr, medianPastGrossIdr }))),
      ...[0, 3, 4].map((accountsOnDevice) => ({ event: "device_seen" as const, accountsOnDevice })),
      ...[0, 1].map((affiliateSharesBuyerDevice) => ({ event: "referral" as const, affiliateSharesBuyerDevice })),
    ];
    const db = createDb(env.DB);
    let compared = 0;
    for (const rule of RULES.filter((r) => r.firesSql)) {
      const params = rule.params(ruleConfig(config));
      for (const facts of samples.filter((f) => f.event === rule.event)) {
        const { event: _event, ...plain } = facts;
        const asSql = Object.fromEntries(Object.entries(plain).map(([k, v]) => [k, sql`${v}`]));
        const [row] = await db.all<{ fired: number | null }>(sql`select ${(rule.firesSql as (f: never, p: Record<string, number>) => ReturnType<typeof sql>)(asSql as never, params)} as fired`);
        expect(Boolean(row?.fired), `${rule.id} ${JSON.stringify(facts)}`).toBe((rule.fires as (f: never, p: Record<string, number>) => boolean)(facts as never, params));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(30);
  });
  it("thresholds are configuration and are recorded with each finding", () => {
    const custom = loadConfig({ RAPID_TRANSACTIONS_PER_MINUTE: "3" });
    const [finding] = evaluateRules({ event: "value_request", attemptsLastMinute: 4 }, custom);
    expect(finding).toMatchObject({ ruleId: "rapid_transactions", severity: "medium", level: 1, params: { maxPerMinute: 3 } });
  });
});

describe("spending limits", () => {
  it("unverified: Rp 50,000 per transaction and Rp 100,000 per day; verified: Rp 500,000 and Rp 1,000,000", async () => {
    const alice = await newUser("spender");
    const bob = await newUser("payee");
    await adjust(alice.id, 20_000);
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 501 } }), 403, "limit_exceeded");
    expect((await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 500 } })).status).toBe(201);
    expect((await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 500 } })).status).toBe(201);
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 1 } }), 403, "limit_exceeded");
    expect((await balanceOf(alice.token)).balance).toBe(19_000);

    const vip = await verifiedUser("vip");
    await adjust(vip.id, 20_000);
    expectProblem(await call("POST", "/api/wallet/transfer", { token: vip.token, body: { toUserId: bob.id, amount: 5001 } }), 403, "limit_exceeded");
    expect((await call("POST", "/api/wallet/transfer", { token: vip.token, body: { toUserId: bob.id, amount: 5000 } })).status).toBe(201);
    await expectLedgerOk();
  });

  it("30 concurrent spends within the per-transaction limit never exceed the daily limit together", async () => {
    const alice = await newUser("racer");
    const bob = await newUser("payee");
    await adjust(alice.id, 10_000);
    const results = await Promise.all(Array.from({ length: 30 }, () => call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 70 } })));
    const ok = results.filter((r) => r.status === 201).length;
    for (const r of results.filter((r) => r.status !== 201)) expect(r.json.code).toBe("limit_exceeded");
    expect(ok).toBe(14); // floor(100,000 / 7,000)
    const spent = await env.DB.prepare("select spent_idr from spend_counters where user_id = ?").bind(alice.id).first<{ spent_idr: number }>();
    expect(spent!.spent_idr).toBe(ok * 7000);
    expect(spent!.spent_idr).toBeLessThanOrEqual(100_000);
    expect((await balanceOf(bob.token)).balance).toBe(ok * 70);
    await expectLedgerOk();
  });
});

describe("rate limiting and velocity", () => {
  it("the 11th value-moving request in a minute gets 429 with Retry-After and raises rapid_transactions", async () => {
    const alice = await newUser("fast");
    const bob = await newUser("payee");
    await adjust(alice.id, 1000);
    const statuses: number[] = [];
    let limited;
    for (let i = 0; i < 11; i++) {
      const res = await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 1 }, vars: strict });
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(statuses.slice(0, 10).every((s) => s === 201)).toBe(true);
    expect(statuses[10]).toBe(429);
    expectProblem(limited!, 429, "rate_limited");
    expect(Number(limited!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect((await balanceOf(bob.token)).balance).toBe(10);
    const alerts = await alertsOf(alice.id);
    expect(alerts.filter((a) => a.alert_type === "rapid_transactions")).toHaveLength(1);
    expect(JSON.parse(alerts[0]!.details)).toMatchObject({ params: { maxPerMinute: 10 }, facts: { attemptsLastMinute: 11 } });
    // Reading is never rate limited.
    expect((await call("GET", "/api/wallet/balance", { token: alice.token, vars: strict })).status).toBe(200);
  });

  it("rapid_transactions counts the last minute, not a minute and a second: 11 requests over 60.5 s raise nothing", async () => {
    const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(`rapid-window-${Date.now()}`));
    await runInDurableObject<UserActivity, void>(stub, (o) => {
      const t0 = 1_700_000_040_000; // the start of a second
      const rules = ruleConfig(loadConfig({}));
      o.gate({ userId: "x", now: t0, limitPerMinute: 1000, rules, device: null });
      let last;
      for (let i = 0; i < 10; i++) last = o.gate({ userId: "x", now: t0 + 60_500 + i, limitPerMinute: 1000, rules, device: null });
      expect(last!.findings.map((f) => f.ruleId)).toEqual([]);
      // An eleventh inside the minute does.
      expect(o.gate({ userId: "x", now: t0 + 60_600, limitPerMinute: 1000, rules, device: null }).findings.map((f) => f.ruleId)).toEqual(["rapid_transactions"]);
    });
  });

  it("the window holds counts, not attempts: hammering refused requests adds no rows, and Retry-After is never early", async () => {
    const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(`window-${Date.now()}`));
    await runInDurableObject<UserActivity, void>(stub, (limiter, state) => {
      const t0 = 1_700_000_000_500;
      const results = Array.from({ length: 3 }, (_, i) => limiter.admit("kyc", t0 + i, 3, 60_000));
      expect(results.every((r) => r.allowed)).toBe(true);
      // 2,000 refused attempts over the next 10 seconds: the velocity count sees every one of them.
      let last;
      for (let i = 0; i < 2000; i++) last = limiter.admit("kyc", t0 + 5 * i, 3, 60_000);
      expect(last).toMatchObject({ allowed: false, attemptsInWindow: 2003 });
      const rows = () => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM rate_window").one().n;
      expect(rows()).toBeLessThanOrEqual(11);
      // The admitted attempts were made at t0 .. t0+2; the slot frees once their whole second has left the window.
      const refused = limiter.admit("kyc", t0 + 10_000, 3, 60_000);
      const exactExpiry = t0 + 60_000;
      expect(t0 + 10_000 + refused.retryAfterSeconds * 1000).toBeGreaterThanOrEqual(exactExpiry);
      expect(refused.retryAfterSeconds).toBeLessThanOrEqual(51);
      expect(limiter.admit("kyc", t0 + 10_000 + refused.retryAfterSeconds * 1000, 3, 60_000).allowed).toBe(true);
      // An hour's window is kept in minutes: still a handful of rows, never early either.
      for (let i = 0; i < 500; i++) limiter.admit("campaign", t0 + i * 1000, 1, 3_600_000);
      const hourly = limiter.admit("campaign", t0 + 500_000, 1, 3_600_000);
      expect(hourly.allowed).toBe(false);
      expect(t0 + 500_000 + hourly.retryAfterSeconds * 1000).toBeGreaterThanOrEqual(t0 + 3_600_000);
      expect(rows()).toBeLessThanOrEqual(11 + 10);
    });
  });

  it("a whitelisted user skips the rules but never the limits", async () => {
    const alice = await newUser("trusted");
    const bob = await newUser("payee");
    await adjust(alice.id, 5000);
    const wl = await call("POST", "/api/fraud/whitelist", { token: await adminToken(), body: { userId: alice.id, reason: "load test account" } });
    expect(wl.status, wl.text).toBe(201);
    for (let i = 0; i < 12; i++) await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 1 }, vars: { RAPID_TRANSACTIONS_PER_MINUTE: "10" } });
    expect(await alertsOf(alice.id)).toHaveLength(0);
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 501 } }), 403, "limit_exceeded");
    const expired = await call("POST", "/api/fraud/whitelist", { token: await adminToken(), body: { userId: alice.id, reason: "too late", expiresAt: "2020-01-01T00:00:00Z" } });
    expectProblem(expired, 400, "validation_failed");
    expectProblem(await call("POST", "/api/fraud/whitelist", { token: await adminToken(), body: { reason: "nobody" } }), 400, "validation_failed");
  });

  it("a whitelisted device only quiets the rule about devices: an account sending its fingerprint header is judged by the user rules like any other", async () => {
    const fp = `lab-device-${Date.now()}`;
    expect((await call("POST", "/api/fraud/whitelist", { token: await adminToken(), body: { deviceFingerprint: fp, reason: "shared QA lab device" } })).status).toBe(201);
    const headers = { "x-device-fingerprint": fp };
    // Its own rule: more than DEVICE_MAX_ACCOUNTS accounts on it raise nothing.
    const lab = await Promise.all(Array.from({ length: 5 }, () => newUser("lab")));
    for (const u of lab) expect((await call("GET", "/api/wallet/balance", { token: u.token, headers })).status).toBe(200);
    for (const u of lab) await call("POST", "/api/wallet/transfer", { token: u.token, body: { toUserId: lab[0]!.id === u.id ? lab[1]!.id : lab[0]!.id, amount: 1 }, headers });
    for (const u of lab) expect((await alertsOf(u.id)).map((a) => a.alert_type)).not.toContain("suspicious_device");
    // Not the user rules.
    const mallory = await newUser("spoof");
    const bob = await newUser("payee");
    await adjust(mallory.id, 1000);
    for (let i = 0; i < 12; i++) await call("POST", "/api/wallet/transfer", { token: mallory.token, body: { toUserId: bob.id, amount: 1 }, vars: { RAPID_TRANSACTIONS_PER_MINUTE: "10" }, headers });
    expect((await alertsOf(mallory.id)).map((a) => a.alert_type)).toContain("rapid_transactions");
  });

  it("whitelist entries can be listed and ended by any admin: the subject is judged by the rules again, the entry stays on record", async () => {
    const alice = await newUser("trusted-then-not");
    const bob = await newUser("payee");
    await adjust(alice.id, 5000);
    const granted = await call("POST", "/api/fraud/whitelist", { token: await tokenFor("admin-granting", "admin"), body: { userId: alice.id, reason: "load test account" } });
    expect(granted.status, granted.text).toBe(201);
    const other = await tokenFor("admin-other", "admin");
    const listed = await call("GET", "/api/fraud/whitelist?active=true&limit=100", { token: other });
    expect(listed.json.items).toContainEqual(expect.objectContaining({ id: granted.json.id, userId: alice.id, createdBy: "admin-granting", expiresAt: null }));
    const ended = await call("DELETE", `/api/fraud/whitelist/${granted.json.id}`, { token: other });
    expect(ended.status, ended.text).toBe(200);
    expect(ended.json.expiresAt).not.toBeNull();
    expectProblem(await call("DELETE", `/api/fraud/whitelist/${granted.json.id}`, { token: other }), 409, "conflict");
    expectProblem(await call("DELETE", "/api/fraud/whitelist/01AAAAAAAAAAAAAAAAAAAAAAAA", { token: other }), 404, "not_found");
    expectProblem(await call("DELETE", `/api/fraud/whitelist/${granted.json.id}`, { token: alice.token }), 403, "forbidden");
    expect((await call("GET", "/api/fraud/whitelist?active=false&limit=100", { token: other })).json.items.map((e: { id: string }) => e.id)).toContain(granted.json.id);
    // Judged again: a burst past RAPID_TRANSACTIONS_PER_MINUTE alerts now.
    for (let i = 0; i < 12; i++) await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 1 }, vars: { RAPID_TRANSACTIONS_PER_MINUTE: "10", RATE_LIMIT_PER_MINUTE: "100" } });
    expect((await alertsOf(alice.id)).map((a) => a.alert_type)).toContain("rapid_transactions");
    const audit = await env.DB.prepare("select actor_id, json_extract(details, '$.userId') as user_id from audit_log where action = 'fraud.whitelist_revoked' and subject_id = ?").bind(granted.json.id).all();
    // The entry it ended names whom it was about.
    expect(audit.results).toEqual([{ actor_id: "admin-other", user_id: alice.id }]);
  });

  it("a device used by more than 3 accounts raises suspicious_device, once per count", async () => {
    const fp = `fp-${Date.now()}`;
    const payee = await newUser("payee");
    const users = await Promise.all(Array.from({ length: 4 }, () => newUser("dev")));
    for (const u of users) {
      await adjust(u.id, 10);
      await call("POST", "/api/wallet/transfer", { token: u.token, body: { toUserId: payee.id, amount: 1 }, headers: { "x-device-fingerprint": fp, "user-agent": "test-agent/1", "x-screen-resolution": "1080x2400", "x-timezone": "Asia/Jakarta" } });
    }
    await call("POST", "/api/wallet/transfer", { token: users[3]!.token, body: { toUserId: payee.id, amount: 1 }, headers: { "x-device-fingerprint": fp } });
    const alerts = (await env.DB.prepare("select * from fraud_alerts where device_fingerprint = ? and alert_type = 'suspicious_device'").bind(fp).all()).results;
    expect(alerts).toHaveLength(1);
    const seen = await env.DB.prepare("select * from device_accounts where fingerprint = ? and user_id = ?").bind(fp, users[0]!.id).first<Record<string, any>>();
    expect(seen).toMatchObject({ user_agent: "test-agent/1", screen: "1080x2400", timezone: "Asia/Jakarta" });
    const tx = await env.DB.prepare("select device_fingerprint from transactions where user_id = ? and type = 'transfer'").bind(users[0]!.id).first<{ device_fingerprint: string }>();
    expect(tx?.device_fingerprint).toBe(fp);
  });
});

describe("actions", () => {
  it("five failed payments in an hour freeze the account: withdraw refused → review clears → withdraw allowed", async () => {
    const user = await verifiedUser("failer");
    await adjust(user.id, 2000);
    for (let i = 0; i < 7; i++) {
      const order = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
      await postMidtransWebhook(await midtransNotification(order.json.orderId, { transaction_status: "deny" }));
    }
    // The 5th, 6th and 7th failures are one finding of the hour: one alert, one freeze.
    const alerts = (await alertsOf(user.id)).filter((a) => a.alert_type === "multiple_failed_payments");
    expect(alerts).toHaveLength(1);
    const freezes = await env.DB.prepare("select count(*) as n from audit_log where action = 'fraud.action_level_2' and subject_id = ?").bind(user.id).first<{ n: number }>();
    expect(freezes?.n).toBe(1);
    expect(alerts[0]).toMatchObject({ severity: "high", action_taken: "frozen" });
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } }), 403, "account_frozen");
    // Money in is still allowed for a frozen account.
    expect((await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } })).status).toBe(201);
    const review = await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId: alerts[0]!.id, status: "false_positive", action: "cleared" } });
    expect(review.status, review.text).toBe(200);
    expect(review.json).toMatchObject({ status: "false_positive", actionTaken: "cleared", reviewedBy: "admin-root" });
    expect((await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } })).status).toBe(202);
    const audit = await env.DB.prepare("select actor_id from audit_log where action = 'fraud.review' and subject_id = ?").bind(alerts[0]!.id).first<{ actor_id: string }>();
    expect(audit?.actor_id).toBe("admin-root");
  });

  it("clearing one alert does not lift a freeze another alert still open imposed; clearing that one does", async () => {
    const user = await newUser("two-alerts");
    await adjust(user.id, 2000);
    // An older, unrelated alert (logged only) ...
    const older = `01OLDER${user.id.replace(/[^A-Z0-9]/gi, "").slice(0, 19).toUpperCase()}`.padEnd(26, "0");
    await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'rapid_transactions', 'medium', '{}', 'open', ?)").bind(older, user.id, Date.now() - 60_000).run();
    // ... then a freeze by multiple_failed_payments.
    for (let i = 0; i < 5; i++) {
      const order = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
      await postMidtransWebhook(await midtransNotification(order.json.orderId, { transaction_status: "deny" }));
    }
    const freezing = (await alertsOf(user.id)).find((a) => a.alert_type === "multiple_failed_payments")!;
    expect(freezing).toMatchObject({ action_taken: "frozen", status: "open" });
    const status = async () => (await env.DB.prepare("select status from users where id = ?").bind(user.id).first<{ status: string }>())!.status;
    expect(await status()).toBe("frozen");
    const admin = await adminToken();
    expect((await call("POST", "/api/fraud/review", { token: admin, body: { alertId: older, status: "false_positive", action: "cleared" } })).status).toBe(200);
    expect(await status()).toBe("frozen");
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } }), 403, "account_frozen");
    expect((await call("POST", "/api/fraud/review", { token: admin, body: { alertId: freezing.id, status: "false_positive", action: "cleared" } })).status).toBe(200);
    expect(await status()).toBe("active");
  });

  it("clearing an alert that imposed no freeze leaves a freeze alone: one confirmed on review, or an admin's by hand; a freeze lifted by hand no longer holds one", async () => {
    const status = async (id: string) => (await env.DB.prepare("select status from users where id = ?").bind(id).first<{ status: string }>())!.status;
    const alertAbout = async (userId: string, tag: string, action: string | null = null) => {
      const id = `AL-${tag}-${userId}`;
      await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, action_taken, action_decided_at, created_at) values (?, ?, 'rapid_transactions', 'low', '{}', 'open', ?, ?, ?)")
        .bind(id, userId, action, action ? Date.now() : null, Date.now())
        .run();
      return id;
    };
    const review = async (alertId: string, status: string, action: string) => {
      const r = await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId, status, action } });
      expect(r.status, r.text).toBe(200);
    };
    // A freeze an admin confirmed when resolving its alert; then an unrelated alert is cleared.
    const confirmed = await newUser("frz-confirmed");
    const freezing = await alertAbout(confirmed.id, "freezing");
    await review(freezing, "investigating", "frozen");
    await review(freezing, "resolved", "frozen");
    await review(await alertAbout(confirmed.id, "noise"), "false_positive", "cleared");
    expect(await status(confirmed.id)).toBe("frozen");
    // A freeze by hand; then an unrelated alert is cleared.
    const manual = await newUser("frz-manual");
    const noise = await alertAbout(manual.id, "noise");
    expect((await call("POST", `/api/admin/users/${manual.id}/status`, { token: await adminToken(), body: { status: "frozen", reason: "chargeback investigation" } })).status).toBe(200);
    await review(noise, "false_positive", "cleared");
    expect(await status(manual.id)).toBe("frozen");
    // A freeze lifted by hand holds nothing: a later freeze by another alert is lifted by clearing that alert.
    expect((await call("POST", `/api/admin/users/${confirmed.id}/status`, { token: await adminToken(), body: { status: "active", reason: "investigation closed" } })).status).toBe(200);
    const again = await alertAbout(confirmed.id, "again");
    await review(again, "investigating", "frozen");
    await review(again, "false_positive", "cleared");
    expect(await status(confirmed.id)).toBe("active");
  });

  it("a rule that freezes a user already frozen decides nothing new: its alert counts no second freeze", async () => {
    const user = await newUser("refrozen");
    expect((await call("POST", `/api/admin/users/${user.id}/status`, { token: await adminToken(), body: { status: "frozen", reason: "investigation" } })).status).toBe(200);
    for (let i = 0; i < 5; i++) {
      const order = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
      await postMidtransWebhook(await midtransNotification(order.json.orderId, { transaction_status: "deny" }));
    }
    const alert = (await alertsOf(user.id)).find((a) => a.alert_type === "multiple_failed_payments");
    expect(alert).toMatchObject({ action_taken: "frozen", action_decided_at: null });
  });

  it("two admins reviewing one alert at once: one decides, the other is told it was reviewed meanwhile (409)", async () => {
    const user = await newUser("review-race");
    const id = `AL-race-${user.id}`;
    await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'multiple_failed_payments', 'high', '{}', 'open', ?)").bind(id, user.id, Date.now()).run();
    const [a, b] = [await tokenFor(`admin-a-${user.id}`, "admin"), await tokenFor(`admin-b-${user.id}`, "admin")];
    const answers = await Promise.all([
      call("POST", "/api/fraud/review", { token: a, body: { alertId: id, status: "resolved", action: "frozen" } }),
      call("POST", "/api/fraud/review", { token: b, body: { alertId: id, status: "false_positive", action: "cleared" } }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    const won = answers.find((r) => r.status === 200)!.json;
    const row = await env.DB.prepare("select action_taken from fraud_alerts where id = ?").bind(id).first<{ action_taken: string }>();
    expect(row!.action_taken).toBe(won.actionTaken);
    const user_ = await env.DB.prepare("select status from users where id = ?").bind(user.id).first<{ status: string }>();
    expect(user_!.status).toBe(won.actionTaken === "frozen" ? "frozen" : "active");
  });

  it("an admin's device entry does not exempt their own account, even made before they used the device", async () => {
    const admin = await newUser("dev-admin");
    const self = await tokenFor(admin.id, "admin");
    const fingerprint = `dev-${admin.id}`;
    expect((await call("POST", "/api/fraud/whitelist", { token: self, body: { deviceFingerprint: fingerprint, reason: "not used by me yet" } })).status).toBe(201);
    for (let i = 0; i < 3; i++) await call("POST", "/api/activity", { token: (await newUser("sib")).token, headers: { "x-device-fingerprint": fingerprint }, body: { events: [{ type: "view" }] } });
    // The admin's own account is the 4th on the device: their own entry does not quiet the rule for them.
    await call("POST", "/api/activity", { token: admin.token, headers: { "x-device-fingerprint": fingerprint }, body: { events: [{ type: "view" }] } });
    const raised = await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = 'suspicious_device'").bind(admin.id).first<{ n: number }>();
    expect(raised!.n).toBe(1);
  });

  /** A completed 500-coin withdrawal sets the median; one of `amount` (≥ 5,000: 10×) is then refused for verification. */
  async function unusualWithdrawalRefused(user: { id: string; token: string }, amount = 5000) {
    await adjust(user.id, 100_000);
    const first = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } });
    const ref = await irisReferenceOf(first.json.withdrawalId);
    const built = await sim("POST", `/_sim/iris/${ref}/notify`, { status: "completed", deliver: false });
    await call("POST", "/api/payment/midtrans/iris-webhook", { rawBody: built.json.raw, headers: { "content-type": "application/json", ...built.json.headers } });
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount } }), 403, "verification_required");
  }

  it("a clearance lets one unusual withdrawal through, whatever the amounts: a smaller unusual one uses it up", async () => {
    for (const clear of ["review", "recheck"] as const) {
      const user = await verifiedUser(`once-${clear}`);
      await unusualWithdrawalRefused(user, 6000);
      if (clear === "review") {
        const alert = (await alertsOf(user.id)).find((a) => a.alert_type === "unusual_withdraw_pattern")!;
        expect((await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId: alert.id, status: "resolved", action: "cleared" } })).status).toBe(200);
      } else {
        expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
        expect((await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "verified" } })).status).toBe(200);
      }
      // A withdrawal Iris refuses (nothing paid) gives the clearance back.
      await sim("POST", "/_sim/faults", { target: "iris", mode: "reject" });
      expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 5000 } }), 502, "gateway_error");
      expect((await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 5000 } })).status).toBe(202);
      expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 6000 } }), 403, "verification_required");
    }
  });

  it("a re-check clears only the alerts still waiting for it: not an older one an admin reviewed and did not clear", async () => {
    const user = await verifiedUser("recheck-stale");
    await unusualWithdrawalRefused(user, 50_000);
    const alert = (await alertsOf(user.id)).find((a) => a.alert_type === "unusual_withdraw_pattern")!;
    expect((await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId: alert.id, status: "resolved", action: "warned" } })).status).toBe(200);
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 5000 } }), 403, "verification_required");
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
    expect((await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "verified" } })).status).toBe(200);
    // The re-check lifted the hold on the account; the 50,000 an admin reviewed and did not clear stays refused.
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 50_000 } }), 403, "verification_required");
  });

  it("a withdrawal ≥ 10× the median past one goes through after the user passes the KYC re-check it asked for (SPEC §12 level 3)", async () => {
    const user = await verifiedUser("recheck-wd");
    await unusualWithdrawalRefused(user);
    // The re-check: submitted by the user, verified by an admin.
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
    expect((await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "verified" } })).status).toBe(200);
    const cleared = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 5000 } });
    expect(cleared.status, cleared.text).toBe(202);
    // Once: the next unusual one asks again.
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 5000 } }), 403, "verification_required");
  });

  it("a withdrawal ≥ 10× the median past one requires verification until an admin clears it", async () => {
    const user = await verifiedUser("whale");
    await unusualWithdrawalRefused(user);
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } }), 403, "verification_required");
    expect((await balanceOf(user.token)).lockedBalance).toBe(0);
    const alert = (await alertsOf(user.id)).find((a) => a.alert_type === "unusual_withdraw_pattern")!;
    await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId: alert.id, status: "resolved", action: "cleared" } });
    expect((await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } })).status).toBe(202);
    // The verified withdrawal itself now goes through (the review cleared it for up to its amount, for a day)...
    const cleared = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 5000 } });
    expect(cleared.status, cleared.text).toBe(202);
    // ...once: the next unusual one, and a larger one, need verification again.
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 5000 } }), 403, "verification_required");
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 60_000 } }), 403, "verification_required");
  });

  it("a ban by review refuses everything but reading, and is permanent", async () => {
    const user = await newUser("villain");
    const other = await newUser("payee");
    await adjust(user.id, 100);
    const order = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
    const tampered = await midtransNotification(order.json.orderId, { transaction_status: "settlement", gross_amount: "1.00" });
    await postMidtransWebhook(tampered);
    const alert = (await alertsOf(user.id)).find((a) => a.alert_type === "webhook_amount_mismatch")!;
    const token = await adminToken();
    expect((await call("POST", "/api/fraud/review", { token, body: { alertId: alert.id, status: "resolved", action: "banned" } })).status).toBe(200);
    expectProblem(await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: other.id, amount: 1 } }), 403, "account_banned");
    expectProblem(await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } }), 403, "account_banned");
    expectProblem(await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view" }] } }), 403, "account_banned");
    expectProblem(await call("GET", "/api/wallet/kyc/status", { token: user.token }), 403, "account_banned");
    expect((await call("GET", "/api/wallet/balance", { token: user.token })).status).toBe(200);
    expect((await call("GET", "/api/wallet/transactions", { token: user.token })).status).toBe(200);
    expectProblem(await call("POST", "/api/fraud/review", { token, body: { alertId: alert.id, status: "false_positive", action: "cleared" } }), 409, "conflict");
    // A later "warned" review (allowed on a banned user) keeps the alert's ban on record, so stats still count it.
    const weeksBefore = (await call("GET", "/api/fraud/stats", { token })).json.bansPerWeek;
    const warned = await call("POST", "/api/fraud/review", { token, body: { alertId: alert.id, status: "resolved", action: "warned" } });
    expect(warned.json).toMatchObject({ actionTaken: "banned" });
    expect((await call("GET", "/api/fraud/stats", { token })).json.bansPerWeek).toEqual(weeksBefore);
  });

  it("a review that clears or freezes is refused when a ban commits between its read and its batch: the ban stands", async () => {
    for (const action of ["cleared", "frozen"] as const) {
      const user = await newUser("raced");
      const alertId = newId(Date.now());
      await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, created_at) values (?, ?, 'manual_review', 'high', '{}', ?)").bind(alertId, user.id, Date.now()).run();
      const db = d1Before(`update users set status = 'banned' where id = '${user.id}'`, /update "fraud_alerts"/);
      expectProblem(await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId, status: "resolved", action }, db }), 409, "conflict");
      const row = await env.DB.prepare("select status from users where id = ?").bind(user.id).first<{ status: string }>();
      expect(row?.status).toBe("banned");
      const alertRow = await env.DB.prepare("select status from fraud_alerts where id = ?").bind(alertId).first<{ status: string }>();
      expect(alertRow?.status).toBe("open");
    }
  });
});

describe("alerts API", () => {
  it("lists with filters and pages, admin only", async () => {
    const user = await newUser("listed");
    await setUserStatus(user.id, "active");
    for (let i = 0; i < 3; i++) {
      const order = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
      await postMidtransWebhook(await midtransNotification(order.json.orderId, { transaction_status: "settlement", gross_amount: "2.00" }));
    }
    const token = await adminToken();
    const first = await call("GET", `/api/fraud/alerts?userId=${user.id}&limit=2`, { token });
    expect(first.json.items).toHaveLength(2);
    const second = await call("GET", `/api/fraud/alerts?userId=${user.id}&limit=2&cursor=${first.json.nextCursor}`, { token });
    expect(second.json.items).toHaveLength(1);
    expect(new Set([...first.json.items, ...second.json.items].map((a: any) => a.id)).size).toBe(3);
    expect((await call("GET", `/api/fraud/alerts?severity=critical&alertType=webhook_amount_mismatch&userId=${user.id}`, { token })).json.items).toHaveLength(3);
    for (const path of ["/api/fraud/alerts", "/api/fraud/stats"]) expectProblem(await call("GET", path, { token: user.token }), 403, "forbidden");
    expectProblem(await call("POST", "/api/fraud/whitelist", { token: user.token, body: { userId: user.id, reason: "me please" } }), 403, "forbidden");
  });

  it("bans per week are counted in business weeks (a ban on Monday 03:00 WIB is that Monday's week)", async () => {
    const user = await newUser("week");
    const monday = Date.parse("2021-01-04T03:00:00+07:00");
    await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, action_taken, action_decided_at, created_at) values (?, ?, 'rapid_transactions', 'medium', '{}', 'resolved', 'banned', ?, ?)").bind(`AL-week-${user.id}`, user.id, monday, monday).run();
    const stats = await call("GET", "/api/fraud/stats", { token: await adminToken() });
    expect(Object.keys(stats.json.bansPerWeek).filter((w) => w.startsWith("2021-W0"))).toEqual(["2021-W01"]);
  });

  it("stats match counts computed independently from the alerts table", async () => {
    const stats = await call("GET", "/api/fraud/stats", { token: await adminToken() });
    expect(stats.status).toBe(200);
    const rows = (await env.DB.prepare("select alert_type, severity, status, action_taken, action_decided_at, reviewed_at, created_at from fraud_alerts").all<Record<string, any>>()).results;
    const countBy = (key: string) => rows.reduce<Record<string, number>>((acc, r) => (r[key] === null ? acc : { ...acc, [r[key]]: (acc[r[key]] ?? 0) + 1 }), {});
    expect(stats.json.total).toBe(rows.length);
    expect(stats.json.byType).toEqual(countBy("alert_type"));
    expect(stats.json.bySeverity).toEqual(countBy("severity"));
    expect(stats.json.byStatus).toEqual(countBy("status"));
    const reviewed = rows.filter((r) => r.status === "resolved" || r.status === "false_positive").length;
    const fp = rows.filter((r) => r.status === "false_positive").length;
    expect(stats.json.falsePositiveRate).toBeCloseTo(reviewed === 0 ? 0 : fp / reviewed, 10);
    expect(stats.json.freezes).toBe(rows.filter((r) => r.action_taken === "frozen" && r.action_decided_at !== null).length);
    const bans = rows.filter((r) => r.action_taken === "banned" && r.action_decided_at !== null).length;
    expect(Object.values(stats.json.bansPerWeek as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(bans);
  });
});
