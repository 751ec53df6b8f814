import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { createDb } from "../src/db/client";
import type { PaymentOrderRow } from "../src/db/schema";
import { reversalStep, statusCodeAgrees } from "../src/payments/deposit-rules";
import { failedPaymentStatements, settleOrder } from "../src/payments/settlement.service";
import { applyStatements } from "../src/ledger/executor";
import { TEST_KEYS } from "./keys";
import totalDepositedBackfill from "../migrations/0030_total_deposited_net.sql?raw";
import { adjust, balanceOf, call, d1FailingOnce, d1Intercept, expectLedgerOk, expectProblem, irisNotify, midtransNotification, newUser, postMidtransWebhook, sim, verifiedUser, xenditInvoiceOf } from "./helpers";

const config = loadConfig(env);
const orderRow = (id: string) => env.DB.prepare("select * from payment_orders where id = ?").bind(id).first<Record<string, any>>();
const pendingRow = async (orderId: string) => (await createDb(env.DB).query.paymentOrders.findFirst({ where: (o, { eq }) => eq(o.id, orderId) })) as PaymentOrderRow;
const debtOf = async (userId: string) => (await env.DB.prepare("select balance from accounts where id = ?").bind(`debt:${userId}:COIN`).first<{ balance: number }>())!.balance;

async function buy(token: string, packageId = "pkg_1000") {
  const res = await call("POST", "/api/payment/midtrans/create", { token, body: { packageId } });
  expect(res.status, res.text).toBe(201);
  return res.json.orderId as string;
}

async function paid(packageId = "pkg_1000") {
  const user = await newUser("refund");
  const orderId = await buy(user.token, packageId);
  expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
  return { user, orderId };
}

