import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "../src/db/client";
import { campaignAccountId, userAccountId } from "../src/ledger/accounts";
import { applyPlan } from "../src/ledger/executor";
import { movePlan } from "../src/ledger/plan";
import { newId } from "../src/lib/ids";
import { TEST_KEYS } from "./keys";
import { adminToken, balanceOf, call, expectLedgerOk, expectProblem, midtransNotification, newUser, postMidtransWebhook, sim, xenditInvoiceOf } from "./helpers";

async function sha512(text: string) {
  const d = await crypto.subtle.digest("SHA-512", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function buy(token: string, packageId = "pkg_500") {
  const res = await call("POST", "/api/payment/midtrans/create", { token, body: { packageId } });
  expect(res.status, res.text).toBe(201);
  return res.json as { orderId: string; token: string; redirectUrl: string };
}

const order = (id: string) => env.DB.prepare("select * from payment_orders where id = ?").bind(id).first<Record<string, any>>();
const alertsFor = (userId: string) => env.DB.prepare("select * from fraud_alerts where user_id = ?").bind(userId).all<Record<string, any>>();

describe("coin packages", () => {
  it("lists the four defaults in display order", async () => {
    const res = await call("GET", "/api/payment/packages");
    expect(res.status).toBe(200);
    const defaults = res.json.items.filter((p: any) => p.id.match(/^pkg_\d+$/));
    expect(defaults.map((p: any) => [p.coins, p.price, p.bonusCoins])).toEqual([
      [100, 10_000, 0],
      [500, 45_000, 50],
      [1000, 85_000, 150],
      [5000, 400_000, 1000],
    ]);
  });

  it("admin CRUD validates amounts and unique display order", async () => {
    const token = await adminToken();
    const created = await call("POST", "/api/admin/packages", { token, body: { coins: 42, price: 4200, displayOrder: 900 } });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({ coins: 42, price: 4200, bonusCoins: 0, isActive: true, currency: "IDR" });
    expectProblem(await call("POST", "/api/admin/packages", { token, body: { coins: 1, price: 1, displayOrder: 900 } }), 409, "conflict");
    for (const bad of [{ coins: 0, price: 1, displayOrder: 901 }, { coins: 1, price: -5, displayOrder: 902 }, { coins: 1, price: 1, bonusCoins: -1, displayOrder: 903 }, { coins: 1.5, price: 1, displayOrder: 904 }, { coins: "1", price: 1, displayOrder: 905 }]) {
      expectProblem(await call("POST", "/api/admin/packages", { token, body: bad }), 400, "validation_failed");
    }
    const patched = await call("PATCH", `/api/admin/packages/${created.json.id}`, { token, body: { isActive: false, badge: "retired" } });
    expect(patched.json).toMatchObject({ isActive: false, badge: "retired" });
    // A PATCH changes what it names and nothing else (no create-time default comes back).
    const bonus = await call("PATCH", `/api/admin/packages/${created.json.id}`, { token, body: { bonusCoins: 7 } });
    expect(bonus.json).toMatchObject({ bonusCoins: 7, isActive: false, badge: "retired" });
    const repriced = await call("PATCH", `/api/admin/packages/${created.json.id}`, { token, body: { price: 4100 } });
    expect(repriced.json).toMatchObject({ price: 4100, coins: 42, bonusCoins: 7, isActive: false, badge: "retired", currency: "IDR" });
    // A PATCH that names nothing is refused (it used to answer 200 and audit an empty update).
    const audits = async () => (await env.DB.prepare("select count(*) as n from audit_log where subject_id = ?").bind(created.json.id).first<{ n: number }>("n"))!;
    const before = await audits();
    expectProblem(await call("PATCH", `/api/admin/packages/${created.json.id}`, { token, body: {} }), 400, "validation_failed");
    expect(await audits()).toBe(before);
    const publicList = await call("GET", "/api/payment/packages");
    expect(publicList.json.items.some((p: any) => p.id === created.json.id)).toBe(false);
    const user = await newUser();
    expectProblem(await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: created.json.id } }), 404, "not_found");
    expectProblem(await call("POST", "/api/admin/packages", { token: user.token, body: { coins: 1, price: 1, displayOrder: 906 } }), 403, "forbidden");
    expect((await call("DELETE", `/api/admin/packages/${created.json.id}`, { token })).status).toBe(204);
    expectProblem(await call("DELETE", `/api/admin/packages/${created.json.id}`, { token }), 404, "not_found");
    // Each change to the catalogue is audited (a refused one is not).
    const audit = await env.DB.prepare("select action, actor_id from audit_log where subject_type = 'coin_package' and subject_id = ? order by id").bind(created.json.id).all();
    expect(audit.results).toEqual([
      { action: "coin_package.created", actor_id: "admin-root" },
      { action: "coin_package.updated", actor_id: "admin-root" },
      { action: "coin_package.updated", actor_id: "admin-root" },
      { action: "coin_package.updated", actor_id: "admin-root" },
      { action: "coin_package.deleted", actor_id: "admin-root" },
    ]);
  });
});

