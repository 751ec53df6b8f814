import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { GatewayLatency } from "../src/metrics/gateway-latency";
import { histogramPercentile } from "../src/metrics/metrics.service";
import { addDays, businessDay, dayStart } from "../src/lib/time";
import { adminToken, call, expectProblem, midtransNotification, newUser, postMidtransWebhook } from "./helpers";

const TZ = "+07:00";

/** Replaces the recorder's calls of [start, end) (whole minutes) with calls of the given latencies at `at`. */
async function latencies(start: number, end: number, ms: number[], at: number) {
  await runInDurableObject(env.GATEWAY_LATENCY.get(env.GATEWAY_LATENCY.idFromName("gateways")), (_, state) => {
    state.storage.sql.exec("DELETE FROM call_counts WHERE minute >= ? AND minute < ?", start / 60_000, end / 60_000);
  });
  await env.GATEWAY_LATENCY.get(env.GATEWAY_LATENCY.idFromName("gateways")).record(ms.map((m) => ({ gateway: "midtrans", operation: "status", ms: m, outcome: "ok" as const, at })));
}

async function paidOrder(token: string, packageId: string, status = "settlement") {
  const order = await call("POST", "/api/payment/midtrans/create", { token, body: { packageId } });
  expect(order.status, order.text).toBe(201);
  if (status !== "pending") await postMidtransWebhook(await midtransNotification(order.json.orderId, { transaction_status: status }));
  return order.json.orderId as string;
}

describe("metrics rules", () => {
  it("nearest-rank percentiles of a latency histogram", () => {
    expect(histogramPercentile({}, 0.5)).toBeNull();
    expect(histogramPercentile({ "10": 1, "20": 1, "30": 1, "40": 1, "1000": 1 }, 0.5)).toBe(30);
    expect(histogramPercentile({ "10": 1, "20": 1, "30": 1, "40": 1, "1000": 1 }, 0.95)).toBe(1000);
    expect(histogramPercentile({ "5": 3, "7": 1 }, 0.75)).toBe(5);
  });
});

