import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { boostPrice, giftSplit } from "../src/live/live-rules";
import { MAX_AMOUNT } from "../src/lib/money";
import { adjust, adminToken, balanceOf, call, d1Before, d1FailingOnce, expectLedgerOk, expectProblem, newUser, setUserStatus, uniqueId, verifiedUser } from "./helpers";

const config = loadConfig({});
type User = { id: string; token: string };

async function funded(amount: number, prefix = "viewer") {
  const user = await newUser(prefix);
  if (amount > 0) await adjust(user.id, amount);
  return user;
}

const gift = (sender: User, streamId: string, body: unknown, vars?: Record<string, string>) => call("POST", `/api/live/${streamId}/gift`, { token: sender.token, body, vars });
const boost = (buyer: User, streamId: string, body: unknown) => call("POST", `/api/live/${streamId}/boost`, { token: buyer.token, body });
const systemBalance = async (id: string) => (await env.DB.prepare("select balance from accounts where id = ?").bind(id).first<{ balance: number }>())?.balance ?? 0;

describe("live split and boost pricing rules", () => {
  it("gift split: parts sum to the amount, streamer and processing floor(bps), the remainder to the platform", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_AMOUNT }), (amount) => {
        const s = giftSplit(amount, config);
        expect(s.streamer + s.platform + s.processing).toBe(amount);
        expect(s.streamer).toBe(Math.floor((amount * 7000) / 10_000));
        expect(s.processing).toBe(Math.floor((amount * 500) / 10_000));
        expect(s.platform).toBeGreaterThanOrEqual(Math.floor((amount * 2500) / 10_000));
      }),
      { numRuns: 500 },
    );
    expect(giftSplit(50, config)).toEqual({ streamer: 35, platform: 13, processing: 2 });
  });

  it("boost price: base × (1 + step × active), capped, never below the base, never falling with demand", () => {
    expect(boostPrice("basic", 0, config)).toMatchObject({ price: 100, multiplierBps: 10_000 });
    expect(boostPrice("basic", 3, config)).toMatchObject({ price: 130, multiplierBps: 13_000 });
    expect(boostPrice("premium", 1, config)).toMatchObject({ price: 550 });
    expect(boostPrice("premium", 1000, config)).toMatchObject({ price: 1500, multiplierBps: 30_000 });
    fc.assert(
      fc.property(fc.constantFrom("basic" as const, "premium" as const), fc.nat(500), (level, n) => {
        const a = boostPrice(level, n, config);
        const b = boostPrice(level, n + 1, config);
        expect(b.price).toBeGreaterThanOrEqual(a.price);
        expect(a.price).toBeGreaterThanOrEqual(a.baseCoins);
        expect(a.price).toBeLessThanOrEqual(a.baseCoins * 3);
      }),
    );
  });
});

