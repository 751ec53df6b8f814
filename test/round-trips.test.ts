import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adjust, adminToken, balanceOf, call, d1Stats, expectLedgerOk, expectProblem, newUser, setUserStatus, verifiedUser } from "./helpers";

/** One request, with the D1 round trips (and statements) it cost, its waitUntil work included. */
async function counted(method: string, path: string, options: Parameters<typeof call>[2] = {}) {
  const d1 = d1Stats();
  const res = await call(method, path, { ...options, d1 });
  return { res, roundTrips: d1.roundTrips, statements: d1.statements };
}

describe("one D1 round trip per request: hot paths decide inside their batch", () => {
  it("transfer, withdraw, balance and history each cost exactly one round trip", async () => {
    const alice = await verifiedUser("rt");
    const bob = await newUser("rt");
    await adjust(alice.id, 5000);

    const transfer = await counted("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 10 } });
    expect(transfer.res.status, transfer.res.text).toBe(201);
    expect(transfer.roundTrips).toBe(1);
    const keyed = await counted("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 10 }, headers: { "idempotency-key": `rt-${alice.id}` } });
    expect(keyed.res.status).toBe(201);
    expect(keyed.roundTrips).toBe(1);
    expect(keyed.res.json).toMatchObject({ balanceBefore: 4990, balanceAfter: 4980 });
    // A repeat is answered from the stored record: its batch aborts on the key, then the record is read.
    const replay = await counted("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 10 }, headers: { "idempotency-key": `rt-${alice.id}` } });
    expect(replay.res.json).toEqual(keyed.res.json);
    expect(replay.roundTrips).toBe(2);

    const withdraw = await counted("POST", "/api/wallet/withdraw", { token: alice.token, body: { asset: "COIN", amount: 1000 } });
    expect(withdraw.res.status, withdraw.res.text).toBe(202);
    expect(withdraw.roundTrips).toBe(1);

    const balance = await counted("GET", "/api/wallet/balance", { token: alice.token });
    expect(balance.res.json).toMatchObject({ balance: 4980, lockedBalance: 1000, availableBalance: 3980, kycStatus: "verified" });
    expect(balance.roundTrips).toBe(1);
    const history = await counted("GET", "/api/wallet/transactions?limit=5", { token: alice.token });
    expect(history.res.json.items.length).toBeGreaterThan(0);
    expect(history.roundTrips).toBe(1);
    // A refusal decided in the batch costs its round trip and nothing more.
    const refused = await counted("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: "nobody-at-all", amount: 1 } });
    expectProblem(refused.res, 404, "recipient_not_found");
    expect(refused.roundTrips).toBe(1);
    await expectLedgerOk();
  });

  it("unlock, gift and marketplace order and confirm cost one round trip once the isolate has read their terms; stale terms cost a refused batch and a fresh read, never a wrong price", async () => {
    const creator = await newUser("rt-creator");
    const [a, b, c] = await Promise.all([newUser("rt-a"), newUser("rt-b"), newUser("rt-c")]);
    for (const u of [a, b, c]) await adjust(u.id, 5000);
    const id = `rt-content-${creator.id}`;
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 100 } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/unlock`, { token: a.token })).status).toBe(201);
    const unlock = await counted("POST", `/api/content/${id}/unlock`, { token: b.token });
    expect(unlock.res.status, unlock.res.text).toBe(201);
    expect(unlock.roundTrips).toBe(1);
    // Repriced behind the isolate's back: the remembered terms are refused at commit and read again; the new price is paid.
    await env.DB.prepare("update content_items set price = 150 where id = ?").bind(id).run();
    const repriced = await counted("POST", `/api/content/${id}/unlock`, { token: c.token });
    expect(repriced.res.status, repriced.res.text).toBe(201);
    expect(repriced.res.json).toMatchObject({ price: 150 });
    expect(repriced.roundTrips).toBe(3);

    // Remembered at a price above every per-transaction limit (refused before any batch), then repriced under
    // it: the refusal the stale price would give is decided again on fresh terms.
    const dear = `rt-dear-${creator.id}`;
    expect((await call("PUT", `/api/content/${dear}/premium`, { token: creator.token, body: { price: 6000 } })).status).toBe(200);
    expectProblem(await call("POST", `/api/content/${dear}/unlock`, { token: a.token }), 403, "limit_exceeded");
    await env.DB.prepare("update content_items set price = 100 where id = ?").bind(dear).run();
    const cheap = await call("POST", `/api/content/${dear}/unlock`, { token: a.token, headers: { "idempotency-key": `dear-${a.id}` } });
    expect(cheap.status, cheap.text).toBe(201);
    expect(cheap.json).toMatchObject({ price: 100 });

    const stream = `rt-stream-${creator.id}`;
    expect((await call("POST", `/api/live/${stream}/gift`, { token: a.token, body: { giftId: "heart", streamerId: creator.id } })).status).toBe(201);
    const gift = await counted("POST", `/api/live/${stream}/gift`, { token: b.token, body: { giftId: "heart", streamerId: creator.id } });
    expect(gift.res.status, gift.res.text).toBe(201);
    expect(gift.roundTrips).toBe(1);

    const seller = await newUser("rt-seller");
    const affiliate = await newUser("rt-aff");
    const code = (await call("POST", "/api/marketplace/referral-codes", { token: affiliate.token })).json.code as string;
    expect((await call("POST", "/api/marketplace/orders", { token: a.token, body: { sellerId: seller.id, productId: "p", amount: 200, referralCode: code } })).status).toBe(201);
    const order = await counted("POST", "/api/marketplace/orders", { token: b.token, body: { sellerId: seller.id, productId: "p", amount: 200, referralCode: code } });
    expect(order.res.status, order.res.text).toBe(201);
    expect(order.roundTrips).toBe(1);
    const confirm = await counted("POST", `/api/marketplace/orders/${order.res.json.order.id}/confirm`, { token: b.token });
    expect(confirm.res.status, confirm.res.text).toBe(200);
    expect(confirm.roundTrips).toBe(1);
    // An order refunded behind the isolate's back: the confirm's batch is refused, the fresh read says why.
    const other = await call("POST", "/api/marketplace/orders", { token: c.token, body: { sellerId: seller.id, productId: "p", amount: 200 } });
    expect((await call("POST", `/api/marketplace/orders/${other.json.order.id}/refund`, { token: seller.token })).status).toBe(200);
    expectProblem(await call("POST", `/api/marketplace/orders/${other.json.order.id}/confirm`, { token: c.token }), 409, "conflict");
    expect((await balanceOf(seller.token)).balance).toBe(Math.floor((200 * (10_000 - 1200 - 300 - 500)) / 10_000));
    await expectLedgerOk();
  });

  it("a boost costs one round trip once the isolate knows its level's demand; demand moved behind its back costs a refused batch and a fresh read, never a wrong price or start", async () => {
    const creator = await newUser("rt-streamer");
    const [a, b, c] = await Promise.all([newUser("rt-ba"), newUser("rt-bb"), newUser("rt-bc")]);
    for (const u of [a, b, c]) await adjust(u.id, 5000);
    const boost = (u: { token: string }, stream: string) => counted("POST", `/api/live/${stream}/boost`, { token: u.token, body: { level: "basic" } });
    const quote = async () => (await call("GET", "/api/live/boost-price?level=basic", { token: a.token })).json.price as number;
    const [s1, s2, s3, s4] = ["1", "2", "3", "4"].map((n) => `rt-boost-${n}-${creator.id}`) as [string, string, string, string];

    expect((await boost(a, s1)).res.status).toBe(201);
    // Another stream, and the same stream again (it is extended), each in one round trip at the quoted price.
    let price = await quote();
    const other = await boost(b, s2);
    expect(other.res.status, other.res.text).toBe(201);
    expect(other.res.json.price).toBe(price);
    expect(other.roundTrips).toBe(1);
    price = await quote();
    const first = await call("GET", "/api/live/featured", { token: a.token });
    const extended = await boost(c, s1);
    expect(extended.res.status, extended.res.text).toBe(201);
    expect(extended.res.json.price).toBe(price);
    expect(extended.res.json.featuredFrom).toBe(first.json.items.find((s: { streamId: string }) => s.streamId === s1).featuredUntil);
    expect(extended.roundTrips).toBe(1);

    // A boost bought in another isolate: the remembered demand is refused at commit and read again; the new price is paid.
    const at = Date.now();
    await env.DB.prepare("insert into boost_purchases (transaction_id, stream_id, buyer_id, level, price, multiplier_bps, starts_at, expires_at, created_at) values (?1, ?2, ?3, 'basic', 100, 10000, ?4, ?5, ?4)")
      .bind(`rt-elsewhere-${creator.id}`, s3, c.id, at, at + 3_600_000)
      .run();
    price = await quote();
    const moved = await boost(a, s4);
    expect(moved.res.status, moved.res.text).toBe(201);
    expect(moved.res.json.price).toBe(price);
    expect(moved.roundTrips).toBe(3);
    // That stream is boosted already: a boost of it starts when that one ends, though this isolate never saw it.
    const behind = await boost(b, s3);
    expect(behind.res.status, behind.res.text).toBe(201);
    expect(behind.res.json.featuredFrom).toBe(new Date(at + 3_600_000).toISOString());
    await env.DB.prepare("update boost_purchases set expires_at = 0 where stream_id in (?1, ?2, ?3, ?4)").bind(s1, s2, s3, s4).run();
    await expectLedgerOk();
  });

  it("a seller's refund of an order in escrow is one round trip once the isolate knows the order; a banned seller is refused in the batch", async () => {
    const [buyer, seller] = [await newUser("rt-rf-buyer"), await newUser("rt-rf-seller")];
    await adjust(buyer.id, 1000);
    const placed = async () => (await call("POST", "/api/marketplace/orders", { token: buyer.token, body: { sellerId: seller.id, productId: "p", amount: 200 } })).json.order.id as string;
    const refund = await counted("POST", `/api/marketplace/orders/${await placed()}/refund`, { token: seller.token });
    expect(refund.res.status, refund.res.text).toBe(200);
    expect(refund.roundTrips).toBe(1);
    // Confirmed behind the isolate's back: the remembered order is refused at commit, read again, and the refusal says why.
    const released = await placed();
    await env.DB.prepare("update marketplace_orders set status = 'released' where id = ?").bind(released).run();
    expectProblem(await call("POST", `/api/marketplace/orders/${released}/refund`, { token: seller.token }), 403, "forbidden");
    const other = await placed();
    await setUserStatus(seller.id, "banned");
    expectProblem(await call("POST", `/api/marketplace/orders/${other}/refund`, { token: seller.token }), 403, "account_banned");
    expect((await balanceOf(buyer.token)).balance).toBe(1000 - 200 - 200);
    await setUserStatus(seller.id, "active");
  });

  it("an admin's refund of one buyer's purchase reads the item and the purchase in one round trip", async () => {
    const [creator, buyer] = [await newUser("rt-ar-creator"), await newUser("rt-ar-buyer")];
    await adjust(buyer.id, 500);
    const id = `rt-ar-${buyer.id}`;
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 100 } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/unlock`, { token: buyer.token })).status).toBe(201);
    const refund = await counted("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "buyer_request", userId: buyer.id } });
    expect(refund.res.status, refund.res.text).toBe(200);
    // The admin's standing (the caller gate), the item and purchase, the refund's batch.
    expect(refund.roundTrips).toBe(3);
    expect((await balanceOf(buyer.token)).balance).toBe(500);
    await expectLedgerOk();
  });

  it("a transfer racing an admin freeze never succeeds after the freeze committed", async () => {
    const alice = await newUser("race");
    const peers = await Promise.all(Array.from({ length: 4 }, () => newUser("peer")));
    await adjust(alice.id, 400);
    const alert = await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, 'manual', 'high', '{}', 'open', ?) returning id")
      .bind(`01RACE${Date.now().toString().padStart(20, "0")}`, alice.id, Date.now())
      .first<{ id: string }>();
    const token = await adminToken();
    const transfers = Array.from({ length: 20 }, (_, i) => call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: peers[i % 4]!.id, amount: 1 } }));
    const freeze = call("POST", "/api/fraud/review", { token, body: { alertId: alert!.id, status: "investigating", action: "frozen" } });
    const [frozen, ...results] = await Promise.all([freeze, ...transfers]);
    expect(frozen.status, frozen.text).toBe(200);
    for (const r of results) expect([201, 403]).toContain(r.status);
    for (const r of results.filter((r) => r.status === 403)) expect(r.json.code).toBe("account_frozen");
    const freezeAt = await env.DB.prepare("select id from audit_log where action = 'fraud.review' and subject_id = ?").bind(alert!.id).first<{ id: number }>();
    const moved = await env.DB.prepare("select max(a.id) as last, count(*) as n from audit_log a where a.action = 'wallet.transfer' and a.actor_id = ?").bind(alice.id).first<{ last: number | null; n: number }>();
    expect(moved!.n).toBe(results.filter((r) => r.status === 201).length);
    if (moved!.last !== null) expect(moved!.last).toBeLessThan(freezeAt!.id);
    expect((await balanceOf(alice.token)).balance).toBe(400 - moved!.n);
    // After the freeze, nothing more leaves.
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: peers[0]!.id, amount: 1 } }), 403, "account_frozen");
    await expectLedgerOk();
  });

  it("a burst of rate-limited requests costs D1 nothing beyond one alert per user and window", async () => {
    const alice = await newUser("burst");
    const bob = await newUser("burst");
    await adjust(alice.id, 1000);
    const vars = { RATE_LIMIT_PER_MINUTE: "5", RAPID_TRANSACTIONS_PER_MINUTE: "5" };
    const trips: number[] = [];
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await counted("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 1 }, vars, headers: { "x-device-fingerprint": "burst-phone" } });
      trips.push(r.roundTrips);
      statuses.push(r.res.status);
    }
    expect(statuses.slice(0, 5)).toEqual([201, 201, 201, 201, 201]);
    expect(statuses.slice(5).every((s) => s === 429)).toBe(true);
    // Five transfers (the first also records the new device inside its batch), then one alert for the burst.
    expect(trips.slice(0, 5)).toEqual([1, 1, 1, 1, 1]);
    expect(trips.slice(5).reduce((a, b) => a + b, 0)).toBe(1);
    const alerts = await env.DB.prepare("select alert_type from fraud_alerts where user_id = ?").bind(alice.id).all<{ alert_type: string }>();
    expect(alerts.results).toEqual([{ alert_type: "rapid_transactions" }]);
    const device = await env.DB.prepare("select count(*) as n from device_accounts where fingerprint = 'burst-phone' and user_id = ?").bind(alice.id).first<{ n: number }>();
    expect(device?.n).toBe(1);
  });

  it("a request refused by its rate limit costs D1 nothing on every rate-limited route, not only those that decide in their batch", async () => {
    const creator = await newUser("rl-d1");
    const ids = ["0", "1", "2", "3"].map((i) => `rl-d1-${creator.id}-${i}`);
    for (const id of ids) expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 10 } })).status).toBe(200);
    const vars = { RATE_LIMIT_PER_MINUTE: "1", CAMPAIGNS_PER_HOUR: "1" };
    expect((await call("DELETE", `/api/content/${ids[0]}`, { token: creator.token, vars })).status).toBe(202);
    expect((await call("POST", "/api/campaigns", { token: creator.token, body: { name: "first" }, vars })).status).toBe(201);
    const refused: [number, number][] = [];
    for (const id of ids.slice(1)) {
      const r = await counted("DELETE", `/api/content/${id}`, { token: creator.token, vars });
      refused.push([r.res.status, r.roundTrips]);
    }
    const campaign = await counted("POST", "/api/campaigns", { token: creator.token, body: { name: "second" }, vars });
    refused.push([campaign.res.status, campaign.roundTrips]);
    expect(refused).toEqual([[429, 0], [429, 0], [429, 0], [429, 0]]);
  });

  it("refused requests each naming a new device cost D1 nothing either (the object remembers only admitted devices, and a bounded number)", async () => {
    const alice = await newUser("rotate");
    const bob = await newUser("rotate");
    await adjust(alice.id, 1000);
    const vars = { RATE_LIMIT_PER_MINUTE: "5", RAPID_TRANSACTIONS_PER_MINUTE: "5" };
    const trips: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await counted("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 1 }, vars, headers: { "x-device-fingerprint": `rotating-${alice.id}-${i}` } });
      expect(r.res.status).toBe(i < 5 ? 201 : 429);
      trips.push(r.roundTrips);
    }
    expect(trips.slice(5).reduce((a, b) => a + b, 0)).toBe(1); // the burst's one alert
    const devices = await env.DB.prepare("select count(*) as n from device_accounts where user_id = ?").bind(alice.id).first<{ n: number }>();
    expect(devices?.n).toBe(5);
    const remembered = await runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(alice.id)), (_o, state) => state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM devices").one().n);
    expect(remembered).toBe(5);
  });

  it("GET /healthz touches no D1; GET /readyz asks D1 once", async () => {
    const health = await counted("GET", "/healthz");
    expect(health.res.status).toBe(200);
    expect(health.roundTrips).toBe(0);
    const ready = await counted("GET", "/readyz");
    expect(ready.res.status).toBe(200);
    expect(ready.res.json).toMatchObject({ ok: true });
    expect(ready.roundTrips).toBe(1);
  });
});