async function sha512(text: string) {
  const d = await crypto.subtle.digest("SHA-512", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("hardening 2: partial refunds and chargebacks reverse only what was refunded", () => {
  it("the spec's example: 1,000 + 150 coins for Rp 85,000; Rp 10,000 refunded → 136 coins, then a full refund → the remaining 1,014", async () => {
    const { user, orderId } = await paid();
    expect((await balanceOf(user.token)).balance).toBe(1150);
    const partial = await midtransNotification(orderId, { transaction_status: "partial_refund", refund_amount: 10_000 });
    expect((await postMidtransWebhook(partial)).json.outcome).toBe("reversed");
    expect((await balanceOf(user.token)).balance).toBe(1150 - 136);
    // The same refund notified again moves nothing.
    expect((await postMidtransWebhook(partial)).json.outcome).toBe("duplicate");
    expect((await balanceOf(user.token)).balance).toBe(1014);
    expect(await orderRow(orderId)).toMatchObject({ status: "paid", reversed_amount: 136, refunded_idr: 10_000 });

    const full = await midtransNotification(orderId, { transaction_status: "refund" });
    expect((await postMidtransWebhook(full)).json.outcome).toBe("reversed");
    expect((await balanceOf(user.token)).balance).toBe(0);
    expect(await orderRow(orderId)).toMatchObject({ status: "reversed", reversed_amount: 1150, refunded_idr: 85_000 });
    expect((await postMidtransWebhook(full)).json.outcome).toBe("duplicate");
    expect((await postMidtransWebhook(partial)).json.outcome).toBe("duplicate");
    const refunds = await call("GET", "/api/wallet/transactions?type=refund", { token: user.token });
    expect(refunds.json.items.map((t: any) => t.amount).sort((a: number, b: number) => a - b)).toEqual([136, 1014]);
    await expectLedgerOk();
  });

  it("partial chargebacks after spending book only the uncovered part as debt, and never more than the credit", async () => {
    const { user, orderId } = await paid();
    const friend = await newUser("friend");
    expect((await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: friend.id, amount: 400 } })).status).toBe(201);
    const half = await midtransNotification(orderId, { transaction_status: "partial_chargeback", refund_amount: 42_500 });
    expect((await postMidtransWebhook(half)).json.outcome).toBe("reversed");
    // ceil(1150 × 42,500 / 85,000) = 575 of the 750 left.
    expect((await balanceOf(user.token)).balance).toBe(175);
    expect(await debtOf(user.id)).toBe(0);
    const rest = await midtransNotification(orderId, { transaction_status: "partial_chargeback", refund_amount: 42_500 });
    expect((await postMidtransWebhook(rest)).json.outcome).toBe("reversed");
    expect((await balanceOf(user.token)).balance).toBe(0);
    expect(await debtOf(user.id)).toBe(-400);
    expect(await orderRow(orderId)).toMatchObject({ status: "reversed", reversed_amount: 1150 });
    await expectLedgerOk();
  });

  it("a refund notification while the buyer keeps spending the coins is still answered 200: what the wallet cannot cover at commit is debt", async () => {
    const { user, orderId } = await paid();
    const friend = await newUser("friend");
    const refund = await midtransNotification(orderId, { transaction_status: "refund" });
    // Before each of the reversal's batches, one 10-coin transfer by the buyer commits (a read of the
    // wallet is stale by the time the reversal writes).
    let spends = 0;
    const db = d1Intercept(
      /"reversed_amount" = /,
      async () => {
        spends++;
        const sent = await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: friend.id, amount: 10 } });
        expect(sent.status, sent.text).toBe(201);
      },
      20,
    );
    const res = await call("POST", "/api/payment/midtrans/webhook", { body: refund, db });
    expect(res.status, res.text).toBe(200);
    expect(res.json.outcome).toBe("reversed");
    // The 1,150 coins are all taken back: from the wallet what it held at commit, the rest as debt.
    expect((await balanceOf(user.token)).balance).toBe(0);
    expect(await debtOf(user.id)).toBe(-10 * spends);
    expect(await orderRow(orderId)).toMatchObject({ status: "reversed", reversed_amount: 1150 });
    // The admins' alert says what the buyer owes once the batch settled what it could, not what it booked first.
    const alert = await env.DB.prepare("select details from fraud_alerts where user_id = ? and alert_type = 'payment_refunded'").bind(user.id).first<{ details: string }>();
    expect(JSON.parse(alert!.details)).toMatchObject({ orderId, reversed: 1150, debt: 10 * spends });
    await expectLedgerOk();
  });

  it("reversalStep is ceil of the cumulative share, minus what was taken, never past the credit", () => {
    const order = { kind: "coin_package" as const, coins: 1000, bonusCoins: 150, amountIdr: 85_000, reversedAmount: 0, refundedIdr: 0 };
    expect(reversalStep(order, 10_000)).toMatchObject({ amount: 136, idrAmount: 10_000, reversedTotal: 136, complete: false });
    expect(reversalStep({ ...order, reversedAmount: 136, refundedIdr: 10_000 }, 85_000)).toMatchObject({ amount: 1014, idrAmount: 75_000, complete: true });
    expect(reversalStep({ ...order, reversedAmount: 136, refundedIdr: 10_000 }, 10_000)).toMatchObject({ amount: 0, idrAmount: 0 });
    expect(reversalStep(order, 999_999_999)).toMatchObject({ amount: 1150, cumulativeIdr: 85_000 });
    // A large campaign deposit: the product passes 2^53, and a float ceil would take Rp 1 more than refunded.
    const deposit = { kind: "campaign_deposit" as const, coins: 0, bonusCoins: 0, amountIdr: 95_690_159, reversedAmount: 0, refundedIdr: 0 };
    expect(reversalStep(deposit, 94_296_373)).toMatchObject({ amount: 94_296_373, complete: false });
    expect(reversalStep(deposit, 95_690_158)).toMatchObject({ amount: 95_690_158, complete: false });
    for (let refunded = 0; refunded <= 85_000; refunded += 1_777) {
      const step = reversalStep(order, refunded);
      expect(step.amount).toBe(Math.ceil((1150 * refunded) / 85_000));
      expect(step.amount).toBeLessThanOrEqual(1150);
    }
  });

  it("a partial refund handled before the credit proves the payment settled: the order is credited and only the refunded part reversed, in one batch", async () => {
    const user = await newUser("early-partial");
    const orderId = await buy(user.token);
    const settlement = await midtransNotification(orderId, { transaction_status: "settlement" });
    const partial = await midtransNotification(orderId, { transaction_status: "partial_refund", refund_amount: 10_000 });
    // The settlement's notification, handled after the merchant's partial refund, is confirmed as that refund.
    const moving = { batches: 0 };
    const res = await call("POST", "/api/payment/midtrans/webhook", { body: settlement, db: d1Intercept(/insert into "once_keys"/, async () => void moving.batches++, 99) });
    expect(res.json.outcome, res.text).toBe("reversed");
    expect(moving.batches, "the credit and the reversal commit together").toBe(1);
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1150 - 136, debt: 0, totalDeposited: 1150 - 136 });
    expect(await orderRow(orderId)).toMatchObject({ status: "paid", refunded_idr: 10_000, reversed_amount: 136 });
    for (const again of [partial, settlement]) expect((await postMidtransWebhook(again)).json.outcome).toBe("duplicate");
    // The rest, refunded later, reverses the rest.
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "refund" }))).json.outcome).toBe("reversed");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 0, debt: 0, totalDeposited: 0 });
    expect(await orderRow(orderId)).toMatchObject({ status: "reversed", refunded_idr: 85_000, reversed_amount: 1150 });
    await expectLedgerOk();
  });

  it("a partial refund before the credit races: a credit committing just before its batch, and the same notification twice at once, still credit once and reverse once", async () => {
    const user = await newUser("early-partial-race");
    const orderId = await buy(user.token);
    const pending = await pendingRow(orderId);
    await midtransNotification(orderId, { transaction_status: "settlement" });
    const partial = await midtransNotification(orderId, { transaction_status: "partial_refund", refund_amount: 10_000 });
    // The settlement's credit (confirmed earlier) commits between this notification's read and its batch.
    const raced = await call("POST", "/api/payment/midtrans/webhook", {
      body: partial,
      db: d1Intercept(/insert into "once_keys"/, () => settleOrder(createDb(env.DB), config, pending, "credit", { gatewayStatus: "settlement" })),
    });
    expect(raced.json.outcome, raced.text).toBe("reversed");
    const twice = await Promise.all([postMidtransWebhook(partial), postMidtransWebhook(partial)]);
    expect(twice.map((r) => r.json.outcome)).toEqual(["duplicate", "duplicate"]);
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1150 - 136, debt: 0, totalDeposited: 1150 - 136 });
    expect(await orderRow(orderId)).toMatchObject({ status: "paid", refunded_idr: 10_000, reversed_amount: 136 });
    await expectLedgerOk();

    // Two notifications of one partial refund handled at once, both before any credit: one batch wins.
    const other = await newUser("early-partial-twice");
    const second = await buy(other.token);
    await midtransNotification(second, { transaction_status: "settlement" });
    const both = await midtransNotification(second, { transaction_status: "partial_chargeback", refund_amount: 10_000 });
    const outcomes = (await Promise.all([postMidtransWebhook(both), postMidtransWebhook(both)])).map((r) => r.json.outcome).sort();
    expect(outcomes).toEqual(["duplicate", "reversed"]);
    expect(await balanceOf(other.token)).toMatchObject({ balance: 1150 - 136, totalDeposited: 1150 - 136 });
    await expectLedgerOk();
  });

  it("a partial refund before the credit lists the deposit before its refund in the buyer's history, every time", async () => {
    const inverted: string[] = [];
    for (let i = 0; i < 8; i++) {
      const user = await newUser(`order-${i}`);
      const orderId = await buy(user.token);
      await midtransNotification(orderId, { transaction_status: "settlement" });
      expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_refund", refund_amount: 10_000 }))).json.outcome).toBe("reversed");
      const items = (await call("GET", "/api/wallet/transactions", { token: user.token })).json.items as { type: string; balanceBefore: number; balanceAfter: number }[];
      if (items.map((t) => t.type).join() !== "refund,deposit") inverted.push(items.map((t) => `${t.type}:${t.balanceBefore}->${t.balanceAfter}`).join(", "));
    }
    expect(inverted, "histories listing the refund as older than its deposit").toEqual([]);
  });

  it("migration 0030 recomputes totalDeposited net of reversals for users refunded before it counted them", async () => {
    const { user, orderId } = await paid();
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_refund", refund_amount: 10_000 }))).json.outcome).toBe("reversed");
    const other = await paid("pkg_100");
    expect((await postMidtransWebhook(await midtransNotification(other.orderId, { transaction_status: "refund" }))).json.outcome).toBe("reversed");
    // As the code before it left them: the gross credited.
    await env.DB.prepare("update users set total_deposited_coins = ? where id = ?").bind(1150, user.id).run();
    await env.DB.prepare("update users set total_deposited_coins = ? where id = ?").bind(110, other.user.id).run();
    await env.DB.prepare(totalDepositedBackfill).run();
    expect(await balanceOf(user.token)).toMatchObject({ totalDeposited: 1150 - 136 });
    expect(await balanceOf(other.user.token)).toMatchObject({ totalDeposited: 0 });
  });

  it("a partial chargeback handled before the credit of a buyer in debt: the credit settles the debt first and the charged-back part is booked to debt", async () => {
    const { user, orderId: first } = await paid();
    await adjust(user.id, -1100);
    expect((await postMidtransWebhook(await midtransNotification(first, { transaction_status: "chargeback" }))).json.outcome).toBe("reversed");
    expect(await debtOf(user.id)).toBe(-1100);
    const second = await buy(user.token);
    await midtransNotification(second, { transaction_status: "settlement" });
    const chargeback = await midtransNotification(second, { transaction_status: "partial_chargeback", refund_amount: 10_000 });
    expect((await postMidtransWebhook(chargeback)).json.outcome).toBe("reversed");
    // 1,150 credited settles the 1,100 owed; of the 136 charged back, the 50 left are taken and 86 are owed.
    expect(await balanceOf(user.token)).toMatchObject({ balance: 0, debt: 86 });
    expect(await orderRow(second)).toMatchObject({ status: "paid", refunded_idr: 10_000, reversed_amount: 136 });
    expect((await postMidtransWebhook(chargeback)).json.outcome).toBe("duplicate");
    await expectLedgerOk();
  });
});