describe("gift catalogue", () => {
  it("defaults Heart 10, Rose 50, Diamond 500, Rocket 5,000 with animations; admins add, change and retire gifts (audited)", async () => {
    const viewer = await newUser();
    const list = await call("GET", "/api/live/gifts", { token: viewer.token });
    expect(list.status).toBe(200);
    const byId = Object.fromEntries(list.json.items.map((g: any) => [g.id, g]));
    expect(byId).toMatchObject({ heart: { name: "Heart", coins: 10 }, rose: { coins: 50 }, diamond: { coins: 500 }, rocket: { coins: 5000 } });
    for (const g of list.json.items) expect(g.animation).toMatch(/^[a-z0-9-]+$/);

    const admin = await adminToken();
    const id = uniqueId("star").replace(/[^A-Za-z0-9_-]/g, "");
    expectProblem(await call("POST", "/api/admin/gifts", { token: viewer.token, body: { id, name: "Star", coins: 100, animation: "star" } }), 403, "forbidden");
    for (const bad of [{ coins: 0 }, { coins: -1 }, { coins: 1.5 }, { coins: 2 ** 60 }, { animation: "<script>" }, { name: "" }]) {
      expectProblem(await call("POST", "/api/admin/gifts", { token: admin, body: { id, name: "Star", coins: 100, animation: "star", ...bad } }), 400, "validation_failed");
    }
    const created = await call("POST", "/api/admin/gifts", { token: admin, body: { id, name: "Star", coins: 100, animation: "star-burst", sortOrder: 9 } });
    expect(created.status, created.text).toBe(201);
    expectProblem(await call("POST", "/api/admin/gifts", { token: admin, body: { id, name: "Star", coins: 100, animation: "star" } }), 409, "conflict");
    const streamer = await newUser("streamer");
    const sender = await funded(500);
    expect((await gift(sender, uniqueId("s"), { giftId: id, streamerId: streamer.id })).json.transaction.amount).toBe(100);
    const retired = await call("PUT", `/api/admin/gifts/${id}`, { token: admin, body: { name: "Star", coins: 120, animation: "star-burst", active: false } });
    expect(retired.json).toMatchObject({ coins: 120, active: false });
    expect((await call("GET", "/api/live/gifts", { token: viewer.token })).json.items.some((g: any) => g.id === id)).toBe(false);
    expect((await call("GET", "/api/admin/gifts", { token: admin })).json.items.some((g: any) => g.id === id)).toBe(true);
    expectProblem(await gift(sender, uniqueId("s"), { giftId: id, streamerId: streamer.id }), 404, "not_found");
    const audit = await env.DB.prepare("select action from audit_log where subject_type = 'gift' and subject_id = ? order by id").bind(id).all<{ action: string }>();
    expect(audit.results.map((a) => a.action)).toEqual(["gift.created", "gift.updated"]);
  });
});