describe("GET /api/admin/metrics", () => {
  it("a seeded scenario over yesterday (rolled up) and today (live): every figure as computed by hand", async () => {
    const admin = await adminToken();
    const today = businessDay(Date.now(), TZ);
    const yesterday = addDays(today, -1);

    // Yesterday, written directly: two users first seen, one paid Rp 20,000; two gateway calls (5 and 150 ms).
    const y = dayStart(yesterday, TZ) + 3_600_000;
    await env.DB.batch([
      env.DB.prepare("insert into users (id, status, kyc_status, verification_required, first_paid_at, created_at, updated_at) values ('m-y1', 'active', 'none', 0, ?1, ?1, ?1), ('m-y2', 'active', 'none', 0, null, ?1, ?1)").bind(y),
      env.DB.prepare("insert into payment_orders (id, user_id, kind, gateway, package_id, amount_idr, coins, status, created_at, updated_at, paid_at) values ('ORD-M-Y1', 'm-y1', 'coin_package', 'midtrans', 'pkg_100', 20000, 100, 'paid', ?1, ?1, ?1)").bind(y),
    ]);
    await latencies(dayStart(yesterday, TZ), dayStart(today, TZ), [5, 150], y);
    const rolled = await call("POST", `/api/admin/metrics/${yesterday}/rollup`, { token: admin });
    expect(rolled.json).toEqual({ date: yesterday, computed: true });

    // Today, through the API: a and b pay, c's payment is denied, d's stays pending; a sends e 2 × 50 coins
    // (the second one trips rapid_transactions), a unlocks f's content (f earns 140 coins = Rp 14,000); b's
    // deposit is charged back (an alert); an admin freezes b over it and bans a over the velocity alert.
    const [a, b, c, d, e, f] = [await newUser("m-a"), await newUser("m-b"), await newUser("m-c"), await newUser("m-d"), await newUser("m-e"), await newUser("m-f")];
    await paidOrder(a.token, "pkg_500");
    const bOrder = await paidOrder(b.token, "pkg_100");
    await paidOrder(c.token, "pkg_100", "deny");
    await paidOrder(d.token, "pkg_100", "pending");
    const vars = { RAPID_TRANSACTIONS_PER_MINUTE: "1", RATE_LIMIT_PER_MINUTE: "100" };
    for (let i = 0; i < 2; i++) expect((await call("POST", "/api/wallet/transfer", { token: a.token, body: { toUserId: e.id, amount: 50 }, vars })).status).toBe(201);
    await call("PUT", "/api/content/m-video/premium", { token: f.token, body: { price: 200 } });
    expect((await call("POST", "/api/content/m-video/unlock", { token: a.token })).status).toBe(201);
    expect((await postMidtransWebhook(await midtransNotification(bOrder, { transaction_status: "chargeback" }))).json.outcome).toBe("reversed");
    const alerts = (await call("GET", "/api/fraud/alerts?limit=50", { token: admin })).json.items as { id: string; userId: string; alertType: string }[];
    const chargeback = alerts.find((x) => x.userId === b.id && x.alertType === "chargeback")!;
    const rapid = alerts.find((x) => x.userId === a.id && x.alertType === "rapid_transactions")!;
    expect(alerts.filter((x) => [a.id, b.id, c.id, d.id, e.id, f.id].includes(x.userId ?? ""))).toHaveLength(2);
    expect((await call("POST", "/api/fraud/review", { token: admin, body: { alertId: chargeback.id, status: "resolved", action: "frozen" } })).status).toBe(200);
    expect((await call("POST", "/api/fraud/review", { token: admin, body: { alertId: rapid.id, status: "resolved", action: "banned" } })).status).toBe(200);
    // Today's gateway calls, replaced by known ones: 10, 20, 30, 40 and 1,000 ms.
    await latencies(dayStart(today, TZ), dayStart(addDays(today, 1), TZ), [10, 20, 30, 40, 1000], Date.now());

    const res = await call("GET", `/api/admin/metrics?from=${yesterday}&to=${today}`, { token: admin });
    expect(res.status, res.text).toBe(200);
    const [dy, dt] = res.json.days;
    expect(dy).toEqual({
      date: yesterday,
      computed: true,
      activeUsers: 1,
      dailyActivePayers: 1,
      revenueIdr: 20_000,
      arpuIdr: 20_000,
      arppuIdr: 20_000,
      newUsers: 2,
      newPayers: 1,
      paymentSuccessRate: 1,
      gatewayLatencyMs: { p50: 5, p95: 150 },
      flaggedTransactions: 0,
      chargebacks: 0,
      freezes: 0,
      bans: 0,
    });
    // Active today: a and b (deposits), e (received), f (earned); c and d moved nothing. The admin is a new user too.
    expect(dt).toEqual({
      date: today,
      computed: true,
      activeUsers: 4,
      dailyActivePayers: 2,
      revenueIdr: 55_000,
      arpuIdr: 13_750,
      arppuIdr: 27_500,
      newUsers: 7,
      newPayers: 2,
      paymentSuccessRate: 2 / 3,
      gatewayLatencyMs: { p50: 30, p95: 1000 },
      flaggedTransactions: 2,
      chargebacks: 1,
      freezes: 1,
      bans: 1,
    });
    expect(res.json.totals).toEqual({
      activeUsers: 5,
      payers: 3,
      revenueIdr: 75_000,
      arpuIdr: 15_000,
      arppuIdr: 25_000,
      conversionRate: 3 / 9,
      paymentSuccessRate: 3 / 4,
      gatewayLatencyMs: { p50: 30, p95: 1000 },
      flaggedTransactions: 2,
      chargebackRate: 1 / 3,
      freezeRate: 1 / 5,
      bansPerWeek: 3.5,
      creatorEarnings: { creators: 1, p50: 14_000, p90: 14_000, p99: 14_000, max: 14_000 },
    });

    // Rerunning a rollup writes the same figures (nothing is counted twice).
    await call("POST", `/api/admin/metrics/${yesterday}/rollup`, { token: admin });
    const again = await call("GET", `/api/admin/metrics?from=${yesterday}&to=${today}`, { token: admin });
    expect(again.json.totals).toEqual(res.json.totals);
    // A day nobody rolled up yet is listed as not computed.
    const older = await call("GET", `/api/admin/metrics?from=${addDays(today, -3)}&to=${addDays(today, -2)}`, { token: admin });
    expect(older.json.days.map((x: any) => x.computed)).toEqual([false, false]);
  });

  it("every gateway call is timed: opening an order records a Snap call with the recorder, costing the request no D1 write", async () => {
    const user = await newUser("timed");
    const before = Date.now();
    expect((await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } })).status).toBe(201);
    const calls = await runInDurableObject(env.GATEWAY_LATENCY.get(env.GATEWAY_LATENCY.idFromName("gateways")), (_, state) =>
      state.storage.sql.exec<{ operation: string; outcome: string }>("SELECT operation, outcome FROM call_counts WHERE minute >= ?", Math.floor(before / 60_000)).toArray(),
    );
    expect(calls).toContainEqual({ operation: "snap.create", outcome: "ok" });
  });

  it("the recorder keeps counts, not a row per call: a busy minute is a few rows; calls kept a row each before become counts", async () => {
    const stub = env.GATEWAY_LATENCY.get(env.GATEWAY_LATENCY.idFromName("latency-counts"));
    const minute = Math.floor(Date.parse("2026-03-01T05:00:00Z") / 60_000);
    const at = (i: number) => minute * 60_000 + (i % 60) * 1000;
    await stub.record(Array.from({ length: 1000 }, (_, i) => ({ gateway: "midtrans", operation: i % 2 ? "status" : "snap.create", ms: i % 3 === 0 ? 120 : 40, outcome: "ok" as const, at: at(i) })));
    await runInDurableObject<GatewayLatency, void>(stub, (recorder, state) => {
      expect(state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM call_counts").one().n).toBeLessThanOrEqual(4);
      expect(recorder.histogram(minute * 60_000, (minute + 1) * 60_000)).toEqual({ "40": 666, "120": 334 });
      expect(recorder.histogram((minute + 1) * 60_000, (minute + 2) * 60_000)).toEqual({});
      // A store written by the version that kept a row per call.
      state.storage.sql.exec("CREATE TABLE calls (at INTEGER NOT NULL, bucket INTEGER NOT NULL, gateway TEXT NOT NULL, operation TEXT NOT NULL, outcome TEXT NOT NULL)");
      for (let i = 0; i < 5; i++) state.storage.sql.exec("INSERT INTO calls VALUES (?, 40, 'midtrans', 'status', 'ok')", at(i));
      const upgraded = new GatewayLatency(state, env);
      expect(upgraded.histogram(minute * 60_000, (minute + 1) * 60_000)).toEqual({ "40": 671, "120": 334 });
      expect(state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'calls'").toArray()).toEqual([]);
    });
  });

  it("refuses bad ranges and non-admins", async () => {
    const admin = await adminToken();
    const user = await newUser();
    expectProblem(await call("GET", "/api/admin/metrics?from=2026-01-02&to=2026-01-01", { token: admin }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/admin/metrics?from=2024-01-01&to=2026-01-01", { token: admin }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/admin/metrics?from=2026-02-30&to=2026-03-01", { token: admin }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/admin/metrics?from=2026-01-01", { token: admin }), 400, "validation_failed");
    // Days are of years 2000–2999: the day after 9999-12-31 is not a YYYY-MM-DD day (a range there never ended).
    expectProblem(await call("GET", "/api/admin/metrics?from=9998-12-31&to=9999-12-31", { token: admin }), 400, "validation_failed");
    expectProblem(await call("POST", "/api/admin/batches/0000-01-01/run", { token: admin }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/admin/metrics?from=2026-01-01&to=2026-01-02", { token: user.token }), 403, "forbidden");
  });
});

describe("freezes and bans are counted once, on the day they were decided", () => {
  /** The UTC instant of a WIB wall-clock time. */
  const wib = (local: string) => Date.parse(`${local}+07:00`);
  afterEach(() => void vi.useRealTimers());
  const at = (local: string) => vi.setSystemTime(wib(local));
  const rollup = async (day: string) => expect((await call("POST", `/api/admin/metrics/${day}/rollup`, { token: await adminToken() })).status).toBe(200);
  const figures = async (from: string, to: string, key: "bans" | "freezes") =>
    (await call("GET", `/api/admin/metrics?from=${from}&to=${to}`, { token: await adminToken() })).json.days.map((d: Record<string, number>) => d[key]);
  const review = async (alertId: string, status: string, action: string) => expect((await call("POST", "/api/fraud/review", { token: await adminToken(), body: { alertId, status, action } })).status).toBe(200);
  const alertAbout = async (prefix: string, local: string) => {
    const user = await newUser(prefix);
    const id = `AL-${prefix}-${user.id}`;
    await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'rapid_transactions', 'medium', '{}', 'open', ?)").bind(id, user.id, wib(local)).run();
    return id;
  };

  it("a day's rollup written while it was still today (a live read) is not served as final once it ended: the read completes it", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at("2024-11-20T10:00:00");
    await newUser("m-live-am");
    const read = async (day: string) => (await call("GET", `/api/admin/metrics?from=${day}&to=${day}`, { token: await adminToken() })).json.days[0];
    const morning = await read("2024-11-20");
    at("2024-11-20T18:00:00");
    await newUser("m-live-pm");
    // After midnight, before the 00:15 cron rolls the day up.
    at("2024-11-21T00:05:00");
    const next = await read("2024-11-20");
    expect(next).toMatchObject({ computed: true, newUsers: morning.newUsers + 1 });
    await rollup("2024-11-20");
    expect(await read("2024-11-20")).toEqual(next);
  });

  it("a ban reviewed again days later (resolved, warned: the ban stands) is one ban, on its day", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at("2024-07-10T10:00:00");
    const id = await alertAbout("m-ban", "2024-07-10T09:00:00");
    await review(id, "investigating", "banned");
    at("2024-07-11T00:20:00");
    await rollup("2024-07-10");
    at("2024-07-12T09:00:00");
    await review(id, "resolved", "warned");
    at("2024-07-13T00:20:00");
    await rollup("2024-07-11");
    await rollup("2024-07-12");
    expect(await figures("2024-07-10", "2024-07-12", "bans")).toEqual([1, 0, 0]);
  });

  it("a user unfrozen by hand and frozen again by a review of the same alert is a freeze on the day of the new freeze", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at("2024-09-10T11:00:00");
    const id = await alertAbout("m-refrz", "2024-09-10T10:00:00");
    await review(id, "investigating", "frozen");
    const userId = (await env.DB.prepare("select user_id from fraud_alerts where id = ?").bind(id).first<{ user_id: string }>())!.user_id;
    at("2024-09-11T11:00:00");
    await env.DB.prepare("update users set status = 'active' where id = ?").bind(userId).run();
    at("2024-09-12T11:00:00");
    await review(id, "resolved", "frozen");
    const decided = await env.DB.prepare("select action_decided_at as t from fraud_alerts where id = ?").bind(id).first<{ t: number }>();
    expect(decided?.t).toBe(wib("2024-09-12T11:00:00"));
  });

  it("a user already banned (or frozen) through one alert and then through another is one ban (one freeze): the second changes nothing", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at("2024-10-14T10:00:00");
    const banned = await alertAbout("m-ban2", "2024-10-14T09:00:00");
    const bannedUser = (await env.DB.prepare("select user_id from fraud_alerts where id = ?").bind(banned).first<{ user_id: string }>())!.user_id;
    const frozen = await alertAbout("m-frz2", "2024-10-14T09:00:00");
    const frozenUser = (await env.DB.prepare("select user_id from fraud_alerts where id = ?").bind(frozen).first<{ user_id: string }>())!.user_id;
    const another = async (userId: string, tag: string) => {
      const id = `AL-${tag}-${userId}`;
      await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'rapid_transactions', 'medium', '{}', 'open', ?)").bind(id, userId, wib("2024-10-14T09:30:00")).run();
      return id;
    };
    await review(banned, "resolved", "banned");
    await review(frozen, "investigating", "frozen");
    at("2024-10-14T11:00:00");
    await review(await another(bannedUser, "again"), "resolved", "banned");
    await review(await another(frozenUser, "again"), "investigating", "frozen");
    at("2024-10-15T00:20:00");
    await rollup("2024-10-14");
    expect(await figures("2024-10-14", "2024-10-14", "bans")).toEqual([1]);
    expect(await figures("2024-10-14", "2024-10-14", "freezes")).toEqual([1]);
  });

  it("an alert that was no new decision stays none when reviewed again, and an alert warned earlier keeps no old date when it freezes an already frozen user", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const userOf = async (id: string) => (await env.DB.prepare("select user_id from fraud_alerts where id = ?").bind(id).first<{ user_id: string }>())!.user_id;
    const another = async (userId: string, tag: string, local: string) => {
      const id = `AL-${tag}-${userId}`;
      await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'rapid_transactions', 'medium', '{}', 'open', ?)").bind(id, userId, wib(local)).run();
      return id;
    };
    at("2024-12-02T10:00:00");
    const banFirst = await alertAbout("m-reban", "2024-12-02T09:00:00");
    const banSecond = await another(await userOf(banFirst), "second", "2024-12-02T09:30:00");
    const frzFirst = await alertAbout("m-refrz2", "2024-12-02T09:00:00");
    const frzSecond = await another(await userOf(frzFirst), "second", "2024-12-02T09:30:00");
    const warned = await alertAbout("m-warned", "2024-12-02T09:00:00");
    await review(banFirst, "resolved", "banned");
    await review(banSecond, "investigating", "banned");
    await review(frzFirst, "investigating", "frozen");
    await review(frzSecond, "investigating", "frozen");
    await review(warned, "investigating", "warned");
    at("2024-12-03T10:00:00");
    await review(banSecond, "resolved", "warned");
    await review(frzSecond, "resolved", "frozen");
    await review(await another(await userOf(warned), "other", "2024-12-03T09:00:00"), "investigating", "frozen");
    at("2024-12-04T10:00:00");
    await review(warned, "resolved", "frozen");
    at("2024-12-05T00:20:00");
    for (const day of ["2024-12-02", "2024-12-03", "2024-12-04"]) await rollup(day);
    expect(await figures("2024-12-02", "2024-12-04", "bans")).toEqual([1, 0, 0]);
    expect(await figures("2024-12-02", "2024-12-04", "freezes")).toEqual([1, 1, 0]);
  });

  it("an alert reviewed 'investigating, frozen' one day and 'resolved, frozen' the next is one freeze", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at("2024-08-10T11:00:00");
    const id = await alertAbout("m-frz", "2024-08-10T10:00:00");
    await review(id, "investigating", "frozen");
    at("2024-08-11T00:20:00");
    await rollup("2024-08-10");
    at("2024-08-11T11:00:00");
    await review(id, "resolved", "frozen");
    at("2024-08-12T00:20:00");
    await rollup("2024-08-11");
    expect(await figures("2024-08-10", "2024-08-11", "freezes")).toEqual([1, 0]);
  });
});