describe("hardening 3: orders change state only inside the batch that moves the money", () => {
  it("a refund confirmed before the credit marks the order refunded, and a racing credit that read it pending moves nothing", async () => {
    const user = await newUser("early");
    const orderId = await buy(user.token, "pkg_500");
    const stale = (await createDb(env.DB).query.paymentOrders.findFirst({ where: (o, { eq }) => eq(o.id, orderId) })) as PaymentOrderRow;
    const refund = await midtransNotification(orderId, { transaction_status: "refund" });
    expect((await postMidtransWebhook(refund)).json.outcome).toBe("refunded");
    expect(await orderRow(orderId)).toMatchObject({ status: "refunded" });
    // The credit of a settlement that was confirmed before the refund, arriving after it.
    expect(await settleOrder(createDb(env.DB), config, stale, "credit", { gatewayStatus: "settlement" })).toBe("duplicate");
    expect((await balanceOf(user.token)).balance).toBe(0);
    const alerts = await env.DB.prepare("select alert_type from fraud_alerts where user_id = ?").bind(user.id).all();
    expect(alerts.results).toEqual([{ alert_type: "payment_refunded" }]);
    await expectLedgerOk();
  });
});

describe("hardening 6: webhooks trust only what is signed or confirmed", () => {
  it("a status_code that disagrees with transaction_status is refused with 400, though correctly signed", async () => {
    const user = await newUser("code");
    const orderId = await buy(user.token, "pkg_100");
    const genuine = await midtransNotification(orderId, { transaction_status: "settlement" });
    for (const [status, code] of [["settlement", "201"], ["pending", "200"], ["expire", "200"], ["deny", "200"]] as const) {
      const forged: Record<string, string> = { ...genuine, transaction_status: status, status_code: code };
      forged.signature_key = await sha512(forged.order_id! + code + forged.gross_amount + TEST_KEYS.MIDTRANS_SERVER_KEY);
      expectProblem(await postMidtransWebhook(forged), 400, "invalid_notification");
    }
    expect((await balanceOf(user.token)).balance).toBe(0);
    expect(statusCodeAgrees("capture", "201", "challenge")).toBe(true);
    expect(statusCodeAgrees("capture", "200", "challenge")).toBe(false);
  });

  it("a notification naming an order of the other gateway is 404: the Xendit token never settles a Midtrans order, and back", async () => {
    const user = await newUser("cross");
    const midtransOrder = await buy(user.token, "pkg_100");
    const xendit = await call("POST", "/api/payment/xendit/create", { token: user.token, body: { packageId: "pkg_100" } });
    const invoiceId = await xenditInvoiceOf(xendit.json.orderId);
    const paid = await sim("POST", `/_sim/xendit/${invoiceId}/notify`, { status: "PAID", external_id: midtransOrder, deliver: false });
    expectProblem(await call("POST", "/api/payment/xendit/webhook", { body: paid.json.notification, headers: paid.json.headers }), 404, "not_found");
    const signed = await midtransNotification(xendit.json.orderId, { transaction_status: "settlement", gross_amount: "10000.00" });
    expectProblem(await postMidtransWebhook(signed), 404, "not_found");
    expect((await balanceOf(user.token)).balance).toBe(0);
  });

  it("an order already final answers 200 without calling the Status API; a failure is confirmed before the order fails", async () => {
    const { orderId } = await paid("pkg_100");
    const refund = await midtransNotification(orderId, { transaction_status: "refund" });
    expect((await postMidtransWebhook(refund)).json.outcome).toBe("reversed");
    await sim("POST", "/_sim/faults", { target: "status", mode: "http500", count: 5 });
    // Final: no Status API call, so the outage does not matter.
    const again = await postMidtransWebhook(refund);
    expect(again.status).toBe(200);
    expect(again.json.outcome).toBe("duplicate");
    await sim("POST", "/_sim/faults", { target: "status", mode: "none" });

    const user = await newUser("deny");
    const pending = await buy(user.token, "pkg_100");
    const deny = await midtransNotification(pending, { transaction_status: "deny" });
    // The gateway itself still says pending (e.g. a replayed or misrouted deny): the order is not failed.
    await midtransNotification(pending, { transaction_status: "pending" });
    expect((await postMidtransWebhook(deny)).json.outcome).toBe("ignored");
    expect(await orderRow(pending)).toMatchObject({ status: "pending" });
  });

  it("our own gateway outages when opening orders do not count toward multiple_failed_payments", async () => {
    const user = await newUser("outage");
    await sim("POST", "/_sim/faults", { target: "snap", mode: "http500", count: 6 });
    for (let i = 0; i < 6; i++) expectProblem(await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } }), 502, "gateway_error");
    const alerts = await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = 'multiple_failed_payments'").bind(user.id).first<{ n: number }>();
    expect(alerts?.n).toBe(0);
    const row = await env.DB.prepare("select status from users where id = ?").bind(user.id).first<{ status: string }>();
    expect(row?.status).toBe("active");
  });
});

