import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { MAX_AMOUNT } from "../src/lib/money";
import { commissionBps, orderSplit, sellerTier } from "../src/marketplace/marketplace-rules";
import worker from "../src/index";
import { adjust, adminToken, balanceOf, call, d1Before, expectLedgerOk, expectProblem, newUser, setUserStatus, uniqueId, verifiedUser } from "./helpers";

const config = loadConfig({});
type User = { id: string; token: string };
const HOUSEKEEPING_CRON = "*/15 * * * *";

async function funded(amount: number, prefix = "buyer") {
  const user = await newUser(prefix);
  if (amount > 0) await adjust(user.id, amount);
  return user;
}

const order = (buyer: User, body: Record<string, unknown>, headers: Record<string, string> = {}) => call("POST", "/api/marketplace/orders", { token: buyer.token, body: { productId: "sku-1", ...body }, headers });
const full = async (token: string) => (await call("GET", "/api/wallet/balance", { token })).json as { balance: number; debt: number };
const escrow = async () => (await env.DB.prepare("select balance from accounts where id = 'sys:marketplace_escrow:COIN'").first<{ balance: number }>())!.balance;

/** `n` earlier sales of the seller in the last 30 days, written directly (the tier counts them). */
async function seedSales(sellerId: string, n: number, from = 0) {
  const now = Date.now();
  const stmts = Array.from({ length: n }, (_, i) =>
    env.DB.prepare(
      `insert into marketplace_orders (id, buyer_id, seller_id, product_id, amount, tier, commission_bps, processing_bps, affiliate_bps, seller_share, platform_share, processing_share, affiliate_share,
        status, transaction_id, release_due_at, created_at) values (?, 'seed-buyer', ?, 'seed', 100, 'basic', 1200, 300, 0, 85, 12, 3, 0, 'released', 'seed', ?, ?)`,
    ).bind(`SEED${sellerId.slice(-6)}${String(from + i).padStart(16, "0")}`.toUpperCase(), sellerId, now, now - 86_400_000),
  );
  for (let i = 0; i < stmts.length; i += 50) await env.DB.batch(stmts.slice(i, i + 50));
}

async function verifiedBusiness(seller: User) {
  const submitted = await call("POST", "/api/marketplace/business-verification", { token: seller.token, body: { businessName: "Toko Sinar Jaya", licenseNumber: "9120001234567", taxId: "0123456789012345" } });
  expect(submitted.status, submitted.text).toBe(201);
  const reviewed = await call("POST", `/api/admin/business-verifications/${seller.id}/review`, { token: await adminToken(), body: { decision: "verified" } });
  expect(reviewed.status, reviewed.text).toBe(200);
}

async function runCron(scheduledTime: number) {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ cron: HOUSEKEEPING_CRON, scheduledTime }), env, ctx);
  await waitOnExecutionContext(ctx);
}

async function waitFor(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("marketplace rules", () => {
  it("split (SPEC §3): seller, processing and affiliate are floor(bps); the platform gets the remainder", () => {
    expect(orderSplit(100_000, { commissionBps: 1200, processingBps: 300, affiliateBps: 0 })).toEqual({ platform: 12_000, processing: 3_000, affiliate: 0, seller: 85_000 });
    // 199 coins at Basic: seller floor(169.15), processing floor(5.97), the platform the rest.
    expect(orderSplit(199, { commissionBps: 1200, processingBps: 300, affiliateBps: 0 })).toEqual({ platform: 25, processing: 5, affiliate: 0, seller: 169 });
    expect(orderSplit(199, { commissionBps: 1200, processingBps: 300, affiliateBps: 500 })).toEqual({ platform: 26, processing: 5, affiliate: 9, seller: 159 });
    // One coin leaves the seller nothing (an order of it is refused: below_minimum).
    expect(orderSplit(1, { commissionBps: 1200, processingBps: 300, affiliateBps: 0 })).toEqual({ platform: 1, processing: 0, affiliate: 0, seller: 0 });
    expect(orderSplit(100_000, { commissionBps: 1200, processingBps: 300, affiliateBps: 500 })).toEqual({ platform: 12_000, processing: 3_000, affiliate: 5_000, seller: 80_000 });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_AMOUNT }), fc.constantFrom(1200, 800, 500), fc.boolean(), (amount, commission, affiliate) => {
        const rates = { commissionBps: commission, processingBps: 300, affiliateBps: affiliate ? 500 : 0 };
        const s = orderSplit(amount, rates);
        expect(s.seller + s.platform + s.processing + s.affiliate).toBe(amount);
        expect(s.seller).toBe(Math.floor((amount * (10_000 - commission - 300 - (affiliate ? 500 : 0))) / 10_000));
        expect(s.processing).toBe(Math.floor((amount * 300) / 10_000));
        expect(s.affiliate).toBe(affiliate ? Math.floor((amount * 500) / 10_000) : 0);
        expect(s.platform).toBeGreaterThanOrEqual(Math.floor((amount * commission) / 10_000));
      }),
      { numRuns: 500 },
    );
  });

  it("tiers at their boundaries: 99/100 and 999/1,000 sales, verified or not", () => {
    expect(sellerTier(99, true, config)).toBe("basic");
    expect(sellerTier(100, true, config)).toBe("verified_business");
    expect(sellerTier(100, false, config)).toBe("basic");
    expect(sellerTier(999, true, config)).toBe("verified_business");
    expect(sellerTier(1000, true, config)).toBe("premium_partner");
    expect(sellerTier(5000, false, config)).toBe("basic");
    expect([commissionBps("basic", config), commissionBps("verified_business", config), commissionBps("premium_partner", config)]).toEqual([1200, 800, 500]);
  });
});