describe("POST /api/live/:streamId/gift", () => {
  it("a Rose × 3: 150 coins, 105 to the streamer, 38 platform, 7 processing; the stream is bound to its streamer; the leaderboard ranks senders", async () => {
    const streamer = await newUser("streamer");
    const [alice, bob] = await Promise.all([funded(1000, "alice"), funded(1000, "bob")]);
    const stream = uniqueId("stream");
    const platform = await systemBalance("sys:platform_revenue:COIN");
    const processing = await systemBalance("sys:processing_fees:COIN");
    const res = await gift(alice, stream, { giftId: "rose", streamerId: streamer.id, quantity: 3 });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ streamId: stream, quantity: 3, gift: { id: "rose", animation: expect.any(String) }, transaction: { type: "gift", amount: 150, balanceBefore: 1000, balanceAfter: 850 } });
    expect((await balanceOf(streamer.token)).balance).toBe(105);
    expect((await systemBalance("sys:platform_revenue:COIN")) - platform).toBe(38);
    expect((await systemBalance("sys:processing_fees:COIN")) - processing).toBe(7);
    expect((await gift(bob, stream, { giftId: "diamond", streamerId: streamer.id })).status).toBe(201);
    expect((await gift(alice, stream, { giftId: "heart", streamerId: streamer.id })).status).toBe(201);

    const other = await newUser("other");
    expectProblem(await gift(bob, stream, { giftId: "heart", streamerId: other.id }), 409, "stream_mismatch");
    const board = await call("GET", `/api/live/${stream}/leaderboard`, { token: bob.token });
    expect(board.json).toEqual({
      streamId: stream,
      totals: { coins: 660, gifts: 5, senders: 2 },
      top: [
        { rank: 1, userId: bob.id, coins: 500, gifts: 1 },
        { rank: 2, userId: alice.id, coins: 160, gifts: 4 },
      ],
    });
    const earnings = await call("GET", "/api/creator/earnings", { token: streamer.token });
    expect(earnings.json.totals).toMatchObject({ gifts: 105 + 350 + 7, content: 0 });
    await expectLedgerOk();
  });

  it("a gift repriced or retired between its read and its batch is refused 409 and moves nothing", async () => {
    const admin = await adminToken();
    const created = async () => {
      const id = uniqueId("comet").replace(/[^A-Za-z0-9_-]/g, "");
      expect((await call("POST", "/api/admin/gifts", { token: admin, body: { id, name: "Comet", coins: 100, animation: "comet" } })).status).toBe(201);
      return id;
    };
    const streamer = await newUser("streamer");
    const sender = await funded(1000);
    const stream = uniqueId("s");
    const send = (id: string, db?: D1Database, headers: Record<string, string> = {}) => call("POST", `/api/live/${stream}/gift`, { token: sender.token, body: { giftId: id, streamerId: streamer.id }, db, headers });
    const [repriced, retired] = [await created(), await created()];
    const key = { "idempotency-key": `gift-${repriced}` };
    expectProblem(await send(repriced, d1Before(`update gifts set coins = 300 where id = '${repriced}'`, /"live_gifts"/), key), 409, "conflict");
    // A refusal caused by a concurrent change is not remembered by the key: the same key may try again.
    const retried = await send(repriced, undefined, key);
    expect(retried.status, retried.text).toBe(201);
    expect(retried.json).toMatchObject({ gift: { coins: 300 } });
    expectProblem(await send(retired, d1Before(`update gifts set active = 0 where id = '${retired}'`, /"live_gifts"/)), 409, "conflict");
    expect((await balanceOf(sender.token)).balance).toBe(700);
    // Terms this isolate remembers that changed since are refused at commit and read again: the new price is paid, a retired gift is gone.
    expectProblem(await send(retired), 404, "not_found");
    await env.DB.prepare("update gifts set coins = 200 where id = ?").bind(repriced).run();
    expect((await send(repriced)).json).toMatchObject({ gift: { coins: 200 } });
    expect((await balanceOf(sender.token)).balance).toBe(500);
    // A transport error is not a refusal: the batch may have committed, so remembered terms are not a reason to send it again.
    expect((await send(repriced, d1FailingOnce(/"live_gifts"/))).status).toBe(500);
    expect((await balanceOf(sender.token)).balance).toBe(500);
    expect((await balanceOf(streamer.token)).balance).toBe(Math.floor((500 * 7000) / 10_000));
    await expectLedgerOk();
  });

  it("hostile gifts are clear 4xx and move nothing", async () => {
    const streamer = await newUser("streamer");
    const sender = await funded(100);
    const stream = uniqueId("stream");
    const cases: [unknown, number, string][] = [
      [{ giftId: "rose", streamerId: sender.id }, 422, "self_gift"],
      [{ giftId: "nope", streamerId: streamer.id }, 404, "not_found"],
      [{ giftId: "rose", streamerId: "nobody-at-all" }, 404, "recipient_not_found"],
      [{ giftId: "rose", streamerId: streamer.id, quantity: 0 }, 400, "validation_failed"],
      [{ giftId: "rose", streamerId: streamer.id, quantity: 100 }, 400, "validation_failed"],
      [{ giftId: "rose", streamerId: streamer.id, quantity: 1.5 }, 400, "validation_failed"],
      [{ giftId: "rose", streamerId: streamer.id, quantity: "2" }, 400, "validation_failed"],
      [{ giftId: "rose' OR '1'='1", streamerId: streamer.id }, 400, "validation_failed"],
      [{ giftId: "rose", streamerId: streamer.id, amount: 1 }, 400, "validation_failed"],
      [{ giftId: "rocket", streamerId: streamer.id }, 403, "limit_exceeded"],
      [{ giftId: "diamond", streamerId: streamer.id }, 422, "insufficient_funds"],
    ];
    for (const [body, status, code] of cases) expectProblem(await gift(sender, stream, body), status, code);
    expectProblem(await gift(sender, "bad%20stream", { giftId: "rose", streamerId: streamer.id }), 400, "validation_failed");
    const banned = await newUser("banned");
    await setUserStatus(banned.id, "banned");
    expectProblem(await gift(sender, stream, { giftId: "heart", streamerId: banned.id }), 422, "recipient_unavailable");
    await setUserStatus(sender.id, "banned");
    expectProblem(await gift(sender, stream, { giftId: "heart", streamerId: streamer.id }), 403, "account_banned");
    expect((await balanceOf(sender.token)).balance).toBe(100);
    expect((await balanceOf(streamer.token)).balance).toBe(0);
    await expectLedgerOk();
  });

  it("large_gift_to_new_account fires for ≥ 1,000 coins to an account younger than 7 days, once per gift, and not otherwise", async () => {
    const sender = await verifiedUser("whale");
    await adjust(sender.id, 5000);
    const fresh = await newUser("fresh");
    const old = await newUser("old");
    await env.DB.prepare("update users set created_at = created_at - ? where id = ?").bind(30 * 86_400_000, old.id).run();
    const alerts = () => env.DB.prepare("select alert_type, severity, details from fraud_alerts where user_id = ? and alert_type = 'large_gift_to_new_account'").bind(sender.id).all<{ details: string }>();
    expect((await gift(sender, uniqueId("s"), { giftId: "diamond", streamerId: fresh.id, quantity: 1 })).status).toBe(201);
    expect((await alerts()).results).toHaveLength(0);
    expect((await gift(sender, uniqueId("s"), { giftId: "diamond", streamerId: old.id, quantity: 2 })).status).toBe(201);
    expect((await alerts()).results).toHaveLength(0);
    expect((await gift(sender, uniqueId("s"), { giftId: "diamond", streamerId: fresh.id, quantity: 2 })).status).toBe(201);
    const found = (await alerts()).results;
    expect(found).toHaveLength(1);
    expect(JSON.parse(found[0]!.details)).toMatchObject({ rule: "large_gift_to_new_account", level: 1, params: { minCoins: 1000, maxAgeDays: 7 }, facts: { coins: 1000 } });
    await expectLedgerOk();
  });
});

