import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { contentSplit } from "../src/content/content-rules";
import { earningsQuery } from "../src/creator/earnings";
import { createDb } from "../src/db/client";
import { MAX_AMOUNT } from "../src/lib/money";
import { adjust, adminToken, balanceOf, call, d1Before, tokenFor, expectLedgerOk, expectProblem, irisNotify, irisReferenceOf, midtransNotification, newUser, postMidtransWebhook, setUserStatus, uniqueId, verifiedUser } from "./helpers";

const config = loadConfig({});
type User = { id: string; token: string };

async function priced(creator: User, price: number, id = uniqueId("c")) {
  const res = await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price } });
  expect(res.status, res.text).toBe(200);
  return id;
}

const unlock = (buyer: User, id: string, headers: Record<string, string> = {}) => call("POST", `/api/content/${id}/unlock`, { token: buyer.token, headers });

async function funded(amount: number, prefix = "buyer") {
  const user = await newUser(prefix);
  if (amount > 0) await adjust(user.id, amount);
  return user;
}

const full = async (token: string) => (await call("GET", "/api/wallet/balance", { token })).json as { balance: number; availableBalance: number; debt: number; idrDebt: number };

/** Waits for an item's refund run (through the real queue) to finish. */
async function refundsDone(id: string) {
  const token = await adminToken();
  for (let i = 0; i < 600; i++) {
    const p = await call("GET", `/api/admin/content/${id}/refunds`, { token });
    expect(p.status, p.text).toBe(200);
    if (p.json.status === "done") return p.json;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`refunds of ${id} did not finish`);
}

const systemBalance = async (id: string) => (await env.DB.prepare("select balance from accounts where id = ?").bind(id).first<{ balance: number }>())?.balance ?? 0;

/** What the ledger holds for an item: postings of its purchases and refunds, by who holds them. */
async function ledgerOfContent(contentId: string, creatorId: string) {
  const rows = await env.DB.prepare(
    `select p.account_id as account, sum(p.amount) as amount from postings p join transactions t on t.id = p.transaction_id
     where json_extract(t.metadata, '$.contentId') = ? group by p.account_id`,
  )
    .bind(contentId)
    .all<{ account: string; amount: number }>();
  const of = (account: string) => rows.results.filter((r) => r.account === account).reduce((s, r) => s + r.amount, 0);
  return { creator: of(`usr:${creatorId}:COIN`) + of(`debt:${creatorId}:COIN`), platform: of("sys:platform_revenue:COIN"), processing: of("sys:processing_fees:COIN") };
}

describe("content split (SPEC §9, §3)", () => {
  it("for any price the parts sum to it, each is floor(bps) and the remainder goes to the platform", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_AMOUNT }), (price) => {
        const s = contentSplit(price, config);
        expect(s.creator + s.platform + s.processing).toBe(price);
        expect(s.creator).toBe(Math.floor((price * 7000) / 10_000));
        expect(s.processing).toBe(Math.floor((price * 500) / 10_000));
        expect(s.platform).toBe(price - s.creator - s.processing);
        expect(s.platform).toBeGreaterThanOrEqual(Math.floor((price * 2500) / 10_000));
      }),
      { numRuns: 500 },
    );
    expect(contentSplit(1, config)).toEqual({ creator: 0, platform: 1, processing: 0 });
    expect(contentSplit(999, config)).toEqual({ creator: 699, platform: 251, processing: 49 });
  });
});

describe("registering and pricing content", () => {
  it("the first registrant is the creator; only they reprice; an admin reassigns", async () => {
    const creator = await newUser("creator");
    const other = await newUser("other");
    const id = await priced(creator, 250);
    const view = await call("GET", `/api/content/${id}`, { token: other.token });
    expect(view.json).toMatchObject({ id, creatorId: creator.id, price: 250, purchaseCount: 0, available: true, status: "available" });
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 300 } })).json.price).toBe(300);
    expectProblem(await call("PUT", `/api/content/${id}/premium`, { token: other.token, body: { price: 1 } }), 403, "forbidden");
    expect((await call("GET", `/api/content/${id}`, { token: other.token })).json).toMatchObject({ creatorId: creator.id, price: 300 });

    const moved = await call("POST", `/api/admin/content/${id}/owner`, { token: await adminToken(), body: { creatorId: other.id } });
    expect(moved.status, moved.text).toBe(200);
    expect((await call("PUT", `/api/content/${id}/premium`, { token: other.token, body: { price: 40 } })).json).toMatchObject({ creatorId: other.id, price: 40 });
    expectProblem(await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 1 } }), 403, "forbidden");
    expectProblem(await call("POST", `/api/admin/content/${id}/owner`, { token: other.token, body: { creatorId: other.id } }), 403, "forbidden");
    const audit = await env.DB.prepare("select action from audit_log where subject_id = ? order by id").bind(id).all<{ action: string }>();
    expect(audit.results.map((a) => a.action)).toEqual(["content.priced", "content.priced", "content.reassigned", "content.priced"]);
  });

  it("reassigning an unknown item answers 404 and changes nothing: no user row for the named creator", async () => {
    const stranger = uniqueId("never-seen");
    expectProblem(await call("POST", `/api/admin/content/${uniqueId("c")}/owner`, { token: await adminToken(), body: { creatorId: stranger } }), 404, "not_found");
    expect(await env.DB.prepare("select count(*) as n from users where id = ?").bind(stranger).first<{ n: number }>("n")).toBe(0);
  });

  it("after a reassignment, the item's revenue shows its creator their own sales, not what the previous creator earned", async () => {
    const [first, second] = [await newUser("creator"), await newUser("creator")];
    const id = await priced(first, 300);
    expect((await unlock(await funded(300), id)).status).toBe(201);
    expect((await call("POST", `/api/admin/content/${id}/owner`, { token: await adminToken(), body: { creatorId: second.id } })).status).toBe(200);
    const revenue = await call("GET", `/api/content/${id}/revenue`, { token: second.token });
    expect(revenue.json).toEqual({ purchaseCount: 0, revenue: { total: 0, creator: 0, platform: 0, processing: 0 }, refunds: { count: 0, total: 0 } });
    expect((await unlock(await funded(300), id)).status).toBe(201);
    expect((await call("GET", `/api/content/${id}/revenue`, { token: second.token })).json).toMatchObject({ purchaseCount: 1, revenue: { creator: 210 } });
  });

  const hostilePrices: [string, unknown][] = [
    ["zero", { price: 0 }],
    ["negative", { price: -5 }],
    ["fractional", { price: 1.5 }],
    ["2^60", { price: 2 ** 60 }],
    ["over 1,000,000", { price: 1_000_001 }],
    ["a string", { price: "100" }],
    ["null", { price: null }],
    ["missing", {}],
    ["an unknown field", { price: 10, creatorId: "someone" }],
  ];
  it.each(hostilePrices)("a price that is %s is refused and registers nothing", async (_name, body) => {
    const creator = await newUser("creator");
    const id = uniqueId("c");
    const res = await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body });
    expectProblem(res, 400, "validation_failed");
    expectProblem(await call("GET", `/api/content/${id}`, { token: creator.token }), 404, "not_found");
  });

  it("hostile ids and unknown content are clear 4xx", async () => {
    const user = await newUser();
    for (const id of ["x'%20OR%20'1'%3D'1", "a;DROP%20TABLE%20accounts", "a".repeat(65)]) {
      expectProblem(await call("GET", `/api/content/${id}`, { token: user.token }), 400, "validation_failed");
      expectProblem(await call("POST", `/api/content/${id}/unlock`, { token: user.token }), 400, "validation_failed");
    }
    for (const [method, path] of [["GET", ""], ["GET", "/access"], ["POST", "/unlock"], ["DELETE", ""], ["GET", "/revenue"]] as const) {
      expectProblem(await call(method, `/api/content/${uniqueId("nothing")}${path}`, { token: user.token }), 404, "not_found");
    }
    expectProblem(await call("GET", `/api/content/${uniqueId("c")}`), 401, "unauthorized");
  });
});