describe("hostile fields in authentic notifications", () => {
  const orderRow = (id: string) => env.DB.prepare("select status from payment_orders where id = ?").bind(id).first<{ status: string }>();
  const buy = async (token: string, gateway: "midtrans" | "xendit") => {
    const res = await call("POST", `/api/payment/${gateway}/create`, { token, body: { packageId: "pkg_100" } });
    expect(res.status, res.text).toBe(201);
    return res.json.orderId as string;
  };

  it("a transaction_status (not signed) that is no status, or no string, is a 4xx and changes nothing", async () => {
    const user = await newUser("hostile-status");
    const orderId = await buy(user.token, "midtrans");
    const n = await midtransNotification(orderId, { transaction_status: "settlement" });
    for (const status of ["constructor", "toString", "__proto__", { toString: 1 }, 200, null]) {
      const res = await postMidtransWebhook({ ...n, transaction_status: status });
      expect(res.status, `${JSON.stringify(status)}: ${res.text}`).toBe(400);
    }
    expect((await orderRow(orderId))?.status).toBe("pending");
  });

  it("a Xendit callback whose status or amount is no string or number is a 4xx and changes nothing", async () => {
    const user = await newUser("hostile-xendit");
    const orderId = await buy(user.token, "xendit");
    const headers = { "x-callback-token": TEST_KEYS.XENDIT_CALLBACK_TOKEN };
    for (const body of [{ external_id: orderId, status: { toString: 1 } }, { external_id: orderId, status: "PAID", paid_amount: { toString: 1 } }]) {
      const res = await call("POST", "/api/payment/xendit/webhook", { body, headers });
      expect(res.status, res.text).toBeGreaterThanOrEqual(400);
      expect(res.status, res.text).toBeLessThan(500);
    }
    expect((await orderRow(orderId))?.status).toBe("pending");
  });

  it("a payment in another currency is refused as an amount mismatch (alerted), never credited", async () => {
    const user = await newUser("hostile-currency");
    const [m, x] = [await buy(user.token, "midtrans"), await buy(user.token, "xendit")];
    const n = await midtransNotification(m, { transaction_status: "settlement" });
    expectProblem(await postMidtransWebhook({ ...n, currency: "USD" }), 422, "amount_mismatch");
    const paid = { id: "inv-x", external_id: x, status: "PAID", amount: 10_000, paid_amount: 10_000, currency: "USD" };
    expectProblem(await call("POST", "/api/payment/xendit/webhook", { body: paid, headers: { "x-callback-token": TEST_KEYS.XENDIT_CALLBACK_TOKEN } }), 422, "amount_mismatch");
    expect((await balanceOf(user.token)).balance).toBe(0);
    // The same in rupiah credits as ever.
    expect((await postMidtransWebhook({ ...n, currency: "IDR" })).status).toBe(200);
    expect((await balanceOf(user.token)).balance).toBeGreaterThan(0);
  });
});