describe("badges", () => {
  it("Rising Star is awarded exactly once when 20 concurrent gifts cross 100 gifts received", async () => {
    const streamer = await newUser("star");
    const stream = uniqueId("stream");
    const early = await Promise.all(Array.from({ length: 6 }, () => funded(200)));
    for (const s of early) expect((await gift(s, stream, { giftId: "heart", streamerId: streamer.id, quantity: 15 })).status).toBe(201);
    // 90 received; 20 more at once cross 100.
    const crowd = await Promise.all(Array.from({ length: 20 }, () => funded(10)));
    const results = await Promise.all(crowd.map((s) => gift(s, stream, { giftId: "heart", streamerId: streamer.id })));
    expect(results.every((r) => r.status === 201)).toBe(true);
    const rows = await env.DB.prepare("select count(*) as n from badges where user_id = ? and badge = 'rising_star'").bind(streamer.id).first<{ n: number }>();
    expect(rows?.n).toBe(1);
    const badges = await call("GET", `/api/users/${streamer.id}/badges`, { token: crowd[0]!.token });
    expect(badges.json.items.map((b: any) => b.badge)).toEqual(["rising_star"]);
    expect((await env.DB.prepare("select gifts_received from user_stats where user_id = ?").bind(streamer.id).first<{ gifts_received: number }>())?.gifts_received).toBe(110);
  });

  it("Top Earner counts coins earned from gifts and content; Super Booster counts boosts bought", async () => {
    const creator = await newUser("earner");
    const fan = await funded(1000);
    const vars = { BADGE_TOP_EARNER_COINS: "600", BADGE_SUPER_BOOSTER_BOOSTS: "2" };
    const content = uniqueId("c");
    await call("PUT", `/api/content/${content}/premium`, { token: creator.token, body: { price: 500 } });
    expect((await call("POST", `/api/content/${content}/unlock`, { token: fan.token, vars })).status).toBe(201);
    expect((await call("GET", `/api/users/${creator.id}/badges`, { token: fan.token })).json.items).toEqual([]);
    // 350 from content + 350 from a Diamond crosses 600.
    expect((await gift(fan, uniqueId("s"), { giftId: "diamond", streamerId: creator.id }, vars)).status).toBe(201);
    expect((await call("GET", `/api/users/${creator.id}/badges`, { token: fan.token })).json.items.map((b: any) => b.badge)).toEqual(["top_earner"]);

    const booster = await verifiedUser("booster");
    await adjust(booster.id, 2000);
    for (let i = 0; i < 3; i++) expect((await call("POST", `/api/live/${uniqueId("s")}/boost`, { token: booster.token, body: { level: "basic" }, vars })).status).toBe(201);
    expect((await call("GET", `/api/users/${booster.id}/badges`, { token: booster.token })).json.items.map((b: any) => b.badge)).toEqual(["super_booster"]);
    expect((await env.DB.prepare("select count(*) as n from badges where user_id = ?").bind(booster.id).first<{ n: number }>())?.n).toBe(1);
    expectProblem(await call("GET", "/api/users/x'%20OR%201=1/badges", { token: booster.token }), 400, "validation_failed");
  });
});