describe("a removal with nothing to refund", () => {
  it("is done at once, with its finish time (it was done with finishedAt null)", async () => {
    const creator = await newUser("lonely");
    const id = await priced(creator, 100);
    const removed = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } });
    expect(removed.status, removed.text).toBe(202);
    const progress = await call("GET", `/api/admin/content/${id}/refunds`, { token: await adminToken() });
    expect(progress.json).toMatchObject({ purchases: 0, refunded: 0, pending: 0, status: "done" });
    expect(progress.json.finishedAt).toBe(progress.json.startedAt);
  });
});

describe("POST /api/content/:id/unlock", () => {
  it("splits the price 7000/2500/500, freezes it on the purchase, grants access and shows in revenue and earnings", async () => {
    const creator = await newUser("creator");
    const buyer = await funded(1000);
    const id = await priced(creator, 333);
    const platformBefore = await systemBalance("sys:platform_revenue:COIN");
    const processingBefore = await systemBalance("sys:processing_fees:COIN");
    expect((await call("GET", `/api/content/${id}/access`, { token: buyer.token })).json).toEqual({ access: false });

    const res = await unlock(buyer, id);
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ contentId: id, price: 333, transaction: { type: "purchase", amount: 333, direction: "out", balanceBefore: 1000, balanceAfter: 667 } });
    expect((await balanceOf(buyer.token)).balance).toBe(667);
    expect((await balanceOf(creator.token)).balance).toBe(233);
    expect((await systemBalance("sys:platform_revenue:COIN")) - platformBefore).toBe(84);
    expect((await systemBalance("sys:processing_fees:COIN")) - processingBefore).toBe(16);
    const access = await call("GET", `/api/content/${id}/access`, { token: buyer.token });
    expect(access.json).toMatchObject({ access: true, refunded: false, purchasedAt: expect.any(String) });
    expect((await call("GET", `/api/content/${id}/access`, { token: creator.token })).json).toEqual({ access: true });

    // A reprice does not touch the purchase.
    await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 500 } });
    const purchase = await env.DB.prepare("select * from content_purchases where id = ?").bind(res.json.purchaseId).first<Record<string, number>>();
    expect(purchase).toMatchObject({ price: 333, creator_share: 233, platform_share: 84, processing_share: 16 });
    expect((await call("GET", `/api/content/${id}`, { token: buyer.token })).json).toMatchObject({ price: 500, purchaseCount: 1 });

    const revenue = await call("GET", `/api/content/${id}/revenue`, { token: creator.token });
    expect(revenue.json).toEqual({ purchaseCount: 1, revenue: { total: 333, creator: 233, platform: 84, processing: 16 }, refunds: { count: 0, total: 0 } });
    expectProblem(await call("GET", `/api/content/${id}/revenue`, { token: buyer.token }), 403, "forbidden");
    const earnings = await call("GET", "/api/creator/earnings", { token: creator.token });
    expect(earnings.status, earnings.text).toBe(200);
    expect(earnings.json.totals).toEqual({ content: 233, gifts: 0, marketplace: 0, payouts: 0 });
    expect(earnings.json.days).toEqual([{ day: earnings.json.to, content: 233, gifts: 0, marketplace: 0, payouts: 0 }]);
    // The buyer earned nothing.
    expect((await call("GET", "/api/creator/earnings", { token: buyer.token })).json.totals.content).toBe(0);
    await expectLedgerOk();
  });

  it("a second unlock is 409 already_unlocked and moves nothing; a replay with the same Idempotency-Key answers the first", async () => {
    const creator = await newUser("creator");
    const buyer = await funded(500);
    const id = await priced(creator, 100);
    const first = await unlock(buyer, id, { "idempotency-key": "unlock-1" });
    expect(first.status).toBe(201);
    const replay = await unlock(buyer, id, { "idempotency-key": "unlock-1" });
    expect(replay.status).toBe(201);
    expect(replay.json).toEqual(first.json);
    expectProblem(await unlock(buyer, id), 409, "already_unlocked");
    expectProblem(await unlock(buyer, id, { "idempotency-key": "unlock-2" }), 409, "already_unlocked");
    expect((await balanceOf(buyer.token)).balance).toBe(400);
    expect((await call("GET", `/api/content/${id}`, { token: buyer.token })).json.purchaseCount).toBe(1);
    await expectLedgerOk();
  });

  it("20 concurrent unlocks by one buyer: exactly one succeeds", async () => {
    const creator = await newUser("creator");
    const buyer = await funded(1000);
    const id = await priced(creator, 50);
    const results = await Promise.all(Array.from({ length: 20 }, () => unlock(buyer, id)));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of results.filter((r) => r.status !== 201)) expectProblem(r, 409, "already_unlocked");
    expect((await balanceOf(buyer.token)).balance).toBe(950);
    expect((await balanceOf(creator.token)).balance).toBe(35);
    expect((await call("GET", `/api/content/${id}`, { token: buyer.token })).json.purchaseCount).toBe(1);
    await expectLedgerOk();
  });

  it("a reprice racing unlocks: each buyer pays the price frozen on their purchase", async () => {
    const creator = await newUser("creator");
    const buyers = await Promise.all(Array.from({ length: 6 }, () => funded(500)));
    const id = await priced(creator, 100);
    const [, ...unlocks] = await Promise.all([call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 200 } }), ...buyers.map((b) => unlock(b, id))]);
    for (const [i, r] of unlocks.entries()) {
      expect(r.status, r.text).toBe(201);
      expect([100, 200]).toContain(r.json.price);
      expect((await balanceOf(buyers[i]!.token)).balance).toBe(500 - r.json.price);
    }
    await expectLedgerOk();
  });

  it("refuses its own creator, a short wallet, a banned or frozen buyer, a banned creator, removed content; nothing moves", async () => {
    const creator = await funded(100, "creator");
    const id = await priced(creator, 60);
    expectProblem(await unlock(creator, id), 422, "own_content");
    const poor = await funded(59);
    expectProblem(await unlock(poor, id), 422, "insufficient_funds");
    const banned = await funded(100);
    await setUserStatus(banned.id, "banned");
    expectProblem(await unlock(banned, id), 403, "account_banned");
    const frozen = await funded(100);
    await setUserStatus(frozen.id, "frozen");
    expectProblem(await unlock(frozen, id), 403, "account_frozen");
    expect((await balanceOf(creator.token)).balance).toBe(100);
    expect((await balanceOf(poor.token)).balance).toBe(59);
    expect((await call("GET", `/api/content/${id}`, { token: creator.token })).json.purchaseCount).toBe(0);
    // A banned creator earns nothing (as a banned streamer or seller): their content cannot be bought.
    const bannedCreator = await newUser("creator");
    const theirs = await priced(bannedCreator, 60);
    await setUserStatus(bannedCreator.id, "banned");
    const buyer = await funded(100);
    expectProblem(await unlock(buyer, theirs), 422, "recipient_unavailable");
    expect((await balanceOf(buyer.token)).balance).toBe(100);
    expect((await balanceOf(bannedCreator.token)).balance).toBe(0);
    expect((await call("DELETE", `/api/content/${id}`, { token: creator.token })).status).toBe(202);
    expectProblem(await unlock(poor, id), 404, "not_found");
    await expectLedgerOk();
  });

  it("counts against the spending limits (rupiah value, 403) and the rate limit", async () => {
    const creator = await newUser("creator");
    const buyer = await funded(5000);
    // Unverified: at most Rp 50,000 (500 coins) per transaction and Rp 100,000 (1,000 coins) per day.
    expectProblem(await unlock(buyer, await priced(creator, 501)), 403, "limit_exceeded");
    expect((await unlock(buyer, await priced(creator, 500))).status).toBe(201);
    expect((await unlock(buyer, await priced(creator, 400))).status).toBe(201);
    expectProblem(await unlock(buyer, await priced(creator, 101)), 403, "limit_exceeded");
    expect((await balanceOf(buyer.token)).balance).toBe(4100);

    const hasty = await funded(100);
    const id = await priced(creator, 1);
    const vars = { RATE_LIMIT_PER_MINUTE: "2" };
    expect((await call("POST", `/api/content/${id}/unlock`, { token: hasty.token, vars })).status).toBe(201);
    expectProblem(await call("POST", `/api/content/${id}/unlock`, { token: hasty.token, vars }), 409, "already_unlocked");
    const limited = await call("POST", `/api/content/${await priced(creator, 1)}/unlock`, { token: hasty.token, vars });
    expectProblem(limited, 429, "rate_limited");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await balanceOf(hasty.token)).balance).toBe(99);
    await expectLedgerOk();
  });
});