describe("Midtrans Snap deposits", () => {
  it("creates a pending order at Snap with item details summing to gross_amount", async () => {
    const user = await newUser();
    const created = await buy(user.token, "pkg_1000");
    expect(created.orderId).toMatch(/^ORD-/);
    expect(created.redirectUrl).toContain(created.token);
    expect(await order(created.orderId)).toMatchObject({ status: "pending", user_id: user.id, amount_idr: 85_000, coins: 1000, bonus_coins: 150 });
    const state = await sim("GET", "/_sim/state");
    const atGateway = state.json.orders.find((o: any) => (o.order_id ?? o.orderId) === created.orderId);
    expect(atGateway).toBeDefined();
  });

  it("settlement credits coins plus bonus exactly once, whatever the number and order of notifications", async () => {
    const user = await newUser();
    const created = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_500" }, headers: { "x-device-fingerprint": "phone-123" } });
    const { orderId } = created.json;
    const pending = await midtransNotification(orderId, { transaction_status: "pending" });
    expect((await postMidtransWebhook(pending)).json).toMatchObject({ outcome: "ignored" });
    const settlement = await midtransNotification(orderId, { transaction_status: "settlement" });
    const results = await Promise.all([settlement, settlement, pending, settlement, pending].map((n) => postMidtransWebhook(n)));
    for (const r of results) expect(r.status).toBe(200);
    expect(results.filter((r) => r.json.outcome === "credited")).toHaveLength(1);
    const balance = await balanceOf(user.token);
    expect(balance.balance).toBe(550);
    expect((balance as any).totalDeposited).toBe(550);
    expect(await order(orderId)).toMatchObject({ status: "paid" });
    const deposit = await call("GET", "/api/wallet/transactions?type=deposit", { token: user.token });
    expect(deposit.json.items[0]).toMatchObject({ amount: 550, deviceFingerprint: "phone-123", metadata: { orderId, coinsCredited: 550 } });
    // A late failure cannot undo a received payment.
    const expire = await midtransNotification(orderId, { transaction_status: "expire" });
    expect((await postMidtransWebhook(expire)).json.outcome).toBe("ignored");
    expect((await balanceOf(user.token)).balance).toBe(550);
    await expectLedgerOk();
  });

  it("capture credits only with fraud_status accept", async () => {
    const user = await newUser();
    const { orderId } = await buy(user.token, "pkg_100");
    const challenge = await midtransNotification(orderId, { transaction_status: "capture", fraud_status: "challenge" });
    expect((await postMidtransWebhook(challenge)).json.outcome).toBe("ignored");
    expect((await balanceOf(user.token)).balance).toBe(0);
    const accept = await midtransNotification(orderId, { transaction_status: "capture", fraud_status: "accept" });
    expect((await postMidtransWebhook(accept)).json.outcome).toBe("credited");
    expect((await balanceOf(user.token)).balance).toBe(100);
  });

  it.each(["deny", "cancel", "expire", "failure"])("%s fails the order and records who and when", async (status) => {
    const user = await newUser();
    const { orderId } = await buy(user.token, "pkg_100");
    const n = await midtransNotification(orderId, { transaction_status: status });
    const res = await postMidtransWebhook(n);
    expect(res.status).toBe(200);
    expect(res.json.outcome).toBe("failed");
    const row = await order(orderId);
    expect(row).toMatchObject({ status: "failed", user_id: user.id });
    expect(row?.failed_at).toBeGreaterThan(Date.now() - 60_000);
    expect((await balanceOf(user.token)).balance).toBe(0);
  });

  it("refuses forged, reformatted, incomplete and unknown notifications without changing anything", async () => {
    const user = await newUser();
    const { orderId } = await buy(user.token, "pkg_100");
    const genuine = await midtransNotification(orderId, { transaction_status: "settlement" });
    expectProblem(await postMidtransWebhook({ ...genuine, signature_key: "0".repeat(128) }), 401, "invalid_signature");
    // Signed over "10000.00"; the same amount written "10000" no longer matches the signature.
    expectProblem(await postMidtransWebhook({ ...genuine, gross_amount: "10000" }), 401, "invalid_signature");
    const { signature_key: _omit, ...unsigned } = genuine;
    expectProblem(await postMidtransWebhook(unsigned), 401, "invalid_signature");
    const { status_code: _s, ...missing } = genuine;
    expectProblem(await postMidtransWebhook(missing), 401, "invalid_signature");
    expectProblem(await postMidtransWebhook({ ...genuine, transaction_status: "settlement", order_id: "ORD-forged" }), 401, "invalid_signature");
    const unknown = await midtransNotification("ORD-does-not-exist", { transaction_status: "settlement", gross_amount: "10000.00" });
    expectProblem(await postMidtransWebhook(unknown), 404, "not_found");
    expectProblem(await call("POST", "/api/payment/midtrans/webhook", { rawBody: "not json", headers: { "content-type": "application/json" } }), 400);
    expect((await balanceOf(user.token)).balance).toBe(0);
    expect(await order(orderId)).toMatchObject({ status: "pending" });
    await expectLedgerOk();
  });

  it("an authentic notification with a different amount is refused and raises a fraud alert", async () => {
    const user = await newUser();
    const { orderId } = await buy(user.token, "pkg_100");
    const tampered = await midtransNotification(orderId, { transaction_status: "settlement", gross_amount: "1000.00" });
    expectProblem(await postMidtransWebhook(tampered), 422, "amount_mismatch");
    expect((await balanceOf(user.token)).balance).toBe(0);
    const alerts = await alertsFor(user.id);
    expect(alerts.results.map((a) => [a.alert_type, a.severity])).toContainEqual(["webhook_amount_mismatch", "critical"]);
  });

  it("confirms with the Get Status API: a signed settlement the gateway does not confirm credits nothing", async () => {
    const user = await newUser();
    const { orderId } = await buy(user.token, "pkg_100");
    const pending = await midtransNotification(orderId, { transaction_status: "pending" });
    const fake: Record<string, string> = { ...pending, transaction_status: "settlement", status_code: "200" };
    fake.signature_key = await sha512(fake.order_id! + fake.status_code + fake.gross_amount + TEST_KEYS.MIDTRANS_SERVER_KEY);
    const res = await postMidtransWebhook(fake);
    expect(res.status).toBe(200);
    expect(res.json.outcome).toBe("ignored");
    expect((await balanceOf(user.token)).balance).toBe(0);
  });

  it("refund after credit reverses it; a chargeback after spending records debt; both alert", async () => {
    const user = await newUser();
    const friend = await newUser();
    const { orderId } = await buy(user.token, "pkg_500");
    await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "settlement" }));
    expect((await balanceOf(user.token)).balance).toBe(550);
    expect((await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: friend.id, amount: 500 } })).status).toBe(201);
    const chargeback = await midtransNotification(orderId, { transaction_status: "chargeback" });
    const first = await postMidtransWebhook(chargeback);
    expect(first.json.outcome).toBe("reversed");
    expect((await postMidtransWebhook(chargeback)).json.outcome).toBe("duplicate");
    expect((await balanceOf(user.token)).balance).toBe(0);
    const debt = await env.DB.prepare("select balance from accounts where id = ?").bind(`debt:${user.id}:COIN`).first<{ balance: number }>();
    expect(debt?.balance).toBe(-500);
    expect(await order(orderId)).toMatchObject({ status: "reversed" });
    expect((await alertsFor(user.id)).results.map((a) => a.alert_type)).toContain("chargeback");
    await expectLedgerOk();

    const other = await newUser();
    const second = await buy(other.token, "pkg_100");
    await postMidtransWebhook(await midtransNotification(second.orderId, { transaction_status: "settlement" }));
    const refund = await postMidtransWebhook(await midtransNotification(second.orderId, { transaction_status: "refund" }));
    expect(refund.json.outcome).toBe("reversed");
    expect((await balanceOf(other.token)).balance).toBe(0);
    await expectLedgerOk();
  });

  it("a gateway that fails or times out answers 502 and leaves the order failed", async () => {
    const user = await newUser();
    await sim("POST", "/_sim/faults", { target: "snap", mode: "http500" });
    const down = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
    expectProblem(down, 502, "gateway_error");
    await sim("POST", "/_sim/faults", { target: "snap", mode: "timeout" });
    const slow = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
    expectProblem(slow, 502, "gateway_error");
    const failed = await env.DB.prepare("select status, failure_reason from payment_orders where user_id = ? order by id").bind(user.id).all<{ status: string; failure_reason: string }>();
    expect(failed.results).toEqual([
      { status: "failed", failure_reason: "create_unavailable" },
      { status: "failed", failure_reason: "create_timeout" },
    ]);
    await sim("POST", "/_sim/faults", { target: "snap", mode: "none" });
  });

  it("an unreadable 2xx from Xendit (an HTML page from a proxy) is a gateway error too: 502, the order failed", async () => {
    const user = await newUser();
    await sim("POST", "/_sim/faults", { target: "xendit", mode: "garbage" });
    expectProblem(await call("POST", "/api/payment/xendit/create", { token: user.token, body: { packageId: "pkg_100" } }), 502, "gateway_error");
    const rows = await env.DB.prepare("select status, failure_reason from payment_orders where user_id = ?").bind(user.id).all();
    expect(rows.results).toEqual([{ status: "failed", failure_reason: "create_unavailable" }]);
  });

  it("the optional source allow-list reads CF-Connecting-IP only", async () => {
    const user = await newUser();
    const { orderId } = await buy(user.token, "pkg_100");
    const n = await midtransNotification(orderId, { transaction_status: "pending" });
    const vars = { MIDTRANS_ALLOWED_IPS: "103.208.23.0/24, 2001:db8::/32" };
    expectProblem(await postMidtransWebhookWith(n, { "x-forwarded-for": "103.208.23.5" }, vars), 403, "forbidden");
    expectProblem(await postMidtransWebhookWith(n, { "cf-connecting-ip": "10.0.0.1" }, vars), 403, "forbidden");
    expect((await postMidtransWebhookWith(n, { "cf-connecting-ip": "103.208.23.5" }, vars)).status).toBe(200);
    expect((await postMidtransWebhookWith(n, { "cf-connecting-ip": "2001:db8::1" }, vars)).status).toBe(200);
  });

  it("POST /api/wallet/deposit is the same as the gateway routes", async () => {
    const user = await newUser();
    const res = await call("POST", "/api/wallet/deposit", { token: user.token, body: { packageId: "pkg_100", gateway: "midtrans" } });
    expect(res.status).toBe(201);
    expect(res.json.orderId).toMatch(/^ORD-/);
    expectProblem(await call("POST", "/api/wallet/deposit", { token: user.token, body: { packageId: "pkg_100", gateway: "paypal" } }), 400, "validation_failed");
    expectProblem(await call("POST", "/api/wallet/deposit", { body: { packageId: "pkg_100", gateway: "midtrans" } }), 401, "unauthorized");
  });
});