describe("marketplace orders", () => {
  it("an order too small to leave the seller a coin is refused and moves nothing (its release would move 0)", async () => {
    const seller = await newUser("tiny-seller");
    const buyer = await newUser("tiny-buyer");
    await adjust(buyer.id, 10);
    expectProblem(await order(buyer, { sellerId: seller.id, amount: 1 }), 422, "below_minimum");
    expect((await balanceOf(buyer.token)).balance).toBe(10);
    expect((await order(buyer, { sellerId: seller.id, amount: 2 })).status).toBe(201);
  });

  it("confirm and refund honour Idempotency-Key: a repeat replays the answer instead of 409", async () => {
    const [buyer, seller] = [await funded(1000), await newUser("seller")];
    const first = await order(buyer, { sellerId: seller.id, amount: 100 });
    const second = await order(buyer, { sellerId: seller.id, amount: 100 });
    expect([first.status, second.status]).toEqual([201, 201]);
    const confirmKey = { "idempotency-key": `confirm-${first.json.order.id}` };
    const confirmed = await call("POST", `/api/marketplace/orders/${first.json.order.id}/confirm`, { token: buyer.token, headers: confirmKey });
    expect(confirmed.status, confirmed.text).toBe(200);
    const again = await call("POST", `/api/marketplace/orders/${first.json.order.id}/confirm`, { token: buyer.token, headers: confirmKey });
    expect([again.status, again.json, again.headers.get("idempotent-replayed")]).toEqual([200, confirmed.json, "true"]);
    const refundKey = { "idempotency-key": `refund-${second.json.order.id}` };
    const refunded = await call("POST", `/api/marketplace/orders/${second.json.order.id}/refund`, { token: seller.token, headers: refundKey });
    expect(refunded.status, refunded.text).toBe(200);
    const refundAgain = await call("POST", `/api/marketplace/orders/${second.json.order.id}/refund`, { token: seller.token, headers: refundKey });
    expect([refundAgain.status, refundAgain.json, refundAgain.headers.get("idempotent-replayed")]).toEqual([200, refunded.json, "true"]);
    expect((await balanceOf(buyer.token)).balance).toBe(900);
    await expectLedgerOk();
  });

  it("a referral order: escrow until the buyer confirms, then seller 80 %, affiliate 5 %; both see it in their earnings (100,000 → 80,000 / 5,000 in the rules test)", async () => {
    const [buyer, seller, affiliate] = [await funded(1000), await newUser("seller"), await newUser("affiliate")];
    const code = await call("POST", "/api/marketplace/referral-codes", { token: affiliate.token });
    expect(code.status).toBe(201);
    expect((await call("POST", "/api/marketplace/referral-codes", { token: affiliate.token })).json).toEqual({ code: code.json.code });
    const escrowBefore = await escrow();

    const placed = await order(buyer, { sellerId: seller.id, amount: 400, referralCode: code.json.code }, { "idempotency-key": "order-1" });
    expect(placed.status, placed.text).toBe(201);
    expect(placed.json.order).toMatchObject({ tier: "basic", status: "escrow", rates: { commissionBps: 1200, processingBps: 300, affiliateBps: 500 }, shares: { seller: 320, platform: 48, processing: 12, affiliate: 20 }, affiliateId: affiliate.id });
    expect(placed.json.transaction).toMatchObject({ type: "purchase", amount: 400, balanceBefore: 1000, balanceAfter: 600 });
    expect((await order(buyer, { sellerId: seller.id, amount: 400, referralCode: code.json.code }, { "idempotency-key": "order-1" })).json).toEqual(placed.json);
    expect((await escrow()) - escrowBefore).toBe(340);
    expect((await balanceOf(seller.token)).balance).toBe(0);

    const id = placed.json.order.id;
    expectProblem(await call("POST", `/api/marketplace/orders/${id}/confirm`, { token: seller.token }), 403, "forbidden");
    const confirmed = await call("POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token });
    expect(confirmed.status, confirmed.text).toBe(200);
    expect(confirmed.json).toMatchObject({ status: "released", releasedAt: expect.any(String) });
    expect((await balanceOf(seller.token)).balance).toBe(320);
    expect((await balanceOf(affiliate.token)).balance).toBe(20);
    expect((await escrow()) - escrowBefore).toBe(0);
    expectProblem(await call("POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token }), 409, "conflict");
    expect((await call("GET", "/api/creator/earnings", { token: seller.token })).json.totals.marketplace).toBe(320);
    expect((await call("GET", "/api/creator/earnings", { token: affiliate.token })).json.totals.marketplace).toBe(20);
    expect((await call("GET", "/api/creator/earnings", { token: buyer.token })).json.totals.marketplace).toBe(0);
    expect((await call("GET", `/api/marketplace/orders/${id}`, { token: affiliate.token })).status).toBe(200);
    expectProblem(await call("GET", `/api/marketplace/orders/${id}`, { token: (await newUser("stranger")).token }), 404, "not_found");
    await expectLedgerOk();
  });

  it("hostile orders and strangers are clear 4xx; nothing moves", async () => {
    const [buyer, seller, stranger] = [await funded(500), await newUser("seller"), await newUser("stranger")];
    const buyerCode = (await call("POST", "/api/marketplace/referral-codes", { token: buyer.token })).json.code;
    const sellerCode = (await call("POST", "/api/marketplace/referral-codes", { token: seller.token })).json.code;
    const cases: [Record<string, unknown>, number, string][] = [
      [{ sellerId: buyer.id, amount: 10 }, 422, "self_order"],
      [{ sellerId: seller.id, amount: 10, referralCode: buyerCode }, 422, "invalid_referral_code"],
      [{ sellerId: seller.id, amount: 10, referralCode: sellerCode }, 422, "invalid_referral_code"],
      [{ sellerId: seller.id, amount: 10, referralCode: "ZZZZZZZZ" }, 422, "invalid_referral_code"],
      [{ sellerId: seller.id, amount: 10, referralCode: "abc' or 1=1" }, 400, "validation_failed"],
      [{ sellerId: seller.id, amount: 0 }, 400, "validation_failed"],
      [{ sellerId: seller.id, amount: -10 }, 400, "validation_failed"],
      [{ sellerId: seller.id, amount: 2 ** 60 }, 400, "validation_failed"],
      [{ sellerId: seller.id, amount: 10.5 }, 400, "validation_failed"],
      [{ sellerId: "nobody-here", amount: 10 }, 404, "recipient_not_found"],
      [{ sellerId: seller.id, amount: 501 }, 403, "limit_exceeded"],
      [{ sellerId: seller.id, amount: 10, tier: "premium_partner" }, 400, "validation_failed"],
    ];
    for (const [body, status, code] of cases) expectProblem(await order(buyer, body), status, code);
    const placed = await order(buyer, { sellerId: seller.id, amount: 100 });
    expect(placed.status).toBe(201);
    const id = placed.json.order.id;
    // To a stranger the order does not exist, whatever they try (its id is not confirmed by a 403).
    expectProblem(await call("POST", `/api/marketplace/orders/${id}/confirm`, { token: stranger.token }), 404, "not_found");
    expectProblem(await call("POST", `/api/marketplace/orders/${id}/refund`, { token: stranger.token }), 404, "not_found");
    expectProblem(await call("POST", `/api/marketplace/orders/${id}/refund`, { token: buyer.token }), 403, "forbidden");
    // An admin sees every order, so is told why they cannot confirm it rather than that it does not exist.
    expectProblem(await call("POST", `/api/marketplace/orders/${id}/confirm`, { token: await adminToken() }), 403, "forbidden");
    expectProblem(await call("POST", "/api/marketplace/orders/01ZZZZZZZZZZZZZZZZZZZZZZZZ/confirm", { token: buyer.token }), 404, "not_found");
    expectProblem(await call("POST", "/api/marketplace/orders/not-an-id/confirm", { token: buyer.token }), 400, "validation_failed");
    expect((await balanceOf(buyer.token)).balance).toBe(400);
    expect((await balanceOf(seller.token)).balance).toBe(0);
    await expectLedgerOk();
  });

  it("tiers come from 30-day sales and verification at the moment of sale, and are frozen: a later tier change does not alter a refund", async () => {
    const seller = await newUser("seller");
    const admin = await adminToken();
    await seedSales(seller.id, 99);
    const buyer = await funded(900);
    const first = await order(buyer, { sellerId: seller.id, amount: 100 });
    expect(first.json.order).toMatchObject({ tier: "basic", rates: { commissionBps: 1200 } });
    await verifiedBusiness(seller);
    // 99 seeded + 1 = 100 sales, verified: Verified Business.
    expect((await call("GET", `/api/marketplace/sellers/${seller.id}`, { token: buyer.token })).json).toEqual({ sellerId: seller.id, tier: "verified_business", commissionBps: 800, sales30d: 100, verification: "verified" });
    const second = await order(buyer, { sellerId: seller.id, amount: 100 });
    expect(second.json.order).toMatchObject({ tier: "verified_business", shares: { seller: 89, platform: 8, processing: 3 } });

    await seedSales(seller.id, 899, 99);
    const third = await order(buyer, { sellerId: seller.id, amount: 100 });
    expect(third.json.order).toMatchObject({ tier: "premium_partner", shares: { seller: 92, platform: 5, processing: 3 } });

    // The first order was Basic: released, then refunded by an admin at its frozen 1200 bps.
    expect((await call("POST", `/api/marketplace/orders/${first.json.order.id}/confirm`, { token: buyer.token })).status).toBe(200);
    const refunded = await call("POST", `/api/marketplace/orders/${first.json.order.id}/refund`, { token: admin });
    expect(refunded.json).toMatchObject({ status: "refunded", refundKind: "after_release", refundAmount: 97 });
    expect(await full(seller.token)).toMatchObject({ balance: 0, debt: 0 });
    expect((await balanceOf(buyer.token)).balance).toBe(900 - 300 + 97);
    await expectLedgerOk();
  });

  it("refund before release returns everything; after release an admin claws back seller and affiliate (debt if short), the commission returns and processing keeps its share", async () => {
    const admin = await adminToken();
    const [buyer, seller, affiliate, sink] = [await funded(1000), await newUser("seller"), await newUser("affiliate"), await newUser("sink")];
    const code = (await call("POST", "/api/marketplace/referral-codes", { token: affiliate.token })).json.code;

    const early = await order(buyer, { sellerId: seller.id, amount: 200, referralCode: code });
    const bySeller = await call("POST", `/api/marketplace/orders/${early.json.order.id}/refund`, { token: seller.token });
    expect(bySeller.json).toMatchObject({ status: "refunded", refundKind: "before_release", refundAmount: 200 });
    expect((await balanceOf(buyer.token)).balance).toBe(1000);
    expectProblem(await call("POST", `/api/marketplace/orders/${early.json.order.id}/refund`, { token: admin }), 409, "conflict");

    const late = await order(buyer, { sellerId: seller.id, amount: 400, referralCode: code });
    await call("POST", `/api/marketplace/orders/${late.json.order.id}/confirm`, { token: buyer.token });
    // seller 320, affiliate 20, platform 48, processing 12; the seller spends 300 of theirs.
    expect((await call("POST", "/api/wallet/transfer", { token: seller.token, body: { toUserId: sink.id, amount: 300 } })).status).toBe(201);
    expectProblem(await call("POST", `/api/marketplace/orders/${late.json.order.id}/refund`, { token: seller.token }), 403, "forbidden");
    const refunded = await call("POST", `/api/marketplace/orders/${late.json.order.id}/refund`, { token: admin });
    expect(refunded.json).toMatchObject({ refundKind: "after_release", refundAmount: 320 + 20 + 48 });
    expect(await full(seller.token)).toMatchObject({ balance: 0, debt: 300 });
    expect(await full(affiliate.token)).toMatchObject({ balance: 0, debt: 0 });
    expect((await balanceOf(buyer.token)).balance).toBe(1000 - 400 + 388);
    expect((await call("GET", "/api/creator/earnings", { token: seller.token })).json.totals.marketplace).toBe(0);
    await expectLedgerOk();
  });

  it("Top Earner counts marketplace earnings too (SPEC §10: coins earned), net of claw-backs", async () => {
    const admin = await adminToken();
    const [buyer, seller] = [await funded(1000), await newUser("top-seller")];
    const vars = { BADGE_TOP_EARNER_COINS: "300" };
    const badges = async () => (await call("GET", `/api/users/${seller.id}/badges`, { token: seller.token })).json.items.map((b: { badge: string }) => b.badge);
    const placed = await order(buyer, { sellerId: seller.id, amount: 400 });
    expect(placed.status, placed.text).toBe(201);
    expect((await call("POST", `/api/marketplace/orders/${placed.json.order.id}/confirm`, { token: buyer.token, vars })).status).toBe(200);
    // The seller earned 340 of it (85 %): past the threshold.
    expect(await badges()).toEqual(["top_earner"]);
    expect((await call("POST", `/api/marketplace/orders/${placed.json.order.id}/refund`, { token: admin, vars })).status).toBe(200);
    expect(await badges()).toEqual([]);
    await expectLedgerOk();
  });

  it("a confirm racing a refund: exactly one wins", async () => {
    for (let round = 0; round < 4; round++) {
      const [buyer, seller] = [await funded(300), await newUser("seller")];
      const placed = await order(buyer, { sellerId: seller.id, amount: 100 });
      const id = placed.json.order.id;
      const [confirm, refund] = await Promise.all([call("POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token }), call("POST", `/api/marketplace/orders/${id}/refund`, { token: seller.token })]);
      const wins = [confirm, refund].filter((r) => r.status === 200);
      expect(wins).toHaveLength(1);
      // The confirm that loses finds the order refunded (409); the seller's refund that loses finds it released,
      // which only an admin may refund (403), or loses the race inside the batch (409).
      if (confirm.status !== 200) expectProblem(confirm, 409, "conflict");
      if (refund.status !== 200) expect([403, 409]).toContain(refund.status);
      const final = (await call("GET", `/api/marketplace/orders/${id}`, { token: buyer.token })).json;
      if (confirm.status === 200) {
        expect(final.status).toBe("released");
        expect((await balanceOf(seller.token)).balance).toBe(85);
        expect((await balanceOf(buyer.token)).balance).toBe(200);
      } else {
        expect(final.status).toBe("refunded");
        expect((await balanceOf(seller.token)).balance).toBe(0);
        expect((await balanceOf(buyer.token)).balance).toBe(300);
      }
    }
    await expectLedgerOk();
  });

  it("the cron releases escrow once MARKETPLACE_ESCROW_DAYS have passed at its scheduled time, in queue chunks", async () => {
    const [buyer, seller] = [await funded(1000), await newUser("seller")];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await order(buyer, { sellerId: seller.id, amount: 100 })).json.order.id);
    await runCron(Date.now() + 6 * 86_400_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await balanceOf(seller.token)).balance).toBe(0);
    await runCron(Date.now() + 7 * 86_400_000 + 60_000);
    await waitFor(async () => (await balanceOf(seller.token)).balance === 255, "escrow release");
    for (const id of ids) expect((await call("GET", `/api/marketplace/orders/${id}`, { token: buyer.token })).json).toMatchObject({ status: "released" });
    // A second run finds nothing due.
    await runCron(Date.now() + 8 * 86_400_000);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await balanceOf(seller.token)).balance).toBe(255);
    await expectLedgerOk();
  });

  it("a banned seller earns nothing: the cron leaves the escrow held (one alert), an admin refund returns it all; a banned affiliate forfeits their share to the seller and does not hold the sale up", async () => {
    const [buyer, seller, affiliate, seller2] = [await funded(1000), await newUser("seller"), await newUser("aff"), await newUser("seller")];
    const code = (await call("POST", "/api/marketplace/referral-codes", { token: affiliate.token })).json.code;
    const placed = (await order(buyer, { sellerId: seller.id, amount: 400, referralCode: code })).json.order;
    const withCode = placed.id;
    const plain = (await order(buyer, { sellerId: seller2.id, amount: 100 })).json.order.id;
    await setUserStatus(affiliate.id, "banned");
    await setUserStatus(seller2.id, "banned");
    // A banned affiliate's code earns nothing on new orders either.
    expectProblem(await order(buyer, { sellerId: seller.id, amount: 100, referralCode: code }), 422, "invalid_referral_code");
    // The buyer's confirm still releases the sale: the seller gets the affiliate's share too (it came out of theirs).
    const confirmed = await call("POST", `/api/marketplace/orders/${withCode}/confirm`, { token: buyer.token });
    expect(confirmed.status, confirmed.text).toBe(200);
    expect(confirmed.json).toMatchObject({ status: "released", shares: { seller: placed.shares.seller + placed.shares.affiliate, affiliate: 0 } });
    expect((await balanceOf(seller.token)).balance).toBe(placed.shares.seller + placed.shares.affiliate);
    expect((await balanceOf(affiliate.token)).balance).toBe(0);
    for (let i = 0; i < 2; i++) {
      await runCron(Date.now() + 7 * 86_400_000 + 60_000);
      await new Promise((r) => setTimeout(r, 1500));
    }
    expect((await call("GET", `/api/marketplace/orders/${plain}`, { token: buyer.token })).json).toMatchObject({ status: "escrow" });
    expect((await balanceOf(seller2.token)).balance).toBe(0);
    const alerts = await env.DB.prepare("select order_id from (select json_extract(details, '$.orderId') as order_id from fraud_alerts where alert_type = 'escrow_payee_banned') where order_id in (?, ?)").bind(withCode, plain).all();
    expect(alerts.results.map((r: any) => r.order_id)).toEqual([plain]);
    expect((await call("POST", `/api/marketplace/orders/${plain}/refund`, { token: await adminToken() })).status).toBe(200);
    // A refund after release claws back what the seller got, the forfeited share included.
    expect((await call("POST", `/api/marketplace/orders/${withCode}/refund`, { token: await adminToken() })).status).toBe(200);
    expect((await balanceOf(seller.token)).balance).toBe(0);
    expect((await balanceOf(buyer.token)).balance).toBe(1000 - placed.shares.processing);
    await expectLedgerOk();
  });

  it("the buyer's confirm moves the buyer's escrow: refused when the buyer is frozen, or banned when the batch commits", async () => {
    const [buyer, seller] = [await funded(1000), await newUser("seller")];
    const first = (await order(buyer, { sellerId: seller.id, amount: 100 })).json.order.id;
    const second = (await order(buyer, { sellerId: seller.id, amount: 100 })).json.order.id;
    await setUserStatus(buyer.id, "frozen");
    expectProblem(await call("POST", `/api/marketplace/orders/${first}/confirm`, { token: buyer.token }), 403, "account_frozen");
    await setUserStatus(buyer.id, "active");
    const db = d1Before(`update users set status = 'banned' where id = '${buyer.id}'`, /insert into "once_keys"/);
    expectProblem(await call("POST", `/api/marketplace/orders/${second}/confirm`, { token: buyer.token, db }), 403, "account_banned");
    expect((await balanceOf(seller.token)).balance).toBe(0);
    for (const id of [first, second]) expect((await call("GET", `/api/marketplace/orders/${id}`, { token: await adminToken() })).json).toMatchObject({ status: "escrow" });
    // Recorded debt does not stop a confirm (the escrowed coins already left the wallet; the cron would release them).
    const indebted = await funded(200);
    const owed = (await order(indebted, { sellerId: seller.id, amount: 100 })).json.order.id;
    const t = Date.now();
    const tx = `DEBT${t}${indebted.id}`.slice(0, 60);
    await env.DB.batch([
      env.DB.prepare("insert into transactions (id, type, status, asset, amount, user_id, metadata, created_at, completed_at) values (?, 'adjustment', 'completed', 'COIN', 10, ?, '{}', ?, ?)").bind(tx, indebted.id, t, t),
      env.DB.prepare("update accounts set balance = balance - 10 where id = ?").bind(`debt:${indebted.id}:COIN`),
      env.DB.prepare("update accounts set balance = balance + 10 where id = 'sys:adjustments:COIN'"),
      env.DB.prepare("insert into postings (transaction_id, account_id, asset, amount, balance_after, created_at) values (?, ?, 'COIN', -10, -10, ?), (?, 'sys:adjustments:COIN', 'COIN', 10, 0, ?)").bind(tx, `debt:${indebted.id}:COIN`, t, tx, t),
    ]);
    expect((await call("POST", `/api/marketplace/orders/${owed}/confirm`, { token: indebted.token })).status).toBe(200);
    // A confirm is a value-moving request like the order itself: it counts toward the rate limit.
    const buyer2 = await funded(100);
    const third = (await order(buyer2, { sellerId: seller.id, amount: 100 })).json.order.id;
    const limited = await call("POST", `/api/marketplace/orders/${third}/confirm`, { token: buyer2.token, vars: { RATE_LIMIT_PER_MINUTE: "1" } });
    expectProblem(limited, 429, "rate_limited");
  });

  it("a referral code of an account seen on the buyer's device raises suspicious_device", async () => {
    const device = `dev-${uniqueId("fp")}`;
    const [buyer, seller, affiliate] = [await funded(500), await newUser("seller"), await funded(50, "alt")];
    // The affiliate's account moves money from the device first (device records are written then).
    expect((await call("POST", "/api/wallet/transfer", { token: affiliate.token, body: { toUserId: seller.id, amount: 1 }, headers: { "x-device-fingerprint": device } })).status).toBe(201);
    const code = (await call("POST", "/api/marketplace/referral-codes", { token: affiliate.token })).json.code;
    const placed = await order(buyer, { sellerId: seller.id, amount: 100, referralCode: code }, { "x-device-fingerprint": device });
    expect(placed.status, placed.text).toBe(201);
    const alerts = await env.DB.prepare("select alert_type, details from fraud_alerts where user_id = ? and alert_type = 'suspicious_device'").bind(buyer.id).all<{ details: string }>();
    expect(alerts.results).toHaveLength(1);
    expect(JSON.parse(alerts.results[0]!.details)).toMatchObject({ facts: { event: "referral", affiliateSharesBuyerDevice: 1 } });
    const clean = await funded(500);
    expect((await order(clean, { sellerId: seller.id, amount: 100, referralCode: code }, { "x-device-fingerprint": `dev-${uniqueId("other")}` })).status).toBe(201);
    expect((await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = 'suspicious_device'").bind(clean.id).first<{ n: number }>())?.n).toBe(0);
  });

  it("business verification: submit, admin queue and review (audited), resubmission after rejection, no resubmission once verified", async () => {
    const seller = await newUser("biz");
    const admin = await adminToken();
    const body = { businessName: "CV Maju Bersama", licenseNumber: "9120009876543", taxId: "012345678901234" };
    for (const bad of [{ ...body, licenseNumber: "123" }, { ...body, taxId: "x" }, { ...body, businessName: "" }, { ...body, extra: 1 }]) {
      expectProblem(await call("POST", "/api/marketplace/business-verification", { token: seller.token, body: bad }), 400, "validation_failed");
    }
    // Two sellers waiting longer: the queue needs more than one page of two to reach this one.
    for (let i = 0; i < 2; i++) expect((await call("POST", "/api/marketplace/business-verification", { token: (await newUser("biz-early")).token, body })).status).toBe(201);
    expect((await call("POST", "/api/marketplace/business-verification", { token: seller.token, body })).json).toMatchObject({ status: "pending" });
    // While it waits for review it cannot be changed: an admin approves what they saw, not data sent meanwhile.
    expectProblem(await call("POST", "/api/marketplace/business-verification", { token: seller.token, body: { ...body, taxId: "999999999999999" } }), 409, "conflict");
    // The queue pages (oldest first): every pending one is reached once, whatever the page size.
    const queued: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await call("GET", `/api/admin/business-verifications?status=pending&limit=2${cursor ? `&cursor=${cursor}` : ""}`, { token: admin });
      expect(page.status, page.text).toBe(200);
      queued.push(...page.json.items.map((v: any) => v.userId));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(queued).toContain(seller.id);
    expect(new Set(queued).size).toBe(queued.length);
    expectProblem(await call("GET", "/api/admin/business-verifications", { token: seller.token }), 403, "forbidden");
    expect((await call("POST", `/api/admin/business-verifications/${seller.id}/review`, { token: admin, body: { decision: "rejected", note: "blurry license" } })).json).toMatchObject({ status: "rejected", note: "blurry license" });
    expectProblem(await call("POST", `/api/admin/business-verifications/${seller.id}/review`, { token: admin, body: { decision: "verified" } }), 404, "not_found");
    const firstSeen = ((await call("GET", "/api/admin/business-verifications?status=rejected&limit=100", { token: admin })).json.items.find((v: any) => v.userId === seller.id).submittedAt);
    await new Promise((r) => setTimeout(r, 5));
    const resubmitted = await call("POST", "/api/marketplace/business-verification", { token: seller.token, body: { ...body, taxId: "987654321098765" } });
    expect(resubmitted.json).toMatchObject({ status: "pending", note: null });
    // A review made from the earlier submission's view (its submittedAt) is refused: the admin never saw this data.
    expectProblem(await call("POST", `/api/admin/business-verifications/${seller.id}/review`, { token: admin, body: { decision: "verified", submittedAt: firstSeen } }), 409, "conflict");
    expect((await call("POST", `/api/admin/business-verifications/${seller.id}/review`, { token: admin, body: { decision: "verified", submittedAt: resubmitted.json.submittedAt } })).json).toMatchObject({ status: "verified", taxId: "987654321098765" });
    expectProblem(await call("POST", "/api/marketplace/business-verification", { token: seller.token, body }), 409, "conflict");
    const audit = await env.DB.prepare("select action from audit_log where subject_type = 'user' and subject_id = ? and action like 'business_verification.%' order by id").bind(seller.id).all<{ action: string }>();
    expect(audit.results.map((a) => a.action)).toEqual(["business_verification.submitted", "business_verification.rejected", "business_verification.submitted", "business_verification.verified"]);
  });
});

describe("model: random gifts, boosts, orders, confirms, cron releases and refunds", () => {
  type Cmd =
    | { kind: "gift"; quantity: number }
    | { kind: "boost" }
    | { kind: "order"; amount: number; referral: boolean }
    | { kind: "confirm"; pick: number }
    | { kind: "refund"; pick: number }
    | { kind: "cron" };
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    fc.record({ kind: fc.constant("gift" as const), quantity: fc.integer({ min: 1, max: 5 }) }),
    fc.record({ kind: fc.constant("boost" as const) }),
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("order" as const), amount: fc.integer({ min: 1, max: 150 }), referral: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("confirm" as const), pick: fc.nat(10) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("refund" as const), pick: fc.nat(10) }) },
    fc.record({ kind: fc.constant("cron" as const) }),
  );

  it("balances and the ledger match the model after every run", async () => {
    const admin = await adminToken();
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 10 }), async (cmds) => {
        // A verified buyer: the model does not track the daily spending limit.
        const buyer = await verifiedUser("buyer");
        await adjust(buyer.id, 900);
        const [seller, affiliate] = [await newUser("seller"), await newUser("affiliate")];
        const code = (await call("POST", "/api/marketplace/referral-codes", { token: affiliate.token })).json.code;
        const m = { buyer: 900, seller: 0, affiliate: 0 };
        const orders: { id: string; status: "escrow" | "released" | "refunded"; s: ReturnType<typeof orderSplit> }[] = [];
        const stream = uniqueId("s");
        for (const c of cmds) {
          if (c.kind === "gift") {
            const res = await call("POST", `/api/live/${stream}/gift`, { token: buyer.token, body: { giftId: "heart", streamerId: seller.id, quantity: c.quantity } });
            if (m.buyer < 10 * c.quantity) expectProblem(res, 422, "insufficient_funds");
            else {
              expect(res.status, res.text).toBe(201);
              m.buyer -= 10 * c.quantity;
              m.seller += Math.floor((10 * c.quantity * 7000) / 10_000);
            }
          } else if (c.kind === "boost") {
            const res = await call("POST", `/api/live/${stream}/boost`, { token: buyer.token, body: { level: "basic" } });
            if (res.status === 201) m.buyer -= res.json.price;
            else expectProblem(res, 422, "insufficient_funds");
          } else if (c.kind === "order") {
            const res = await order(buyer, { sellerId: seller.id, amount: c.amount, ...(c.referral ? { referralCode: code } : {}) });
            const split = orderSplit(c.amount, { commissionBps: 1200, processingBps: 300, affiliateBps: c.referral ? 500 : 0 });
            if (split.seller === 0) expectProblem(res, 422, "below_minimum");
            else if (m.buyer < c.amount) expectProblem(res, 422, "insufficient_funds");
            else {
              expect(res.status, res.text).toBe(201);
              m.buyer -= c.amount;
              orders.push({ id: res.json.order.id, status: "escrow", s: orderSplit(c.amount, { commissionBps: 1200, processingBps: 300, affiliateBps: c.referral ? 500 : 0 }) });
            }
          } else if (c.kind === "confirm" || c.kind === "refund") {
            const o = orders[c.pick % Math.max(orders.length, 1)];
            if (!o) continue;
            if (c.kind === "confirm") {
              const res = await call("POST", `/api/marketplace/orders/${o.id}/confirm`, { token: buyer.token });
              if (o.status !== "escrow") expectProblem(res, 409, "conflict");
              else {
                expect(res.status, res.text).toBe(200);
                o.status = "released";
                m.seller += o.s.seller;
                m.affiliate += o.s.affiliate;
              }
            } else {
              const res = await call("POST", `/api/marketplace/orders/${o.id}/refund`, { token: admin });
              if (o.status === "refunded") expectProblem(res, 409, "conflict");
              else {
                expect(res.status, res.text).toBe(200);
                if (o.status === "escrow") m.buyer += o.s.seller + o.s.platform + o.s.processing + o.s.affiliate;
                else {
                  m.buyer += o.s.seller + o.s.affiliate + o.s.platform;
                  m.seller -= o.s.seller;
                  m.affiliate -= o.s.affiliate;
                }
                o.status = "refunded";
              }
            }
          } else {
            await runCron(Date.now() + 8 * 86_400_000);
            const due = orders.filter((o) => o.status === "escrow");
            await waitFor(async () => {
              const rows = await Promise.all(due.map(async (o) => (await call("GET", `/api/marketplace/orders/${o.id}`, { token: buyer.token })).json.status));
              return rows.every((s) => s === "released");
            }, "cron release");
            for (const o of due) {
              o.status = "released";
              m.seller += o.s.seller;
              m.affiliate += o.s.affiliate;
            }
          }
        }
        // The seller never spends here, so claw-backs never exceed the wallet: no debt.
        expect(await full(buyer.token)).toMatchObject({ balance: m.buyer, debt: 0 });
        expect(await full(seller.token)).toMatchObject({ balance: m.seller, debt: 0 });
        expect(await full(affiliate.token)).toMatchObject({ balance: m.affiliate, debt: 0 });
      }),
      { numRuns: 10 },
    );
    await expectLedgerOk();
  }, 240_000);
});