describe("multiple_failed_payments across an hour boundary", () => {
  const checkFailedPayments = (db: ReturnType<typeof createDb>, userId: string, now: number) => applyStatements(db, failedPaymentStatements(db, config, userId, null, now));
  const failedOrder = (userId: string, at: number) =>
    env.DB.prepare("insert into payment_orders (id, user_id, kind, gateway, package_id, amount_idr, status, failure_reason, created_at, updated_at, failed_at) values (?, ?, 'coin_package', 'midtrans', 'pkg_100', 10000, 'failed', 'gateway_deny', ?, ?, ?)")
      .bind(`fail-${userId}-${at}-${Math.random().toString(36).slice(2)}`, userId, at, at, at)
      .run();

  it("a failure just after the hour turns is not a second finding of the failures the first alert already stands for", async () => {
    const user = await newUser("hourfail");
    const db = createDb(env.DB);
    const turn = Math.ceil(Date.now() / 3_600_000) * 3_600_000;
    for (let i = 0; i < 5; i++) await failedOrder(user.id, turn - 120_000 + i);
    await checkFailedPayments(db, user.id, turn - 60_000);
    // An admin clears the freeze; one more failure two minutes later, in the next clock hour.
    await env.DB.prepare("update users set status = 'active' where id = ?").bind(user.id).run();
    await failedOrder(user.id, turn + 60_000);
    await checkFailedPayments(db, user.id, turn + 60_000);
    const alerts = await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = 'multiple_failed_payments'").bind(user.id).first<{ n: number }>();
    expect(alerts?.n).toBe(1);
    const row = await env.DB.prepare("select status from users where id = ?").bind(user.id).first<{ status: string }>();
    expect(row?.status).toBe("active");
    // Five new failures after the alert are a new finding, whatever the clock hour.
    for (let i = 0; i < 4; i++) await failedOrder(user.id, turn + 120_000 + i);
    await checkFailedPayments(db, user.id, turn + 180_000);
    const again = await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = 'multiple_failed_payments'").bind(user.id).first<{ n: number }>();
    expect(again?.n).toBe(2);
  });
});

