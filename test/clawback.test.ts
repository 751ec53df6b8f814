import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adjust, adminToken, balanceOf, call, d1Before, newUser, uniqueId } from "./helpers";

// SPEC §9: a claw-back the wallet cannot cover becomes recorded debt — only what it cannot cover, as
// the wallet stands when the refund commits, not as an earlier read saw it.

const wallet = async (token: string) => (await call("GET", "/api/wallet/balance", { token })).json as { balance: number; availableBalance: number; debt: number };

/** A balanced credit of `amount` coins to `userId` (from adjustments), as SQL another request commits. */
function creditSql(userId: string, amount: number): string {
  const t = Date.now();
  const tx = `race-${uniqueId()}`;
  return [
    `update accounts set balance = balance + ${amount} where id = 'usr:${userId}:COIN'`,
    `update accounts set balance = balance - ${amount} where id = 'sys:adjustments:COIN'`,
    `insert into transactions (id, type, status, asset, amount, user_id, metadata, created_at, completed_at) values ('${tx}', 'adjustment', 'completed', 'COIN', ${amount}, '${userId}', '{}', ${t}, ${t})`,
    `insert into postings (transaction_id, account_id, asset, amount, balance_after, created_at) values ('${tx}', 'usr:${userId}:COIN', 'COIN', ${amount}, ${amount}, ${t}), ('${tx}', 'sys:adjustments:COIN', 'COIN', -${amount}, 0, ${t})`,
  ].join("; ");
}

describe("claw-backs are sized at commit", () => {
  it("content: a credit landing between the refund's read and its batch is taken, and no debt is recorded", async () => {
    const [creator, friend, buyer] = [await newUser("creator"), await newUser("friend"), await newUser("buyer")];
    await adjust(buyer.id, 500);
    const id = uniqueId("c");
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 500 } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/unlock`, { token: buyer.token })).status).toBe(201);
    // The creator spends the 350 earned: the wallet is empty when the refund could read it...
    expect((await call("POST", "/api/wallet/transfer", { token: creator.token, body: { toUserId: friend.id, amount: 350 } })).status).toBe(201);
    // ...and 1,000 coins land just before the refund's batch.
    const db = d1Before(creditSql(creator.id, 1000), /insert into "once_keys"/);
    const res = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "buyer_request", userId: buyer.id }, db });
    expect(res.status, res.text).toBe(200);
    expect(await wallet(creator.token)).toMatchObject({ balance: 650, debt: 0 });
    expect((await call("POST", "/api/wallet/transfer", { token: creator.token, body: { toUserId: friend.id, amount: 1 } })).status).toBe(201);
  });

  it("content: what the wallet cannot cover is debt, the rest is taken (partly covered)", async () => {
    const [creator, friend, buyer] = [await newUser("creator"), await newUser("friend"), await newUser("buyer")];
    await adjust(buyer.id, 500);
    const id = uniqueId("c");
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 500 } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/unlock`, { token: buyer.token })).status).toBe(201);
    expect((await call("POST", "/api/wallet/transfer", { token: creator.token, body: { toUserId: friend.id, amount: 300 } })).status).toBe(201);
    const res = await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "buyer_request", userId: buyer.id } });
    expect(res.status, res.text).toBe(200);
    expect(await wallet(creator.token)).toMatchObject({ balance: 0, debt: 300 });
    expect((await balanceOf(buyer.token)).balance).toBe(500);
  });

  it("marketplace: a hold released between the refund's read and its batch frees coins that are taken, and no debt is recorded", async () => {
    const [buyer, seller] = [await newUser("buyer"), await newUser("seller")];
    await adjust(buyer.id, 1000);
    const placed = await call("POST", "/api/marketplace/orders", { token: buyer.token, body: { productId: "sku-1", sellerId: seller.id, amount: 100 } });
    expect(placed.status, placed.text).toBe(201);
    const id = placed.json.order.id;
    expect((await call("POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token })).status).toBe(200);
    expect((await balanceOf(seller.token)).balance).toBe(85);
    // The seller's 85 coins are held (a withdrawal in flight) when the refund could read the wallet,
    // and the hold is released just before its batch.
    const account = `usr:${seller.id}:COIN`;
    await env.DB.prepare("update accounts set locked = 85 where id = ?").bind(account).run();
    const db = d1Before(`update accounts set locked = 0 where id = '${account}'`, /insert into "once_keys"/);
    const refund = await call("POST", `/api/marketplace/orders/${id}/refund`, { token: await adminToken(), db });
    expect(refund.status, refund.text).toBe(200);
    expect(await wallet(seller.token)).toMatchObject({ balance: 0, debt: 0 });
  });

  it("marketplace: coins held by a withdrawal are not taken: the claw-back they would cover is debt", async () => {
    const [buyer, seller] = [await newUser("buyer"), await newUser("seller")];
    await adjust(buyer.id, 1000);
    const placed = await call("POST", "/api/marketplace/orders", { token: buyer.token, body: { productId: "sku-1", sellerId: seller.id, amount: 100 } });
    const id = placed.json.order.id;
    expect((await call("POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token })).status).toBe(200);
    await env.DB.prepare("update accounts set locked = 85 where id = ?").bind(`usr:${seller.id}:COIN`).run();
    const refund = await call("POST", `/api/marketplace/orders/${id}/refund`, { token: await adminToken() });
    expect(refund.status, refund.text).toBe(200);
    expect(await wallet(seller.token)).toMatchObject({ balance: 85, availableBalance: 0, debt: 85 });
    await env.DB.prepare("update accounts set locked = 0 where id = ?").bind(`usr:${seller.id}:COIN`).run();
  });
});