function postMidtransWebhookWith(n: unknown, headers: Record<string, string>, vars: Record<string, string>) {
  return call("POST", "/api/payment/midtrans/webhook", { body: n, headers, vars });
}

describe("Xendit invoices", () => {
  async function xenditNotify(invoiceId: string, fields: Record<string, unknown>) {
    const res = await sim("POST", `/_sim/xendit/${invoiceId}/notify`, { ...fields, deliver: false });
    expect(res.status).toBe(200);
    return res.json as { notification: unknown; headers: Record<string, string> };
  }

  it("PAID credits once; a wrong token changes nothing; EXPIRED fails", async () => {
    const user = await newUser();
    const created = await call("POST", "/api/payment/xendit/create", { token: user.token, body: { packageId: "pkg_100" } });
    expect(created.status, created.text).toBe(201);
    expect(created.json.invoiceUrl).toEqual(expect.any(String));
    const row = await order(created.json.orderId);
    const paid = await xenditNotify(await xenditInvoiceOf(created.json.orderId), { status: "PAID" });
    const forged = await call("POST", "/api/payment/xendit/webhook", { body: paid.notification, headers: { "x-callback-token": "guess" } });
    expectProblem(forged, 401, "invalid_signature");
    expectProblem(await call("POST", "/api/payment/xendit/webhook", { body: paid.notification }), 401, "invalid_signature");
    const deliveries = await Promise.all(Array.from({ length: 4 }, () => call("POST", "/api/payment/xendit/webhook", { body: paid.notification, headers: paid.headers })));
    expect(deliveries.map((d) => d.json.outcome).sort()).toEqual(["credited", "duplicate", "duplicate", "duplicate"]);
    expect((await balanceOf(user.token)).balance).toBe(100);

    const second = await call("POST", "/api/payment/xendit/create", { token: user.token, body: { packageId: "pkg_100" } });
    const secondRow = await order(second.json.orderId);
    const expired = await xenditNotify(await xenditInvoiceOf(second.json.orderId), { status: "EXPIRED" });
    expect((await call("POST", "/api/payment/xendit/webhook", { body: expired.notification, headers: expired.headers })).json.outcome).toBe("failed");
    expect(await order(second.json.orderId)).toMatchObject({ status: "failed" });
    await expectLedgerOk();
  });
});