describe("boosts", () => {
  it("20 boosts of one level bought at once: each is bought or told to send again (409 conflict, not remembered), and the same key then buys it", async () => {
    const buyers = await Promise.all(Array.from({ length: 20 }, () => newUser("booster")));
    await Promise.all(buyers.map((b) => adjust(b.id, 5000)));
    const send = (b: User, i: number) => call("POST", `/api/live/${`crowd-${b.id}`}/boost`, { token: b.token, body: { level: "basic" }, headers: { "idempotency-key": `crowd-${i}` } });
    const first = await Promise.all(buyers.map(send));
    for (const res of first) {
      if (res.status !== 201) expectProblem(res, 409, "conflict");
    }
    for (const [i, b] of buyers.entries()) {
      let res = first[i]!;
      for (let tries = 0; res.status !== 201 && tries < 25; tries++) res = await send(b, i);
      expect(res.status, res.text).toBe(201);
    }
    const bought = await env.DB.prepare(`select count(*) as n from boost_purchases where buyer_id in (${buyers.map(() => "?").join(",")})`).bind(...buyers.map((b) => b.id)).first<{ n: number }>();
    expect(bought?.n).toBe(20);
    await expectLedgerOk();
    // Demand is global: end these boosts, so the other tests quote from their own.
    await env.DB.prepare(`update boost_purchases set expires_at = 0 where buyer_id in (${buyers.map(() => "?").join(",")})`).bind(...buyers.map((b) => b.id)).run();
  });

  it("the price rises with demand; above maxPrice → 409 price_changed and nothing moves; a boosted stream's boost extends it; featured lists active boosts, homepage first", async () => {
    const buyer = await verifiedUser("booster");
    await adjust(buyer.id, 3000);
    const quote = async (level: string) => (await call("GET", `/api/live/boost-price?level=${level}`, { token: buyer.token })).json;
    const q0 = await quote("basic");
    expect(q0).toMatchObject({ level: "basic", baseCoins: 100 });
    expect(q0.price).toBe(boostPrice("basic", q0.activeBoosts, config).price);

    const streamA = uniqueId("sa");
    const first = await boost(buyer, streamA, { level: "basic", maxPrice: q0.price });
    expect(first.status, first.text).toBe(201);
    expect(first.json).toMatchObject({ level: "basic", price: q0.price, homepage: false, transaction: { type: "boost", amount: q0.price } });
    const q1 = await quote("basic");
    expect(q1.activeBoosts).toBe(q0.activeBoosts + 1);
    expect(q1.price).toBe(boostPrice("basic", q0.activeBoosts + 1, config).price);
    expect(q1.price).toBeGreaterThan(q0.price);

    const before = (await balanceOf(buyer.token)).balance;
    const refused = await boost(buyer, uniqueId("sb"), { level: "basic", maxPrice: q0.price });
    expectProblem(refused, 409, "price_changed");
    expect((await balanceOf(buyer.token)).balance).toBe(before);

    // Extending: starts when the running boost ends.
    const again = await boost(buyer, streamA, { level: "basic" });
    expect(again.status, again.text).toBe(201);
    expect(again.json.featuredFrom).toBe(first.json.featuredUntil);
    expect(Date.parse(again.json.featuredUntil) - Date.parse(first.json.featuredUntil)).toBe(3_600_000);

    const streamP = uniqueId("sp");
    const premium = await boost(buyer, streamP, { level: "premium" });
    expect(premium.json).toMatchObject({ homepage: true });
    expect(Date.parse(premium.json.featuredUntil) - Date.parse(premium.json.featuredFrom)).toBe(24 * 3_600_000);
    const boostRevenue = await systemBalance("sys:boost_revenue:COIN");
    expect(boostRevenue).toBeGreaterThanOrEqual(first.json.price + again.json.price + premium.json.price);

    const featured = (await call("GET", "/api/live/featured", { token: buyer.token })).json.items as any[];
    const a = featured.find((f) => f.streamId === streamA);
    const p = featured.findIndex((f) => f.streamId === streamP);
    expect(a).toMatchObject({ homepage: false, featuredUntil: again.json.featuredUntil });
    expect(featured[p]).toMatchObject({ homepage: true });
    expect(p).toBeLessThan(featured.findIndex((f) => f.streamId === streamA));

    // Expired boosts drop out without any job.
    await env.DB.prepare("update boost_purchases set starts_at = starts_at - ?1, expires_at = expires_at - ?1 where stream_id = ?2").bind(3 * 3_600_000, streamA).run();
    expect(((await call("GET", "/api/live/featured", { token: buyer.token })).json.items as any[]).some((f) => f.streamId === streamA)).toBe(false);
    for (const bad of [{ level: "gold" }, { level: "basic", maxPrice: 0 }, { level: "basic", maxPrice: -5 }, { level: "basic", maxPrice: 2 ** 60 }, {}]) {
      expectProblem(await boost(buyer, uniqueId("s"), bad), 400, "validation_failed");
    }
    expectProblem(await call("GET", "/api/live/boost-price?level=gold", { token: buyer.token }), 400, "validation_failed");
    await expectLedgerOk();
  });

  it("concurrent boosts at the same demand: each pays the price of the demand it committed against", async () => {
    const buyers = await Promise.all(Array.from({ length: 5 }, async () => {
      const u = await verifiedUser("rush");
      await adjust(u.id, 1000);
      return u;
    }));
    const results = await Promise.all(buyers.map((b) => boost(b, uniqueId("s"), { level: "premium" })));
    for (const [i, r] of results.entries()) {
      expect([201, 409]).toContain(r.status);
      if (r.status === 201) expect((await balanceOf(buyers[i]!.token)).balance).toBe(1000 - r.json.price);
      else expect((await balanceOf(buyers[i]!.token)).balance).toBe(1000);
    }
    const prices = results.filter((r) => r.status === 201).map((r) => r.json.multiplierBps).sort((x, y) => x - y);
    // Each committed boost saw one more active boost than the one before it.
    for (let i = 1; i < prices.length; i++) expect(prices[i]).toBeGreaterThan(prices[i - 1]);
    await expectLedgerOk();
  });
});