describe("content refunds", () => {
  it("a buyer's request: full refund once, even when asked concurrently; access ends; a new unlock is possible", async () => {
    const creator = await newUser("creator");
    const buyer = await funded(300);
    const id = await priced(creator, 200);
    expect((await unlock(buyer, id)).status).toBe(201);
    const admin = await adminToken();
    const body = { reason: "buyer_request", userId: buyer.id };
    const results = await Promise.all(Array.from({ length: 5 }, () => call("POST", `/api/content/${id}/refund`, { token: admin, body })));
    const ok = results.filter((r) => r.status === 200);
    expect(ok.map((r) => r.json.outcome)).toEqual(["refunded"]);
    // The others read it refunded (404), or lost in their batch (409: they refunded nothing).
    for (const r of results.filter((r) => r.status !== 200)) expectProblem(r, r.status, r.status === 404 ? "not_found" : "already_applied");
    expect(results.every((r) => [200, 404, 409].includes(r.status))).toBe(true);
    expect((await balanceOf(buyer.token)).balance).toBe(300);
    expect((await balanceOf(creator.token)).balance).toBe(0);
    expectProblem(await call("POST", `/api/content/${id}/refund`, { token: admin, body }), 404, "not_found");
    expect((await call("GET", `/api/content/${id}/access`, { token: buyer.token })).json).toMatchObject({ access: false, refunded: true });
    expect((await call("GET", `/api/content/${id}/revenue`, { token: creator.token })).json).toEqual({
      purchaseCount: 1,
      revenue: { total: 0, creator: 0, platform: 0, processing: 0 },
      refunds: { count: 1, total: 200 },
    });
    const refunds = await env.DB.prepare("select count(*) as n from transactions where type = 'refund' and json_extract(metadata, '$.contentId') = ?").bind(id).first<{ n: number }>();
    expect(refunds?.n).toBe(1);
    expect((await unlock(buyer, id)).status).toBe(201);
    expect((await call("GET", `/api/content/${id}/access`, { token: buyer.token })).json).toMatchObject({ access: true, refunded: false });
    await expectLedgerOk();
  });

  it("after 24 hours a buyer's refund is refused while the content is available; only admins refund", async () => {
    const creator = await newUser("creator");
    const buyer = await funded(300);
    const id = await priced(creator, 100);
    const purchase = (await unlock(buyer, id)).json.purchaseId;
    expectProblem(await call("POST", `/api/content/${id}/refund`, { token: buyer.token, body: { reason: "buyer_request", userId: buyer.id } }), 403, "forbidden");
    expectProblem(await call("POST", `/api/content/${id}/refund`, { token: creator.token, body: { reason: "admin_removed" } }), 403, "forbidden");
    await env.DB.prepare("update content_purchases set purchased_at = purchased_at - ? where id = ?").bind(24 * 3_600_000 + 60_000, purchase).run();
    const admin = await adminToken();
    expectProblem(await call("POST", `/api/content/${id}/refund`, { token: admin, body: { reason: "buyer_request", userId: buyer.id } }), 422, "refund_window_closed");
    for (const body of [{ reason: "because" }, { reason: "buyer_request" }, { reason: "buyer_request", userId: "x' OR 1=1" }, { reason: "admin_removed", userId: buyer.id }]) {
      expectProblem(await call("POST", `/api/content/${id}/refund`, { token: admin, body }), 400, "validation_failed");
    }
    expect((await balanceOf(buyer.token)).balance).toBe(200);
    await expectLedgerOk();
  });

  it("a refund racing a second unlock: never two live purchases, every coin accounted for", async () => {
    const creator = await newUser("creator");
    const admin = await adminToken();
    for (let round = 0; round < 4; round++) {
      const buyer = await funded(500);
      const id = await priced(creator, 100);
      expect((await unlock(buyer, id)).status).toBe(201);
      const [refund, again] = await Promise.all([call("POST", `/api/content/${id}/refund`, { token: admin, body: { reason: "buyer_request", userId: buyer.id } }), unlock(buyer, id)]);
      expect(refund.status, refund.text).toBe(200);
      expect([201, 409]).toContain(again.status);
      const rows = await env.DB.prepare("select count(*) as live, (select count(*) from content_purchases where content_id = ?1) as total from content_purchases where content_id = ?1 and refunded_at is null").bind(id).first<{ live: number; total: number }>();
      expect(rows?.live).toBe(again.status === 201 ? 1 : 0);
      expect((await balanceOf(buyer.token)).balance).toBe(500 - 100 * rows!.live);
    }
    await expectLedgerOk();
  });

  it("a frozen creator, or one awaiting verification, cannot delete (full refunds move their coins out to the buyers); an admin still can remove", async () => {
    const creator = await newUser("frozen-creator");
    const buyer = await newUser("accomplice");
    await adjust(buyer.id, 500);
    const id = `frozen-c-${creator.id}`;
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 500 } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/unlock`, { token: buyer.token })).status).toBe(201);
    await setUserStatus(creator.id, "frozen");
    expectProblem(await call("DELETE", `/api/content/${id}`, { token: creator.token }), 403, "account_frozen");
    await setUserStatus(creator.id, "active");
    await env.DB.prepare("update users set verification_required = 1 where id = ?").bind(creator.id).run();
    expectProblem(await call("DELETE", `/api/content/${id}`, { token: creator.token }), 403, "verification_required");
    expect((await env.DB.prepare("select status from content_items where id = ?").bind(id).first<{ status: string }>())?.status).toBe("available");
    expect([(await balanceOf(creator.token)).balance, (await balanceOf(buyer.token)).balance]).toEqual([350, 0]);
    await expectLedgerOk();
  });

  it("a creator deleting content with 250 buyers refunds every one exactly once, in queue chunks, with progress", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 10);
    const buyers: User[] = [];
    for (let i = 0; i < 250; i += 25) {
      buyers.push(...(await Promise.all(Array.from({ length: 25 }, () => funded(10)))));
    }
    for (let i = 0; i < 250; i += 25) {
      const res = await Promise.all(buyers.slice(i, i + 25).map((b) => unlock(b, id)));
      expect(res.every((r) => r.status === 201)).toBe(true);
    }
    expect((await balanceOf(creator.token)).balance).toBe(250 * 7);
    expectProblem(await call("DELETE", `/api/content/${id}`, { token: buyers[0]!.token }), 403, "forbidden");

    const deleted = await call("DELETE", `/api/content/${id}`, { token: creator.token });
    expect(deleted.status, deleted.text).toBe(202);
    expect(deleted.json).toMatchObject({ contentId: id, kind: "full", reason: "creator_deleted", purchases: 250 });
    const done = await refundsDone(id);
    // Fan-out steps of 120 purchases (QUEUE_FANOUT_PAGE in the tests): 3 + 3 + 1 messages of at most 50.
    expect(done).toMatchObject({ purchases: 250, refunded: 250, pending: 0, status: "done", finishedAt: expect.any(String), queueMessages: 7 });
    // Resuming a finished run sends nothing and refunds nothing twice.
    const resumed = await call("POST", `/api/admin/content/${id}/refunds/resume`, { token: await adminToken() });
    expect(resumed.json).toMatchObject({ refunded: 250 });
    await new Promise((r) => setTimeout(r, 1200));
    expect((await refundsDone(id)).queueMessages).toBe(7);
    // Its creator asking again is answered with the finished run's progress; nothing moves again.
    expect((await call("DELETE", `/api/content/${id}`, { token: creator.token })).json).toMatchObject({ status: "done", refunded: 250, queueMessages: 7 });

    const refunds = await env.DB.prepare("select count(*) as n, count(distinct json_extract(metadata, '$.purchaseId')) as distinct_purchases, sum(amount) as total from transactions where type = 'refund' and json_extract(metadata, '$.contentId') = ?")
      .bind(id)
      .first<{ n: number; distinct_purchases: number; total: number }>();
    expect(refunds).toEqual({ n: 250, distinct_purchases: 250, total: 2500 });
    for (const b of buyers.slice(0, 10)) expect((await balanceOf(b.token)).balance).toBe(10);
    expect((await balanceOf(creator.token)).balance).toBe(0);
    expect((await call("GET", `/api/content/${id}`, { token: creator.token })).json).toMatchObject({ available: false, status: "deleted" });
    expect(await ledgerOfContent(id, creator.id)).toEqual({ creator: 0, platform: 0, processing: 0 });
    await expectLedgerOk();
  }, 120_000);

  it("an admin's buyer refund under an Idempotency-Key happens once: the same request again replays the answer, even after the buyer bought the item again", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 200);
    const buyer = await funded(400);
    expect((await unlock(buyer, id)).status).toBe(201);
    const admin = await adminToken();
    const headers = { "idempotency-key": `refund-${buyer.id}` };
    const body = { reason: "buyer_request", userId: buyer.id };
    const first = await call("POST", `/api/content/${id}/refund`, { token: admin, body, headers });
    expect(first.status, first.text).toBe(200);
    expect(first.json).toMatchObject({ refunded: 200, outcome: "refunded" });
    // The buyer buys it again; the admin's client retries the refund (it never saw the answer).
    expect((await unlock(buyer, id)).status).toBe(201);
    const retry = await call("POST", `/api/content/${id}/refund`, { token: admin, body, headers });
    expect([retry.status, retry.json, retry.headers.get("idempotent-replayed")]).toEqual([200, first.json, "true"]);
    expect((await balanceOf(buyer.token)).balance).toBe(200);
    expect((await call("GET", `/api/content/${id}/access`, { token: buyer.token })).json).toMatchObject({ access: true });
    // The same key with another body is a conflict.
    expectProblem(await call("POST", `/api/content/${id}/refund`, { token: admin, body: { reason: "buyer_request", userId: creator.id }, headers }), 409, "idempotency_conflict");
    await expectLedgerOk();
  });

  it("an admin's buyer refund that loses to another refund of the purchase is 409 already_applied (it refunded nothing), and the same key replays that", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 200);
    const buyer = await funded(400);
    expect((await unlock(buyer, id)).status).toBe(201);
    const purchase = await env.DB.prepare("select id from content_purchases where buyer_id = ? and content_id = ?").bind(buyer.id, id).first<{ id: string }>();
    // Another refund of the purchase (moving nothing here) commits between this request's read and its batch.
    const db = d1Before(`update content_purchases set refunded_at = ${Date.now()}, refund_kind = 'creator_share', refund_amount = 0 where id = '${purchase!.id}'`, /insert into "once_keys"/);
    const headers = { "idempotency-key": `lost-${buyer.id}` };
    const body = { reason: "buyer_request", userId: buyer.id };
    expectProblem(await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body, headers, db }), 409, "already_applied");
    const again = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body, headers });
    expectProblem(again, 409, "already_applied");
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await balanceOf(buyer.token)).balance).toBe(200);
  });

  it("two admin removals sent at once under one Idempotency-Key: one acts, the other is 409 and removes nothing", async () => {
    const creator = await newUser("creator");
    const [a, b] = [await priced(creator, 100), await priced(creator, 100)];
    const token = await adminToken();
    const headers = { "idempotency-key": `twice-${a}` };
    const results = await Promise.all([a, b].map((id) => call("POST", `/api/content/${id}/refund`, { token, body: { reason: "admin_removed" }, headers })));
    expect(results.map((r) => r.status).sort()).toEqual([202, 409]);
    const statuses = await env.DB.prepare("select id, status from content_items where id in (?, ?)").bind(a, b).all<{ id: string; status: string }>();
    expect(statuses.results.map((r) => r.status).sort()).toEqual(["available", "removed"]);
  });

  it("an admin removal asked again answers 202 with the removal's progress (with or without the same Idempotency-Key); a creator's deletion is not an admin removal", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 100);
    const buyer = await funded(100);
    expect((await unlock(buyer, id)).status).toBe(201);
    const headers = { "idempotency-key": `remove-${id}` };
    const first = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" }, headers });
    expect(first.status, first.text).toBe(202);
    await refundsDone(id);
    // With the same key: the original answer (SPEC §3); without one: the removal's progress now.
    const replay = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" }, headers });
    expect(replay.status, replay.text).toBe(202);
    expect(replay.json).toEqual(first.json);
    const again = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } });
    expect(again.status, again.text).toBe(202);
    expect(again.json).toMatchObject({ contentId: id, kind: "creator_share", purchases: 1, refunded: 1, status: "done" });
    // A removal whose fan-out failed after its batch (500) is sent when it is asked again (with its key too).
    const stuck = await priced(creator, 100);
    const stuckBuyer = await funded(100);
    expect((await unlock(stuckBuyer, stuck)).status).toBe(201);
    const queueDown = { BATCH_QUEUE: { send: async () => { throw new Error("queue unavailable"); }, sendBatch: async () => { throw new Error("queue unavailable"); } } } as unknown as Record<string, string>;
    const stuckKey = { "idempotency-key": `remove-${stuck}` };
    expect((await call("POST", `/api/content/${stuck}/refund`, { token: await adminToken(), body: { reason: "admin_removed" }, vars: queueDown, headers: stuckKey })).status).toBe(500);
    expect((await call("POST", `/api/content/${stuck}/refund`, { token: await adminToken(), body: { reason: "admin_removed" }, headers: stuckKey })).status).toBe(202);
    await refundsDone(stuck);
    expect((await balanceOf(stuckBuyer.token)).balance).toBe(70);
    const deleted = await priced(creator, 100);
    expect((await call("DELETE", `/api/content/${deleted}`, { token: creator.token })).status).toBe(202);
    expectProblem(await call("POST", `/api/content/${deleted}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } }), 404, "not_found");
    await expectLedgerOk();
  });

  it("a removal asked again while its fan-out waits in the queue does not send it again", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 100);
    const buyer = await funded(100);
    expect((await unlock(buyer, id)).status).toBe(201);
    const sent: unknown[] = [];
    const recording = { BATCH_QUEUE: { send: async (b: unknown) => void sent.push(b), sendBatch: async (bs: { body: unknown }[]) => void sent.push(...bs.map((x) => x.body)) } } as unknown as Record<string, string>;
    for (let i = 0; i < 2; i++) expect((await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" }, vars: recording })).status).toBe(202);
    expect(sent).toHaveLength(1);
  });

  it("admin removal of an item once sold at 1 coin (the creator's share rounded to 0): that purchase is closed with nothing to give back, and every other buyer is refunded", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 1);
    const cheap = await funded(1);
    expect((await unlock(cheap, id)).status).toBe(201);
    await priced(creator, 500, id);
    const buyers = await Promise.all([funded(500), funded(500)]);
    for (const b of buyers) expect((await unlock(b, id)).status).toBe(201);
    const removed = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } });
    expect(removed.status, removed.text).toBe(202);
    const done = await refundsDone(id);
    expect(done).toMatchObject({ purchases: 3, refunded: 3, pending: 0 });
    for (const b of buyers) expect((await balanceOf(b.token)).balance).toBe(350);
    expect((await balanceOf(cheap.token)).balance).toBe(0);
    expect(await full(creator.token)).toMatchObject({ balance: 0, debt: 0 });
    const closed = await env.DB.prepare("select refund_amount, refund_transaction_id from content_purchases where buyer_id = ?").bind(cheap.id).first();
    expect(closed).toEqual({ refund_amount: 0, refund_transaction_id: null });
    await expectLedgerOk();
  });

  it("admin removal claws back from a creator who spent their earnings: debt, money out refused, the next earning pays the debt first, then withdraw", async () => {
    const creator = await verifiedUser("creator");
    const friend = await newUser("friend");
    const id = await priced(creator, 500);
    const second = await priced(creator, 400);
    const buyers = await Promise.all([funded(500), funded(500)]);
    for (const b of buyers) expect((await unlock(b, id)).status).toBe(201);
    expect((await balanceOf(creator.token)).balance).toBe(700);
    expect((await call("POST", "/api/wallet/transfer", { token: creator.token, body: { toUserId: friend.id, amount: 600 } })).status).toBe(201);

    const removed = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } });
    expect(removed.status, removed.text).toBe(202);
    expect(removed.json).toMatchObject({ kind: "creator_share", reason: "admin_removed", purchases: 2 });
    await refundsDone(id);
    // Each buyer gets the creator's 350 back; the creator had 100 left: 600 is debt.
    for (const b of buyers) expect((await balanceOf(b.token)).balance).toBe(350);
    expect(await full(creator.token)).toMatchObject({ balance: 0, debt: 600 });
    expect((await call("GET", `/api/content/${id}/revenue`, { token: creator.token })).json).toEqual({
      purchaseCount: 2,
      revenue: { total: 300, creator: 0, platform: 250, processing: 50 },
      refunds: { count: 2, total: 700 },
    });
    expect(await ledgerOfContent(id, creator.id)).toEqual({ creator: 0, platform: 250, processing: 50 });
    expectProblem(await call("POST", "/api/wallet/transfer", { token: creator.token, body: { toUserId: friend.id, amount: 1 } }), 422, "debt_outstanding");
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: creator.token, body: { asset: "COIN", amount: 500 } }), 422, "debt_outstanding");
    expectProblem(await unlock(creator, await priced(friend, 1)), 422, "debt_outstanding");

    // Earnings: 280 of the next unlock settle part of the debt; nothing reaches the wallet.
    const third = await funded(400);
    expect((await unlock(third, second)).status).toBe(201);
    expect(await full(creator.token)).toMatchObject({ balance: 0, debt: 320 });
    const fourth = await funded(400);
    expect((await unlock(fourth, second)).status).toBe(201);
    expect(await full(creator.token)).toMatchObject({ balance: 0, debt: 40 });
    // A transfer in settles the rest first.
    expect((await call("POST", "/api/wallet/transfer", { token: friend.token, body: { toUserId: creator.id, amount: 300 } })).status).toBe(201);
    expect(await full(creator.token)).toMatchObject({ balance: 260, debt: 0 });
    expect((await call("POST", "/api/wallet/transfer", { token: friend.token, body: { toUserId: creator.id, amount: 300 } })).status).toBe(201);
    expect(await full(creator.token)).toMatchObject({ balance: 560, debt: 0 });
    const history = await call("GET", "/api/wallet/transactions?type=debt_settlement", { token: creator.token });
    // (Newest first; the oldest is the claw-back's: the 100 the wallet still held, taken in the refund's batch.)
    expect(history.json.items.map((t: any) => t.amount)).toEqual([40, 280, 280, 100]);

    const withdraw = await call("POST", "/api/wallet/withdraw", { token: creator.token, body: { asset: "COIN", amount: 500 } });
    expect(withdraw.status, withdraw.text).toBe(202);
    // Earnings are net of the claw-back: 700 + 560 − 700.
    expect((await call("GET", "/api/creator/earnings", { token: creator.token })).json.totals.content).toBe(560);
    await expectLedgerOk();
  });

  it("a withdrawal that fails while its owner is in debt: the coins coming back settle the debt first", async () => {
    const creator = await verifiedUser("creator");
    const id = await priced(creator, 500);
    for (const b of await Promise.all([funded(500), funded(500)])) expect((await unlock(b, id)).status).toBe(201);
    const withdraw = await call("POST", "/api/wallet/withdraw", { token: creator.token, body: { asset: "COIN", amount: 500 } });
    expect(withdraw.status, withdraw.text).toBe(202);
    expect((await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } })).status).toBe(202);
    await refundsDone(id);
    // 200 were available to claw back; 500 are held by the withdrawal.
    expect(await full(creator.token)).toMatchObject({ balance: 500, availableBalance: 0, debt: 500 });
    expect((await irisNotify(await irisReferenceOf(withdraw.json.withdrawalId), "failed")).json.outcome).toBe("failed");
    expect(await full(creator.token)).toMatchObject({ balance: 0, availableBalance: 0, debt: 0 });
    await expectLedgerOk();
  });

  it("a chargeback's debt is settled by the next deposit before anything reaches the wallet", async () => {
    const user = await newUser("payer");
    const friend = await newUser("friend");
    const buy = async () => {
      const res = await call("POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: "pkg_500" } });
      expect(res.status, res.text).toBe(201);
      return res.json.orderId as string;
    };
    const first = await buy();
    await postMidtransWebhook(await midtransNotification(first, { transaction_status: "settlement" }));
    expect((await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: friend.id, amount: 500 } })).status).toBe(201);
    expect((await postMidtransWebhook(await midtransNotification(first, { transaction_status: "chargeback" }))).json.outcome).toBe("reversed");
    expect(await full(user.token)).toMatchObject({ balance: 0, debt: 500 });
    expectProblem(await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: friend.id, amount: 1 } }), 422, "debt_outstanding");

    const second = await buy();
    expect((await postMidtransWebhook(await midtransNotification(second, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    expect(await full(user.token)).toMatchObject({ balance: 50, debt: 0 });
    expect((await call("POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: friend.id, amount: 50 } })).status).toBe(201);
    await expectLedgerOk();
  });
});

describe("model: random unlocks, reprices, spends and the three refund kinds", () => {
  type Cmd =
    | { kind: "unlock"; buyer: number }
    | { kind: "buyer_refund"; buyer: number }
    | { kind: "reprice"; price: number }
    | { kind: "spend"; amount: number }
    | { kind: "earn"; buyer: number }
    | { kind: "close"; how: "admin_removed" | "creator_deleted" };
  const BUYERS = 3;
  const cmd: fc.Arbitrary<Cmd> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("unlock" as const), buyer: fc.nat(BUYERS - 1) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("buyer_refund" as const), buyer: fc.nat(BUYERS - 1) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("reprice" as const), price: fc.integer({ min: 1, max: 100 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("spend" as const), amount: fc.integer({ min: 1, max: 150 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("earn" as const), buyer: fc.nat(BUYERS - 1) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("close" as const), how: fc.constantFrom("admin_removed" as const, "creator_deleted" as const) }) },
  );

  it("balances, debt, revenue and the ledger match the model after every run", async () => {
    const admin = await adminToken();
    const sink = await newUser("sink");
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 100 }), fc.array(cmd, { minLength: 1, maxLength: 8 }), async (startPrice, cmds) => {
        const creator = await newUser("creator");
        const buyers = await Promise.all(Array.from({ length: BUYERS }, () => funded(600)));
        const id = await priced(creator, startPrice);
        // A second item of the creator's, always available, so later earnings can settle debt.
        const other = await priced(creator, 50);
        const m = { price: startPrice, status: "available" as "available" | "closed", wallet: 0, debt: 0, buyers: buyers.map(() => 600), live: new Map<number, { price: number; creator: number }>(), other: new Set<number>() };
        const credit = (n: number) => {
          const settle = Math.min(n, m.debt);
          m.debt -= settle;
          m.wallet += n - settle;
        };
        for (const c of cmds) {
          if (c.kind === "unlock") {
            const res = await unlock(buyers[c.buyer]!, id);
            if (m.status !== "available") expectProblem(res, 404, "not_found");
            else if (m.live.has(c.buyer)) expectProblem(res, 409, "already_unlocked");
            else if (m.buyers[c.buyer]! < m.price) expectProblem(res, 422, "insufficient_funds");
            else {
              expect(res.status, res.text).toBe(201);
              const s = contentSplit(m.price, config);
              m.buyers[c.buyer]! -= m.price;
              m.live.set(c.buyer, { price: m.price, creator: s.creator });
              credit(s.creator);
            }
          } else if (c.kind === "buyer_refund") {
            const res = await call("POST", `/api/content/${id}/refund`, { token: admin, body: { reason: "buyer_request", userId: buyers[c.buyer]!.id } });
            const p = m.live.get(c.buyer);
            if (!p) expectProblem(res, 404, "not_found");
            else {
              expect(res.status, res.text).toBe(200);
              m.live.delete(c.buyer);
              m.buyers[c.buyer]! += p.price;
              const take = Math.min(m.wallet, p.creator);
              m.wallet -= take;
              m.debt += p.creator - take;
            }
          } else if (c.kind === "reprice") {
            const res = await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: c.price } });
            if (m.status === "available") {
              expect(res.status).toBe(200);
              m.price = c.price;
            } else expectProblem(res, 409, "conflict");
          } else if (c.kind === "spend") {
            const res = await call("POST", "/api/wallet/transfer", { token: creator.token, body: { toUserId: sink.id, amount: c.amount } });
            if (m.debt > 0) expectProblem(res, 422, "debt_outstanding");
            else if (m.wallet < c.amount) expectProblem(res, 422, "insufficient_funds");
            else {
              expect(res.status, res.text).toBe(201);
              m.wallet -= c.amount;
            }
          } else if (c.kind === "earn") {
            const res = await unlock(buyers[c.buyer]!, other);
            if (m.other.has(c.buyer)) expectProblem(res, 409, "already_unlocked");
            else if (m.buyers[c.buyer]! < 50) expectProblem(res, 422, "insufficient_funds");
            else {
              expect(res.status, res.text).toBe(201);
              m.other.add(c.buyer);
              m.buyers[c.buyer]! -= 50;
              credit(contentSplit(50, config).creator);
            }
          } else if (m.status === "available") {
            const res =
              c.how === "creator_deleted"
                ? await call("DELETE", `/api/content/${id}`, { token: creator.token })
                : await call("POST", `/api/content/${id}/refund`, { token: admin, body: { reason: "admin_removed" } });
            expect(res.status, res.text).toBe(202);
            await refundsDone(id);
            m.status = "closed";
            for (const [b, p] of m.live) {
              m.buyers[b]! += c.how === "creator_deleted" ? p.price : p.creator;
              const take = Math.min(m.wallet, p.creator);
              m.wallet -= take;
              m.debt += p.creator - take;
            }
            m.live.clear();
          }
        }
        for (const [i, b] of buyers.entries()) expect((await balanceOf(b.token)).balance, `buyer ${i}`).toBe(m.buyers[i]);
        expect(await full(creator.token)).toMatchObject({ balance: m.wallet, debt: m.debt });
        const revenue = (await call("GET", `/api/content/${id}/revenue`, { token: creator.token })).json;
        const ledger = await ledgerOfContent(id, creator.id);
        expect({ creator: revenue.revenue.creator, platform: revenue.revenue.platform, processing: revenue.revenue.processing }).toEqual(ledger);
        expect(revenue.revenue.total).toBe(ledger.creator + ledger.platform + ledger.processing);
      }),
      { numRuns: 12 },
    );
    await expectLedgerOk();
  }, 240_000);
});