describe("advertiser campaigns", () => {
  it("a settled deposit credits the campaign's IDR budget; only the owner sees and funds it", async () => {
    const advertiser = await newUser("adv");
    const stranger = await newUser("str");
    const created = await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "Launch week", rateFeeIdr: 7 } });
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({ name: "Launch week", rateFeeIdr: 7, budgetIdr: 0, ownerId: advertiser.id });
    const id = created.json.id;
    expectProblem(await call("POST", `/api/campaigns/${id}/deposit`, { token: advertiser.token, body: { amount: 9_999 } }), 400, "validation_failed");
    expectProblem(await call("POST", `/api/campaigns/${id}/deposit`, { token: stranger.token, body: { amount: 50_000 } }), 404, "not_found");
    expectProblem(await call("GET", `/api/campaigns/${id}`, { token: stranger.token }), 404, "not_found");
    expectProblem(await call("GET", `/api/campaigns/x' OR 1=1`, { token: stranger.token }), 400, "validation_failed");
    const deposit = await call("POST", `/api/campaigns/${id}/deposit`, { token: advertiser.token, body: { amount: 50_000 } });
    expect(deposit.status, deposit.text).toBe(201);
    const n = await midtransNotification(deposit.json.orderId, { transaction_status: "settlement" });
    expect((await postMidtransWebhook(n)).json.outcome).toBe("credited");
    expect((await postMidtransWebhook(n)).json.outcome).toBe("duplicate");
    const after = await call("GET", `/api/campaigns/${id}`, { token: advertiser.token });
    expect(after.json.budgetIdr).toBe(50_000);
    expect((await balanceOf(advertiser.token)).idrBalance).toBe(0);
    await expectLedgerOk();
  });

  it("a deposit by an advertiser whose chargeback left debt settles that debt first; only the rest funds the campaign (no chargeback loop)", async () => {
    const advertiser = await newUser("adv-loop");
    const earner = await newUser("earner-loop");
    const id = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "Loop" } })).json.id as string;
    const fund = async () => {
      const deposit = await call("POST", `/api/campaigns/${id}/deposit`, { token: advertiser.token, body: { amount: 50_000 } });
      expect((await postMidtransWebhook(await midtransNotification(deposit.json.orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
      return deposit.json.orderId as string;
    };
    const budget = async () => (await call("GET", `/api/campaigns/${id}`, { token: advertiser.token })).json.budgetIdr;
    const debt = async () => (await env.DB.prepare("select balance from accounts where id = ?").bind(`debt:${advertiser.id}:IDR`).first<{ balance: number }>())!.balance;
    const first = await fund();
    // The campaign pays 44,000 out (what the daily batch does), then the card's owner charges the deposit back.
    const now = Date.now();
    await applyPlan(createDb(env.DB), movePlan({ tx: { id: newId(now), type: "payout", asset: "IDR", amount: 44_000, userId: earner.id }, from: campaignAccountId(id), to: userAccountId(earner.id, "IDR"), audit: { actorId: "test", action: "payout", subjectType: "campaign", subjectId: id }, now }));
    expect((await postMidtransWebhook(await midtransNotification(first, { transaction_status: "chargeback" }))).json.outcome).toBe("reversed");
    expect(await budget()).toBe(0);
    expect(await debt()).toBe(-44_000);
    // The advertiser funds the campaign again: the debt is settled first, the campaign gets the rest.
    await fund();
    expect(await debt()).toBe(0);
    expect(await budget()).toBe(6_000);
    // The advertiser sees the settlement, without the budget's balances passed off as theirs.
    const history = await call("GET", "/api/wallet/transactions?type=debt_settlement", { token: advertiser.token });
    expect(history.json.items).toEqual([expect.objectContaining({ type: "debt_settlement", asset: "IDR", amount: 44_000, balanceBefore: null, balanceAfter: null })]);
    await expectLedgerOk();
  });
});