describe("money in: what the gateway's answers can and cannot mean", () => {
  const buy = async (token: string, packageId = "pkg_100") => {
    const res = await call("POST", "/api/payment/midtrans/create", { token, body: { packageId } });
    expect(res.status, res.text).toBe(201);
    return res.json.orderId as string;
  };
  const alertsOf = async (userId: string) => (await env.DB.prepare("select alert_type from fraud_alerts where user_id = ?").bind(userId).all<{ alert_type: string }>()).results;

  it("a credited card capture that Midtrans then cancels (voided before settlement: the money never arrives) is reversed", async () => {
    const user = await newUser("cap");
    const orderId = await buy(user.token);
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "capture", fraud_status: "accept" }))).json.outcome).toBe("credited");
    expect((await balanceOf(user.token)).balance).toBe(100);
    const res = await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "cancel" }));
    expect(res.status, res.text).toBe(200);
    expect((await balanceOf(user.token)).balance).toBe(0);
    const row = await env.DB.prepare("select status from payment_orders where id = ?").bind(orderId).first<{ status: string }>();
    expect(row?.status).toBe("reversed");
    await expectLedgerOk();
  });

  it("a partial refund whose amount the Status API does not report reverses nothing (502: asked again later)", async () => {
    const user = await newUser("pr");
    const orderId = await buy(user.token, "pkg_1000");
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    const res = await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_refund" }));
    expectProblem(res, 502, "gateway_error");
    expect((await balanceOf(user.token)).balance).toBe(1150);
  });

  it("an unreadable Status API answer is a gateway error (502), not an amount mismatch, and raises no fraud alert", async () => {
    const user = await newUser("garb");
    const orderId = await buy(user.token);
    const n = await midtransNotification(orderId, { transaction_status: "settlement" });
    await sim("POST", "/_sim/faults", { target: "status", mode: "garbage", count: 1 });
    const res = await postMidtransWebhook(n);
    await sim("POST", "/_sim/faults", { target: "status", mode: "none" });
    expectProblem(res, 502, "gateway_error");
    expect(await alertsOf(user.id)).toEqual([]);
    expect((await postMidtransWebhook(n)).json.outcome).toBe("credited");
  });

  it("an unreadable Snap answer is 502 and the order is failed, not a 201 without a token", async () => {
    const user = await newUser("snapg");
    await sim("POST", "/_sim/faults", { target: "snap", mode: "garbage", count: 1 });
    const res = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
    await sim("POST", "/_sim/faults", { target: "snap", mode: "none" });
    expectProblem(res, 502, "gateway_error");
    const rows = await env.DB.prepare("select status from payment_orders where user_id = ?").bind(user.id).all<{ status: string }>();
    expect(rows.results).toEqual([{ status: "failed" }]);
  });

  it("repeats of one authentic notification with a wrong amount raise one critical alert", async () => {
    const user = await newUser("flood");
    const orderId = await buy(user.token);
    const n = await midtransNotification(orderId, { transaction_status: "settlement", gross_amount: "1.00" });
    for (let i = 0; i < 3; i++) expect((await postMidtransWebhook(n)).status).toBe(422);
    expect((await alertsOf(user.id)).filter((a) => a.alert_type === "webhook_amount_mismatch")).toHaveLength(1);
  });
});

