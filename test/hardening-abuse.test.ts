import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";
import { open, seal, keyRing } from "../src/lib/crypto";
import { adjust, adminToken, balanceOf, call, expectLedgerOk, expectProblem, kycForm, newUser, setUserStatus, tokenFor, verifiedUser } from "./helpers";

/** A request whose body is a stream without Content-Length (chunked), sent to the Worker as is. */
async function streamed(path: string, token: string | undefined, chunks: () => ReadableStream<Uint8Array>, contentType = "application/json") {
  const headers: Record<string, string> = { "content-type": contentType };
  if (token) headers.authorization = `Bearer ${token}`;
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request(`http://money.test${path}`, { method: "POST", headers, body: chunks() }) as Request<unknown, IncomingRequestCfProperties>, env, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, json: (await res.json().catch(() => undefined)) as any, headers: res.headers };
}

const stream = (total: number, chunk = 16 * 1024) => () => {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const n = Math.min(chunk, total - sent);
      controller.enqueue(new TextEncoder().encode("x".repeat(n)));
      sent += n;
    },
  });
};

describe("hardening 7: abuse and hostile input", () => {
  it("authenticated routes authenticate before reading a body: an endless body gets 401 at once", async () => {
    let pulled = 0;
    const endless = () =>
      new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(new Uint8Array(1024));
        },
      });
    const res = await Promise.race([streamed("/api/wallet/transfer", undefined, endless), new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the body was read")), 5_000))]);
    expectProblem({ ...res, json: res.json }, 401, "unauthorized");
    expect(pulled).toBeLessThan(10);
  });

  it("body limits hold for chunked bodies without Content-Length: 64 KB for JSON, 11 MB for a KYC submission", async () => {
    const user = await newUser("chunk");
    expectProblem(await streamed("/api/wallet/transfer", user.token, stream(70 * 1024)), 413, "payload_too_large");
    expectProblem(await streamed("/api/wallet/kyc/submit", user.token, stream(11 * 1024 * 1024 + 1024, 256 * 1024), "multipart/form-data; boundary=x"), 413, "payload_too_large");
    expectProblem(await streamed("/api/payment/midtrans/webhook", undefined, stream(70 * 1024)), 413, "payload_too_large");
  });

  it("KYC submissions, campaign creation and bank account changes are rate limited per user", async () => {
    const user = await newUser("limits");
    const vars = { KYC_SUBMITS_PER_HOUR: "2", CAMPAIGNS_PER_HOUR: "2", WITHDRAW_METHOD_CHANGES_PER_DAY: "2" };
    const kyc = [];
    for (let i = 0; i < 3; i++) kyc.push((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm({ idNumber: "12345" }), vars })).status);
    expect(kyc).toEqual([400, 400, 429]);
    const campaigns = [];
    for (let i = 0; i < 3; i++) campaigns.push((await call("POST", "/api/campaigns", { token: user.token, body: { name: `c${i}` }, vars })).status);
    expect(campaigns).toEqual([201, 201, 429]);
    const methods = [];
    for (let i = 0; i < 3; i++) methods.push((await call("PUT", "/api/wallet/withdraw-method", { token: user.token, body: { bankName: "bca", accountNumber: `12345${i}`, accountName: "Siti Rahma" }, vars })).status);
    expect(methods).toEqual([200, 200, 429]);
  });

  it("a changed bank account is usable only after the cooling-off period and raises a low alert; the first one, or the same one again, at once", async () => {
    const user = await verifiedUser("cool");
    await adjust(user.id, 5000);
    expect((await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } })).status).toBe(202);
    const same = await call("PUT", "/api/wallet/withdraw-method", { token: user.token, body: { bankName: "bca", accountNumber: "1234567890", accountName: "Siti Rahma" } });
    expect(Date.parse(same.json.usableFrom)).toBeLessThanOrEqual(Date.now());
    const changed = await call("PUT", "/api/wallet/withdraw-method", { token: user.token, body: { bankName: "bni", accountNumber: "9999999999", accountName: "Someone Else" } });
    expect(changed.status).toBe(200);
    expect(Date.parse(changed.json.usableFrom)).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } }), 422, "withdraw_method_cooldown");
    const alerts = await env.DB.prepare("select severity, details from fraud_alerts where user_id = ? and alert_type = 'withdraw_method_changed'").bind(user.id).all<{ severity: string; details: string }>();
    expect(alerts.results.map((a) => a.severity)).toEqual(["low"]);
    expect(JSON.parse(alerts.results[0]!.details)).toMatchObject({ bankName: "bni", accountLast4: "9999" });
    expect((await balanceOf(user.token)).lockedBalance).toBe(500);
    await env.DB.prepare("update withdraw_methods set usable_from = ? where user_id = ?").bind(Date.now() - 1, user.id).run();
    expect((await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 } })).status).toBe(202);
  });

  it("alert ids and keys never embed raw client strings; such an alert stays reviewable and pageable", async () => {
    const fp = `fp"'<script>;--/${Date.now()}`;
    const payee = await newUser("payee");
    const users = await Promise.all(Array.from({ length: 4 }, () => newUser("dev")));
    for (const u of users) {
      await adjust(u.id, 10);
      await call("POST", "/api/wallet/transfer", { token: u.token, body: { toUserId: payee.id, amount: 1 }, headers: { "x-device-fingerprint": fp } });
    }
    const alert = await env.DB.prepare("select * from fraud_alerts where device_fingerprint = ? and alert_type = 'suspicious_device'").bind(fp).first<Record<string, any>>();
    expect(alert!.id).toMatch(/^[0-9A-Z]{26}$/);
    expect(alert!.dedupe_key).toMatch(/^[0-9a-f]{64}$/);
    const token = await adminToken();
    const page = await call("GET", `/api/fraud/alerts?alertType=suspicious_device&limit=1`, { token });
    expect(page.status).toBe(200);
    const reviewed = await call("POST", "/api/fraud/review", { token, body: { alertId: alert!.id, status: "investigating", action: "warned" } });
    expect(reviewed.status, reviewed.text).toBe(200);
  });

  it("amounts too large for the fee math are a 4xx, never a 500", async () => {
    const user = await verifiedUser("huge");
    const peer = await newUser("peer");
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 1_000_000_000_000 } }), 422, "amount_too_large");
    expectProblem(await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: peer.id, amount: 1_000_000_000_000 } }), 403, "limit_exceeded");
    expect((await call("GET", `/api/billing/quote?units=${Number.MAX_SAFE_INTEGER}`, { token: user.token })).status).toBeLessThan(500);
  });

  it("a banned admin is refused everywhere", async () => {
    const id = `fallen-admin-${Date.now()}`;
    const token = await tokenFor(id, "admin");
    expect((await call("GET", "/api/admin/ledger/check", { token })).status).toBe(200);
    await setUserStatus(id, "banned");
    for (const [method, path] of [["GET", "/api/admin/ledger/check"], ["GET", "/api/fraud/alerts"], ["GET", "/api/admin/kyc"], ["GET", "/api/admin/withdrawals"]] as const) {
      expectProblem(await call(method, path, { token }), 403, "account_banned");
    }
  });

  it("an adjustment shows the user a reason category, not the admin's id or internal note", async () => {
    const user = await newUser("adj");
    const res = await call("POST", "/api/admin/adjustments", { token: await adminToken(), body: { userId: user.id, asset: "COIN", amount: 25, category: "goodwill", reason: "ticket #4411, angry on twitter" } });
    expect(res.status, res.text).toBe(201);
    const history = await call("GET", "/api/wallet/transactions", { token: user.token });
    expect(history.json.items[0].metadata).toEqual({ category: "goodwill" });
    expect(JSON.stringify(history.json)).not.toMatch(/admin-root|twitter/);
    const audit = await env.DB.prepare("select actor_id, details from audit_log where action = 'ledger.adjustment' and subject_id = ?").bind(user.id).first<{ actor_id: string; details: string }>();
    expect(audit!.actor_id).toBe("admin-root");
    expect(JSON.parse(audit!.details)).toMatchObject({ reason: "ticket #4411, angry on twitter", category: "goodwill" });
  });

  it("every response carries the security headers; HTML pages also a CSP that forbids framing", async () => {
    const user = await newUser("hdr");
    for (const res of [await call("GET", "/api/wallet/balance", { token: user.token }), await call("GET", "/api/wallet/balance"), await call("GET", "/nope"), await call("GET", "/docs")]) {
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
      expect(res.headers.get("strict-transport-security")).toMatch(/max-age=\d+/);
    }
    const docs = await call("GET", "/docs");
    expect(docs.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
  });

  it("KYC: concurrent submissions leave one pending row and only its photos; retention runs even when an earlier housekeeping step fails", async () => {
    const user = await newUser("kycrace");
    const results = await Promise.all(Array.from({ length: 5 }, () => call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409]);
    const rows = await env.DB.prepare("select * from kyc_submissions where user_id = ?").bind(user.id).all<Record<string, any>>();
    expect(rows.results).toHaveLength(1);
    const objects = await env.KYC_BUCKET.list({ prefix: `kyc/${user.id}/` });
    expect(objects.objects.map((o) => o.key).sort()).toEqual([rows.results[0]!.id_photo_key, rows.results[0]!.selfie_photo_key].sort());

    await call("POST", `/api/admin/kyc/${user.id}/review`, { token: await adminToken(), body: { decision: "rejected", reason: "blurry" } });
    const reviewedAt = (await env.DB.prepare("select reviewed_at from kyc_submissions where user_id = ?").bind(user.id).first<{ reviewed_at: number }>())!.reviewed_at;
    // The first housekeeping step (idempotency keys) fails; the retention step must still run.
    const failingDb = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") return (query: string) => (query.includes('"idempotency_keys"') ? (() => { throw new Error("injected failure"); })() : target.prepare(query));
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/15 * * * *", scheduledTime: reviewedAt + 31 * 86_400_000 }), { ...env, DB: failingDb }, ctx);
    await waitOnExecutionContext(ctx);
    expect((await env.KYC_BUCKET.list({ prefix: `kyc/${user.id}/` })).objects).toHaveLength(0);
  });

  it("the KYC envelope names its key: after rotation old photos stay readable with KYC_ENCRYPTION_KEY_PREVIOUS, new ones use the new key", async () => {
    const user = await newUser("rotate");
    expect((await call("POST", "/api/wallet/kyc/submit", { token: user.token, form: kycForm() })).status).toBe(201);
    const oldKey = env.KYC_ENCRYPTION_KEY;
    const newKey = btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => (i * 7 + 3) % 256)));
    const rotated = { KYC_ENCRYPTION_KEY: newKey, KYC_ENCRYPTION_KEY_PREVIOUS: oldKey };
    const token = await adminToken();
    const view = await call("GET", `/api/admin/kyc/${user.id}/photo/id`, { token, vars: rotated });
    expect(view.status).toBe(200);
    // Without the previous key the old photo cannot be opened (and nothing leaks: a 500 without details).
    expect((await call("GET", `/api/admin/kyc/${user.id}/photo/id`, { token, vars: { KYC_ENCRYPTION_KEY: newKey } })).status).toBe(500);
    const ring = await keyRing(rotated);
    const sealed = await seal(ring, new TextEncoder().encode("hello"), "ctx");
    expect(new TextDecoder().decode(await open(ring, sealed, "ctx"))).toBe("hello");
    expect(new TextDecoder().decode(await open(await keyRing({ KYC_ENCRYPTION_KEY: newKey }), sealed, "ctx"))).toBe("hello");
    await expect(open(await keyRing({ KYC_ENCRYPTION_KEY: oldKey }), sealed, "ctx")).rejects.toThrow();
    await expectLedgerOk();
  });
});