describe("a banned streamer's stream", () => {
  it("is neither featured nor boostable while the ban lasts", async () => {
    const streamer = await newUser("banned-streamer");
    const fan = await funded(1000, "fan");
    const stream = uniqueId("s");
    expect((await call("POST", `/api/live/${stream}/gift`, { token: fan.token, body: { giftId: "heart", streamerId: streamer.id } })).status).toBe(201);
    expect((await call("POST", `/api/live/${stream}/boost`, { token: fan.token, body: { level: "basic" } })).status).toBe(201);
    const featured = async () => ((await call("GET", "/api/live/featured?limit=100", { token: fan.token })).json.items as { streamId: string }[]).some((f) => f.streamId === stream);
    expect(await featured()).toBe(true);
    const demand = async () => (await call("GET", "/api/live/boost-price?level=basic", { token: fan.token })).json.activeBoosts as number;
    const withIt = await demand();
    await setUserStatus(streamer.id, "banned");
    expect(await featured()).toBe(false);
    // Its boost no longer competes for the featured places, so it no longer prices the others.
    expect(await demand()).toBe(withIt - 1);
    const before = (await balanceOf(fan.token)).balance;
    expectProblem(await call("POST", `/api/live/${stream}/boost`, { token: fan.token, body: { level: "basic" } }), 422, "recipient_unavailable");
    expect((await balanceOf(fan.token)).balance).toBe(before);
  });
});