describe("GET /api/creator/earnings at scale", () => {
  it("reads only the postings since `from`: the index on (account, time) bounds the scan, whatever the history before", async () => {
    const { sql, params } = earningsQuery(createDb(env.DB), "carol", "2026-11-01", "2026-11-21", "+07:00").toSQL();
    const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`)
      .bind(...params)
      .all<{ detail: string }>();
    const details = plan.results.map((r) => r.detail);
    expect(details.find((d) => /\bpostings\b/.test(d)), details.join(" | ")).toMatch(/USING INDEX postings_account_idx \(account_id=\? AND created_at>\?\)/);
  });
});

describe("who may take back whose earnings", () => {
  it("a creator who was given the item cannot delete it while buyers hold purchases paid to its earlier creator (that would claw back another user's earnings)", async () => {
    const carol = await newUser("carol");
    const dave = await newUser("dave");
    const bob = await funded(500, "bob");
    const id = await priced(carol, 500);
    expect((await unlock(bob, id)).status).toBe(201);
    expect((await call("POST", `/api/admin/content/${id}/owner`, { token: await adminToken(), body: { creatorId: dave.id } })).status).toBe(200);
    expectProblem(await call("DELETE", `/api/content/${id}`, { token: dave.token }), 409, "conflict");
    expect((await balanceOf(carol.token)).balance).toBe(350);
    expect((await call("GET", `/api/content/${id}/access`, { token: bob.token })).json).toMatchObject({ access: true });
    // An admin can still remove it (the creator's share comes back from whoever was paid).
    expect((await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } })).status).toBe(202);
    await refundsDone(id);
    expect((await balanceOf(carol.token)).balance).toBe(0);
    expect((await balanceOf(bob.token)).balance).toBe(350);
    await expectLedgerOk();
  });

  it("an admin who bought the item cannot remove it (that refunds their own purchase); another admin can", async () => {
    const adminId = uniqueId("adm");
    const admin = { id: adminId, token: await tokenFor(adminId, "admin") };
    await call("GET", "/api/wallet/balance", { token: admin.token });
    await adjust(admin.id, 500);
    const id = await priced(await newUser("creator"), 500);
    expect((await unlock(admin, id)).status).toBe(201);
    expectProblem(await call("POST", `/api/content/${id}/refund`, { token: admin.token, body: { reason: "admin_removed" } }), 403, "forbidden");
    expect((await call("GET", `/api/content/${id}/access`, { token: admin.token })).json).toMatchObject({ access: true });
    expect((await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "admin_removed" } })).status).toBe(202);
    await refundsDone(id);
    expect((await balanceOf(admin.token)).balance).toBe(350);
  });

  it("an admin removal's Idempotency-Key is remembered: a repeat replays it, the same key on another request is 409", async () => {
    const token = await adminToken();
    const creator = await newUser("creator");
    const buyer = await funded(200, "buyer");
    const a = await priced(creator, 100);
    const b = await priced(creator, 100);
    expect((await unlock(buyer, a)).status).toBe(201);
    expect((await unlock(buyer, b)).status).toBe(201);
    const headers = { "idempotency-key": `k-${uniqueId()}` };
    const first = await call("POST", `/api/content/${a}/refund`, { token, body: { reason: "admin_removed" }, headers });
    expect(first.status, first.text).toBe(202);
    await refundsDone(a);
    const again = await call("POST", `/api/content/${a}/refund`, { token, body: { reason: "admin_removed" }, headers });
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    expectProblem(await call("POST", `/api/content/${b}/refund`, { token, body: { reason: "buyer_request", userId: buyer.id }, headers }), 409, "idempotency_conflict");
    expectProblem(await call("POST", `/api/content/${b}/refund`, { token, body: { reason: "admin_removed" }, headers }), 409, "idempotency_conflict");
    expect((await call("GET", `/api/content/${b}/access`, { token: buyer.token })).json).toMatchObject({ access: true });
  });
});

describe("badges follow earnings that stand", () => {
  it("Top Earner cannot be farmed by unlocks that are then refunded: the counter is net of claw-backs and a badge the claw-back undoes is taken back", async () => {
    const creator = await newUser("farmer");
    const sybil = await funded(1000, "sybil");
    const vars = { BADGE_TOP_EARNER_COINS: "600" };
    const items = [await priced(creator, 500), await priced(creator, 500)];
    for (const id of items) expect((await call("POST", `/api/content/${id}/unlock`, { token: sybil.token, vars })).status).toBe(201);
    const badges = async () => ((await call("GET", `/api/users/${creator.id}/badges`, { token: sybil.token })).json.items as { badge: string }[]).map((b) => b.badge);
    expect(await badges()).toEqual(["top_earner"]);
    for (const id of items) {
      expect((await call("DELETE", `/api/content/${id}`, { token: creator.token, vars })).status).toBe(202);
      await refundsDone(id);
    }
    expect((await balanceOf(sybil.token)).balance).toBe(1000);
    expect(await badges()).toEqual([]);
    const stats = await env.DB.prepare("select coins_earned from user_stats where user_id = ?").bind(creator.id).first<{ coins_earned: number }>();
    expect(stats?.coins_earned).toBe(0);
  });
});

describe("a refund run's progress counts its own refunds", () => {
  it("a buyer refunded on their own request before a removal is not counted among the removal's refunds", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 100);
    const [early, late] = [await funded(100), await funded(100)];
    for (const b of [early, late]) expect((await unlock(b, id)).status).toBe(201);
    const token = await adminToken();
    expect((await call("POST", `/api/content/${id}/refund`, { token, body: { reason: "buyer_request", userId: early.id } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/refund`, { token, body: { reason: "admin_removed" } })).status).toBe(202);
    const done = await refundsDone(id);
    expect(done).toMatchObject({ purchases: 1, refunded: 1, pending: 0 });
  });
});