describe("every value-moving request a user makes counts toward RATE_LIMIT_PER_MINUTE", () => {
  const vars = { RATE_LIMIT_PER_MINUTE: "10" };

  it("a seller's marketplace refunds: the 11th in a minute is 429", async () => {
    const buyer = await newUser("rl-buyer");
    const seller = await newUser("rl-seller");
    await adjust(buyer.id, 2_000);
    const orders: string[] = [];
    for (let i = 0; i < 11; i++) {
      const res = await call("POST", "/api/marketplace/orders", { token: buyer.token, body: { sellerId: seller.id, productId: `p${i}`, amount: 50 } });
      expect(res.status, res.text).toBe(201);
      orders.push(res.json.order.id);
    }
    const statuses: number[] = [];
    for (const id of orders) statuses.push((await call("POST", `/api/marketplace/orders/${id}/refund`, { token: seller.token, vars })).status);
    expect(statuses).toEqual([...Array(10).fill(200), 429]);
    // An admin's refunds (the same route) are admin operations: not counted.
    const admin = await adminToken();
    const second = await newUser("rl-buyer2");
    await adjust(second.id, 2_000);
    const more: string[] = [];
    for (let i = 0; i < 11; i++) more.push((await call("POST", "/api/marketplace/orders", { token: second.token, body: { sellerId: seller.id, productId: `q${i}`, amount: 50 } })).json.order.id);
    const byAdmin: number[] = [];
    for (const id of more) byAdmin.push((await call("POST", `/api/marketplace/orders/${id}/refund`, { token: admin, vars })).status);
    expect(byAdmin).toEqual(Array(11).fill(200));
  });

  it("a creator's deletions of premium content (each refunds its buyers): the 11th in a minute is 429", async () => {
    const creator = await newUser("rl-creator");
    const ids: string[] = [];
    for (let i = 0; i < 11; i++) {
      const id = `rl-content-${creator.id}-${i}`;
      expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 10 } })).status).toBe(200);
      ids.push(id);
    }
    const statuses: number[] = [];
    for (const id of ids) statuses.push((await call("DELETE", `/api/content/${id}`, { token: creator.token, vars })).status);
    expect(statuses.slice(0, 10).every((s) => s >= 200 && s < 300)).toBe(true);
    expect(statuses[10]).toBe(429);
  });
});
