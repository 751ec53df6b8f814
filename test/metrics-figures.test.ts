/** The figures of GET /api/admin/metrics against scenarios with known answers, at chosen WIB times. */
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { adjust, adminToken, call, midtransNotification, newUser, postMidtransWebhook, tokenFor } from "./helpers";

const WIB = 7 * 3_600_000;
/** UTC instant of a WIB wall-clock time "YYYY-MM-DDTHH:MM:SS". */
const wib = (local: string) => Date.parse(`${local}Z`) - WIB;

function at(ms: number) {
  vi.setSystemTime(ms);
}

afterEach(() => {
  vi.useRealTimers();
});

async function metrics(from: string, to: string) {
  const admin = await adminToken();
  for (let d = from; d <= to; d = new Date(Date.parse(`${d}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10)) {
    const r = await call("POST", `/api/admin/metrics/${d}/rollup`, { token: admin });
    expect(r.status, r.text).toBe(200);
  }
  const res = await call("GET", `/api/admin/metrics?from=${from}&to=${to}`, { token: admin });
  expect(res.status, res.text).toBe(200);
  return res.json;
}

/** A new user's Snap order of `packageId`, opened now (the fake clock). */
async function openOrder(prefix: string, packageId: string) {
  const user = await newUser(prefix);
  const order = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId } });
  expect(order.status, order.text).toBe(201);
  return order.json.orderId as string;
}

describe("metrics: the creator earnings distribution", () => {
  it("a purchase just after WIB midnight is that WIB day's; an earner whose period total is 0 is not an earner", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    // 2025-03-10 23:59:59 WIB = 16:59:59Z: creator X earns; 2025-03-11 00:00:30 WIB: buyer_request refund (<24h).
    at(wib("2025-03-10T23:50:00"));
    const creator = await newUser("mf-cr");
    const buyer = await newUser("mf-by");
    await adjust(buyer.id, 1000);
    const put = await call("PUT", "/api/content/mf-video-1/premium", { token: creator.token, body: { price: 200 } });
    expect(put.status, put.text).toBeLessThan(300);
    at(wib("2025-03-10T23:59:59"));
    const unlock = await call("POST", "/api/content/mf-video-1/unlock", { token: (await tokenFor(buyer.id)) });
    expect(unlock.status, unlock.text).toBe(201);
    at(wib("2025-03-11T00:00:30"));
    const refund = await call("POST", "/api/content/mf-video-1/refund", { token: await adminToken(), body: { reason: "buyer_request", userId: buyer.id } });
    expect(refund.status, refund.text).toBeLessThan(300);
    // Creator earnings: +140 on 03-10, -140 on 03-11 (WIB days).
    const e = await call("GET", "/api/creator/earnings?from=2025-03-10&to=2025-03-11", { token: await tokenFor(creator.id) });
    expect(e.status, e.text).toBe(200);
    expect(e.json.days).toEqual([
      { day: "2025-03-10", content: 140, gifts: 0, marketplace: 0, payouts: 0 },
      { day: "2025-03-11", content: -140, gifts: 0, marketplace: 0, payouts: 0 },
    ]);
    expect(e.json.totals.content).toBe(0);
    const only10 = await call("GET", "/api/creator/earnings?from=2025-03-10&to=2025-03-10", { token: await tokenFor(creator.id) });
    expect(only10.json.totals.content).toBe(140);

    at(wib("2025-03-12T12:00:00"));
    const m = await metrics("2025-03-10", "2025-03-11");
    // The definition: nearest-rank percentiles over earners with a positive total over the period.
    expect(m.totals.creatorEarnings, JSON.stringify(m.totals.creatorEarnings)).toEqual({ creators: 0, p50: null, p90: null, p99: null, max: null });
  });
});

describe("metrics: payment success rate", () => {
  it("an order reported failed then confirmed settled is one paid order, not a paid and a failed one", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at(wib("2025-04-02T10:00:00"));
    const orderId = await openOrder("mf-pay", "pkg_100");
    at(wib("2025-04-02T10:05:00"));
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "deny" }))).json.outcome).toBe("failed");
    at(wib("2025-04-02T10:10:00"));
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    const row = await env.DB.prepare("select status, paid_at, failed_at from payment_orders where id = ?").bind(orderId).first();
    expect(row).toMatchObject({ status: "paid" });

    at(wib("2025-04-03T12:00:00"));
    const m = await metrics("2025-04-02", "2025-04-02");
    const day = m.days[0];
    expect(day.revenueIdr).toBe(10_000);
    // One order, and it ended paid: success 1/1.
    expect(day.paymentSuccessRate, JSON.stringify(day)).toBe(1);
  });
});

describe("metrics: chargeback rate", () => {
  it("two partial chargebacks of one paid order: the chargeback rate is a fraction 0–1 (1 of 1 paid orders)", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at(wib("2025-04-20T10:00:00"));
    const orderId = await openOrder("mf-cb", "pkg_1000");
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    at(wib("2025-04-20T11:00:00"));
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_chargeback", refund_amount: 42_500 }))).json.outcome).toBe("reversed");
    at(wib("2025-04-20T12:00:00"));
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_chargeback", refund_amount: 42_500 }))).json.outcome).toBe("reversed");
    at(wib("2025-04-21T12:00:00"));
    const m = await metrics("2025-04-20", "2025-04-20");
    expect(m.totals.chargebackRate, JSON.stringify({ day: m.days[0], rate: m.totals.chargebackRate })).toBeLessThanOrEqual(1);
  });

  it("an order charged back on two days counts once, on the day of its first chargeback", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at(wib("2025-06-10T10:00:00"));
    const orderId = await openOrder("mf-cb2", "pkg_1000");
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    at(wib("2025-06-10T11:00:00"));
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_chargeback", refund_amount: 20_000 }))).json.outcome).toBe("reversed");
    at(wib("2025-06-11T11:00:00"));
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_chargeback", refund_amount: 40_000 }))).json.outcome).toBe("reversed");
    at(wib("2025-06-12T12:00:00"));
    const m = await metrics("2025-06-10", "2025-06-11");
    expect(m.days.map((d: any) => d.chargebacks)).toEqual([1, 0]);
    expect(m.totals.chargebackRate).toBe(1);
  });
});


describe("metrics: flagged transactions", () => {
  it("are alerts about what users did; the platform's own alerts (ledger check, billing, jobs, gateways) are not, even when filed under a user", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    at(wib("2025-05-05T10:00:00"));
    const user = await newUser("mf-flag");
    const t = wib("2025-05-05T11:00:00");
    await env.DB.batch([
      env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'rapid_transactions', 'medium', '{}', 'open', ?)").bind(`AL-mf-user-${t}`, user.id, t),
      env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, null, 'billing_deferred', 'high', '{}', 'open', ?)").bind(`AL-mf-sys-${t}`, t),
      env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'invoice_failed', 'high', '{}', 'open', ?)").bind(`AL-mf-inv-${t}`, user.id, t),
    ]);
    at(wib("2025-05-06T12:00:00"));
    const m = await metrics("2025-05-05", "2025-05-05");
    expect(m.days[0].flaggedTransactions).toBe(1);
  });
});

describe("migration 0022's backfill", () => {
  it("sets charged_back_at from each order's first chargeback reversal, or its refund before a credit", async () => {
    const user = await newUser("mf-mig");
    const credited = `ORD-mig-${user.id}`;
    const early = `ORD-mig-early-${user.id}`;
    await env.DB.batch([
      env.DB.prepare("insert into payment_orders (id, user_id, kind, gateway, package_id, amount_idr, coins, status, created_at, updated_at, paid_at) values (?, ?, 'coin_package', 'midtrans', 'pkg_1000', 85000, 1000, 'paid', 1, 1, 1)").bind(credited, user.id),
      env.DB.prepare("insert into payment_orders (id, user_id, kind, gateway, package_id, amount_idr, coins, status, gateway_status, created_at, updated_at) values (?, ?, 'coin_package', 'midtrans', 'pkg_1000', 85000, 1000, 'refunded', 'chargeback', 1, 7000)").bind(early, user.id),
      ...[
        [5000, "partial_chargeback"],
        [3000, "partial_chargeback"],
        [1000, "refund"],
      ].map(([at, status]) =>
        env.DB.prepare("insert into transactions (id, type, status, asset, amount, user_id, metadata, created_at) values (?, 'refund', 'completed', 'COIN', 1, ?, ?, ?)").bind(`tx-mig-${user.id}-${at}`, user.id, JSON.stringify({ orderId: credited, gatewayStatus: status }), at),
      ),
    ]);
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0022_"))!;
    for (const statement of migration.queries.filter((q) => /^\s*(--[^\n]*\n\s*)*UPDATE/i.test(q))) await env.DB.prepare(statement).run();
    const rows = await env.DB.prepare("select id, charged_back_at from payment_orders where id in (?, ?) order by id").bind(credited, early).all<{ id: string; charged_back_at: number }>();
    expect(Object.fromEntries(rows.results.map((r) => [r.id, r.charged_back_at]))).toEqual({ [credited]: 3000, [early]: 7000 });
  });
});
