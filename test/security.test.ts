import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adjust, adminToken, call, expectLedgerOk, expectProblem, kycForm, midtransNotification, newUser, postMidtransWebhook, tokenFor, verifiedUser } from "./helpers";

/** Sum of every account balance per asset plus the number of postings: what "nothing moved" means. */
async function ledgerSnapshot() {
  const sums = await env.DB.prepare("select asset, sum(balance) as s, sum(locked) as l from accounts group by asset order by asset").all();
  const postings = await env.DB.prepare("select count(*) as n from postings").first<{ n: number }>();
  return JSON.stringify({ sums: sums.results, postings: postings?.n });
}

const HOSTILE_STRINGS = ["' OR '1'='1", "'; DROP TABLE accounts; --", "\" OR 1=1 --", "../../etc/passwd", "<script>alert(1)</script>", "\u0000", "x".repeat(70_000)];

describe("security", () => {
  it("forged and replayed webhooks move nothing", async () => {
    const user = await newUser("sec");
    const order = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_100" } });
    const genuine = await midtransNotification(order.json.orderId, { transaction_status: "settlement" });
    const before = await ledgerSnapshot();
    expectProblem(await postMidtransWebhook({ ...genuine, signature_key: genuine.signature_key!.replace(/.$/, (c) => (c === "0" ? "1" : "0")) }), 401, "invalid_signature");
    expectProblem(await postMidtransWebhook({ ...genuine, gross_amount: "1000000.00" }), 401, "invalid_signature");
    expectProblem(await call("POST", "/api/payment/xendit/webhook", { body: { external_id: order.json.orderId, status: "PAID", amount: 10000 }, headers: { "x-callback-token": "guess" } }), 401, "invalid_signature");
    expectProblem(await call("POST", "/api/payment/midtrans/iris-webhook", { rawBody: '{"reference_no":"x","status":"completed"}', headers: { "content-type": "application/json", "iris-signature": "00" } }), 401, "invalid_signature");
    expect(await ledgerSnapshot()).toBe(before);
    expect((await postMidtransWebhook(genuine)).json.outcome).toBe("credited");
    const after = await ledgerSnapshot();
    for (let i = 0; i < 3; i++) expect((await postMidtransWebhook(genuine)).json.outcome).toBe("duplicate");
    expect(await ledgerSnapshot()).toBe(after);
  });

  it("another user's ids in paths and bodies reach nothing of theirs", async () => {
    const alice = await verifiedUser("alice");
    const mallory = await newUser("mallory");
    await adjust(alice.id, 1000);
    const campaign = await call("POST", "/api/campaigns", { token: alice.token, body: { name: "alice's" } });
    const before = await ledgerSnapshot();
    expectProblem(await call("GET", `/api/campaigns/${campaign.json.id}`, { token: mallory.token }), 404, "not_found");
    expectProblem(await call("POST", `/api/campaigns/${campaign.json.id}/deposit`, { token: mallory.token, body: { amount: 50_000 } }), 404, "not_found");
    expectProblem(await call("POST", "/api/wallet/transfer", { token: mallory.token, body: { fromUserId: alice.id, toUserId: mallory.id, amount: 10 } }), 400, "validation_failed");
    expectProblem(await call("GET", `/api/admin/kyc/${alice.id}/photo/id`, { token: mallory.token }), 403, "forbidden");
    expectProblem(await call("POST", `/api/admin/kyc/${mallory.id}/review`, { token: mallory.token, body: { decision: "verified" } }), 403, "forbidden");
    expectProblem(await call("POST", "/api/admin/adjustments", { token: mallory.token, body: { userId: mallory.id, asset: "COIN", amount: 1000, reason: "free money" } }), 403, "forbidden");
    expectProblem(await call("POST", "/api/admin/payouts/po_x/release", { token: mallory.token }), 403, "forbidden");
    expectProblem(await call("POST", "/api/fraud/review", { token: mallory.token, body: { alertId: "x", status: "resolved", action: "cleared" } }), 403, "forbidden");
    const history = await call("GET", `/api/wallet/transactions?userId=${alice.id}`, { token: mallory.token });
    expect(history.json.items ?? []).toHaveLength(0);
    expect(await ledgerSnapshot()).toBe(before);
  });

  it("an admin token signed with the wrong secret is 401 everywhere", async () => {
    const forged = await tokenFor("mallory-admin", "admin", {}, "not-the-secret");
    for (const [method, path, body] of [
      ["GET", "/api/admin/ledger/check", undefined],
      ["POST", "/api/admin/adjustments", { userId: "mallory-admin", asset: "COIN", amount: 1_000_000, reason: "forged" }],
      ["GET", "/api/fraud/alerts", undefined],
      ["POST", "/api/admin/batches/2026-01-01/run", undefined],
    ] as const) {
      expectProblem(await call(method, path, { token: forged, body }), 401, "unauthorized");
    }
    const unsigned = `${btoa(JSON.stringify({ alg: "none", typ: "JWT" })).replace(/=/g, "")}.${btoa(JSON.stringify({ sub: "x", role: "admin", exp: 9e9 })).replace(/=/g, "")}.`;
    expectProblem(await call("GET", "/api/admin/ledger/check", { headers: { authorization: `Bearer ${unsigned}` } }), 401, "unauthorized");
  });

  it("SQL metacharacters and oversized values in every text field get a clear 4xx and change nothing", async () => {
    const user = await verifiedUser("fuzz");
    const admin = await adminToken();
    const peer = await newUser("peer");
    await adjust(user.id, 1000);
    const before = await ledgerSnapshot();
    const cases: [string, string, string, (s: string) => unknown][] = [
      ["POST", "/api/wallet/transfer", user.token, (s) => ({ toUserId: s, amount: 1 })],
      ["POST", "/api/wallet/transfer", user.token, (s) => ({ toUserId: peer.id, amount: 1, note: s.length > 280 ? s : s.repeat(300) })],
      ["POST", "/api/wallet/withdraw", user.token, (s) => ({ asset: s, amount: 1000 })],
      ["PUT", "/api/wallet/withdraw-method", user.token, (s) => ({ bankName: s, accountNumber: "123456", accountName: "A B" })],
      ["PUT", "/api/wallet/withdraw-method", user.token, (s) => ({ bankName: "bca", accountNumber: s, accountName: "A B" })],
      ["PUT", "/api/wallet/withdraw-method", user.token, (s) => ({ bankName: "bca", accountNumber: "123456", accountName: s })],
      ["POST", "/api/payment/midtrans/create", user.token, (s) => ({ packageId: s.length > 64 ? s : s + "x".repeat(64) })],
      ["POST", "/api/wallet/deposit", user.token, (s) => ({ packageId: "pkg_100", gateway: s })],
      ["POST", "/api/campaigns", user.token, (s) => ({ name: s.length > 120 ? s : s.repeat(200) })],
      ["POST", "/api/activity", user.token, (s) => ({ events: [{ type: s }] })],
      ["POST", "/api/admin/adjustments", admin, (s) => ({ userId: s, asset: "COIN", amount: 1, reason: "fuzzing" })],
      ["POST", "/api/admin/adjustments", admin, (s) => ({ userId: user.id, asset: "COIN", amount: 1, reason: s.length > 500 ? s : s.repeat(600) })],
      ["POST", "/api/fraud/whitelist", admin, (s) => ({ userId: s, reason: "fuzz" })],
      ["POST", "/api/fraud/review", admin, (s) => ({ alertId: s, status: "resolved", action: "cleared" })],
    ];
    for (const [method, path, token, body] of cases) {
      for (const s of HOSTILE_STRINGS) {
        const res = await call(method, path, { token, body: body(s) });
        expect(res.status, `${method} ${path} ${JSON.stringify(s).slice(0, 30)} → ${res.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        expect(res.headers.get("content-type")).toContain("application/problem+json");
        expect(res.text).not.toMatch(/sqlite|SQLITE|D1_ERROR|at .*\.ts:\d+/);
      }
    }
    for (const s of HOSTILE_STRINGS.slice(0, 5)) {
      const res = await call("POST", "/api/wallet/kyc/submit", { token: (await newUser("kycfuzz")).token, form: kycForm({ idNumber: s }) });
      expect([400, 409, 413, 415]).toContain(res.status);
    }
    for (const path of [`/api/campaigns/${encodeURIComponent("' OR 1=1")}`, `/api/admin/kyc/${encodeURIComponent("x' OR '1")}/photo/id`, `/api/admin/batches/${encodeURIComponent("2026-01-01' --")}`]) {
      const res = await call("GET", path, { token: admin });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    expect(await ledgerSnapshot()).toBe(before);
    await expectLedgerOk();
  });
});

describe("a banned caller is answered 403 on the routes that decide about them in their batch too (SPEC §3)", () => {
  it("refusals those routes take before their batch (a self-order, an unknown code, someone else's order, a transfer to oneself) are 403 account_banned for a banned caller", async () => {
    const { setUserStatus } = await import("./helpers");
    const order = (token: string, body: Record<string, unknown>) => call("POST", "/api/marketplace/orders", { token, body: { productId: "sku-1", ...body } });
    const [buyer, seller, stranger] = [await newUser("ban-buyer"), await newUser("ban-seller"), await newUser("ban-stranger")];
    await adjust(buyer.id, 1000);
    const placed = (await order(buyer.token, { sellerId: seller.id, amount: 100 })).json.order.id;
    const other = (await order(buyer.token, { sellerId: seller.id, amount: 100 })).json.order.id;
    expect((await call("POST", `/api/marketplace/orders/${other}/refund`, { token: seller.token })).status).toBe(200);
    await setUserStatus(buyer.id, "banned");
    await setUserStatus(stranger.id, "banned");
    const answers = {
      selfOrder: await order(buyer.token, { sellerId: buyer.id, amount: 100 }),
      unknownCode: await order(buyer.token, { sellerId: seller.id, amount: 100, referralCode: "ZZZZZZZZ" }),
      confirmRefunded: await call("POST", `/api/marketplace/orders/${other}/confirm`, { token: buyer.token }),
      strangerRefund: await call("POST", `/api/marketplace/orders/${placed}/refund`, { token: stranger.token }),
      strangerConfirm: await call("POST", `/api/marketplace/orders/${placed}/confirm`, { token: stranger.token }),
      selfTransfer: await call("POST", "/api/wallet/transfer", { token: buyer.token, body: { toUserId: buyer.id, amount: 1 } }),
    };
    for (const [name, res] of Object.entries(answers)) expect([name, res.status, res.json.code]).toEqual([name, 403, "account_banned"]);
    // Reading balance and history stays open to them, and a malformed read is told what is wrong with it.
    expect((await call("GET", "/api/wallet/balance", { token: buyer.token })).status).toBe(200);
    expect((await call("GET", "/api/wallet/transactions", { token: buyer.token })).status).toBe(200);
    expectProblem(await call("GET", "/api/wallet/transactions?limit=0x10", { token: buyer.token }), 400, "validation_failed");
    await expectLedgerOk();
  });
});