describe("notifications that race, fail half-way or round to the end", () => {
  const buy = async (token: string, packageId = "pkg_100") => {
    const res = await call("POST", "/api/payment/midtrans/create", { token, body: { packageId } });
    expect(res.status, res.text).toBe(201);
    return res.json.orderId as string;
  };
  const alertCount = async (userId: string, type: string) =>
    (await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = ?").bind(userId, type).first<{ n: number }>())!.n;

  it("a capture credited while its cancel is being handled is reversed: the cancel finds the credit and takes it back", async () => {
    const user = await newUser("cxl");
    const orderId = await buy(user.token);
    const row = await pendingRow(orderId);
    const cancel = await midtransNotification(orderId, { transaction_status: "cancel" });
    // The capture's handler (which confirmed "capture" a moment earlier) commits its credit just before the cancel fails the order.
    const db = d1Intercept(/update "payment_orders" set "status" = \?, "gateway_status" = \?, "failure_reason" = case/, async () => {
      expect(await settleOrder(createDb(env.DB), config, row, "credit", { gatewayStatus: "capture" })).toBe("credited");
    });
    const res = await call("POST", "/api/payment/midtrans/webhook", { body: cancel, db });
    expect(res.status, res.text).toBe(200);
    expect(res.json.outcome).toBe("reversed");
    expect(await orderRow(orderId)).toMatchObject({ status: "reversed" });
    expect((await balanceOf(user.token)).balance).toBe(0);
    await expectLedgerOk();
  });

  it("a capture confirmed before its cancel committed is not credited after it: a cancelled order is final", async () => {
    const user = await newUser("cxl2");
    const orderId = await buy(user.token);
    const row = await pendingRow(orderId);
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "cancel" }))).json.outcome).toBe("failed");
    expect(await settleOrder(createDb(env.DB), config, row, "credit", { gatewayStatus: "capture" })).toBe("duplicate");
    // Nor does a later notification of the capture credit it.
    const capture = await midtransNotification(orderId, { transaction_status: "capture", fraud_status: "accept" });
    expect((await postMidtransWebhook(capture)).json.outcome).toBe("duplicate");
    expect((await balanceOf(user.token)).balance).toBe(0);
    expect(await orderRow(orderId)).toMatchObject({ status: "failed" });
    // A repeated cancel (or a later failure) changes nothing on a cancelled order, and is answered as such.
    const before = await orderRow(orderId);
    for (const status of ["cancel", "expire"]) expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: status }))).json.outcome).toBe("ignored");
    expect(await orderRow(orderId)).toEqual(before);
  });

  it("a cancel of an order we failed on our own outage (create_*) makes it final, and it still does not count as the user's failed payment", async () => {
    const user = await newUser("cxl4");
    const orderId = await buy(user.token);
    await env.DB.prepare("update payment_orders set status = 'failed', failure_reason = 'create_timeout', failed_at = ? where id = ?").bind(Date.now(), orderId).run();
    const row = await pendingRow(orderId);
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "cancel" }))).json.outcome).toBe("failed");
    expect(await orderRow(orderId)).toMatchObject({ status: "failed", failure_reason: "create_timeout" });
    expect(await settleOrder(createDb(env.DB), config, row, "credit", { gatewayStatus: "capture" })).toBe("duplicate");
    expect((await balanceOf(user.token)).balance).toBe(0);
  });

  it("a cancel of an order that failed before (a denied card, then a retried one) still makes it final: the capture it voids is not credited", async () => {
    const user = await newUser("cxl3");
    const orderId = await buy(user.token);
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "deny" }))).json.outcome).toBe("failed");
    const row = await pendingRow(orderId);
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "cancel" }))).json.outcome).toBe("failed");
    expect(await orderRow(orderId)).toMatchObject({ status: "failed", failure_reason: "gateway_cancel" });
    expect(await settleOrder(createDb(env.DB), config, row, "credit", { gatewayStatus: "capture" })).toBe("duplicate");
    expect((await balanceOf(user.token)).balance).toBe(0);
  });

  it("a refund before the credit commits its mark and its alert together: a retry after a failed write still alerts", async () => {
    const user = await newUser("early-crash");
    const orderId = await buy(user.token, "pkg_500");
    const refund = await midtransNotification(orderId, { transaction_status: "refund" });
    const first = await call("POST", "/api/payment/midtrans/webhook", { body: refund, db: d1FailingOnce(/insert into "fraud_alerts"/) });
    expect(first.status).toBe(500);
    const retry = await postMidtransWebhook(refund);
    expect(retry.status).toBe(200);
    expect(await orderRow(orderId)).toMatchObject({ status: "refunded" });
    expect(await alertCount(user.id, "payment_refunded")).toBe(1);
    // Repeats change nothing and raise nothing more.
    expect((await postMidtransWebhook(refund)).json.outcome).toBe("duplicate");
    expect(await alertCount(user.id, "payment_refunded")).toBe(1);
  });

  it("a refund before the credit that the gateway reports above the gross is bounded by it, not a 500", async () => {
    const user = await newUser("bigref");
    const orderId = await buy(user.token);
    expect(await settleOrder(createDb(env.DB), config, await pendingRow(orderId), "reverse", { gatewayStatus: "refund", refundedIdr: 20_000 })).toBe("refunded");
    expect(await orderRow(orderId)).toMatchObject({ status: "refunded", refunded_idr: 10_000 });
  });

  it("the last rupiah of an order whose coins rounding already took back are still booked, once", async () => {
    const user = await newUser("roundfinal");
    const orderId = await buy(user.token, "pkg_100");
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    const revenue = async () => (await env.DB.prepare("select balance from accounts where id = 'sys:platform_revenue:IDR'").first<{ balance: number }>())!.balance;
    const before = await revenue();
    // Rp 9,901 of Rp 10,000: ceil(100 × 9,901 / 10,000) = 100 coins, all of them.
    expect((await postMidtransWebhook(await midtransNotification(orderId, { transaction_status: "partial_refund", refund_amount: 9_901 }))).json.outcome).toBe("reversed");
    expect((await balanceOf(user.token)).balance).toBe(0);
    const last = await midtransNotification(orderId, { transaction_status: "partial_refund", refund_amount: 10_000 });
    expect((await postMidtransWebhook(last)).json.outcome).toBe("reversed");
    expect((await postMidtransWebhook(last)).json.outcome).toBe("duplicate");
    expect(await orderRow(orderId)).toMatchObject({ status: "reversed", refunded_idr: 10_000, reversed_amount: 100 });
    expect(before - (await revenue())).toBe(10_000);
    await expectLedgerOk();
  });

  it("the failure that reaches FAILED_PAYMENTS_PER_HOUR is judged in the batch that fails the order: a retry after a lost write still alerts", async () => {
    const user = await newUser("fail5");
    const now = Date.now();
    for (let i = 0; i < 4; i++) {
      await env.DB.prepare("insert into payment_orders (id, user_id, kind, gateway, package_id, amount_idr, status, failure_reason, created_at, updated_at, failed_at) values (?, ?, 'coin_package', 'midtrans', 'pkg_100', 10000, 'failed', 'gateway_deny', ?, ?, ?)")
        .bind(`fail5-${user.id}-${i}`, user.id, now - 60_000 + i, now - 60_000 + i, now - 60_000 + i)
        .run();
    }
    const orderId = await buy(user.token);
    const expire = await midtransNotification(orderId, { transaction_status: "expire" });
    const first = await call("POST", "/api/payment/midtrans/webhook", { body: expire, db: d1FailingOnce(/select count\(\*\)/) });
    expect(first.status).toBe(500);
    expect((await postMidtransWebhook(expire)).json.outcome).toBe("failed");
    expect(await alertCount(user.id, "multiple_failed_payments")).toBe(1);
    const row = await env.DB.prepare("select status from users where id = ?").bind(user.id).first<{ status: string }>();
    expect(row?.status).toBe("frozen");
  });

  it("retries of one mismatched Iris notification raise one critical alert", async () => {
    const user = await verifiedUser("irisdup");
    await adjust(user.id, 1000);
    const res = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 600 } });
    expect(res.status, res.text).toBe(202);
    // A payout at Iris whose notes name this withdrawal but which pays another account.
    const created = await fetch(`${env.SIM_URL}/iris/api/v1/payouts`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Basic ${btoa(`${TEST_KEYS.MIDTRANS_IRIS_API_KEY}:`)}` },
      body: JSON.stringify({ payouts: [{ beneficiary_name: "Mallory", beneficiary_account: "9999999999", beneficiary_bank: "bca", amount: "52800.00", notes: `Withdrawal ${res.json.withdrawalId}` }] }),
    });
    const ref = ((await created.json()) as { payouts: { reference_no: string }[] }).payouts[0]!.reference_no;
    for (let i = 0; i < 3; i++) expectProblem(await irisNotify(ref, "completed"), 422, "amount_mismatch");
    expect(await alertCount(user.id, "iris_payout_mismatch")).toBe(1);
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 600 });
  });
});