describe("a creator's deletion whose refunds never left", () => {
  it("is sent when the creator asks again (as an admin removal's is), and asking again after that answers its progress", async () => {
    const creator = await newUser("creator");
    const id = await priced(creator, 100);
    const buyer = await funded(100);
    expect((await unlock(buyer, id)).status).toBe(201);
    const queueDown = { BATCH_QUEUE: { send: async () => { throw new Error("queue unavailable"); }, sendBatch: async () => { throw new Error("queue unavailable"); } } } as unknown as Record<string, string>;
    expect((await call("DELETE", `/api/content/${id}`, { token: creator.token, vars: queueDown })).status).toBe(500);
    const again = await call("DELETE", `/api/content/${id}`, { token: creator.token });
    expect(again.status, again.text).toBe(202);
    await refundsDone(id);
    expect((await balanceOf(buyer.token)).balance).toBe(100);
    const later = await call("DELETE", `/api/content/${id}`, { token: creator.token });
    expect(later.status, later.text).toBe(202);
    expect(later.json).toMatchObject({ contentId: id, kind: "full", status: "done" });
    // Someone else's deleted item is still not theirs to ask about.
    expectProblem(await call("DELETE", `/api/content/${id}`, { token: (await newUser("other")).token }), 404, "not_found");
  });
});
