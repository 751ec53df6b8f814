import { describe, expect, it } from "vitest";
import { adjust, adminToken, call, irisNotify, irisReferenceOf, midtransNotification, newUser, postMidtransWebhook, uniqueId, verifiedUser } from "./helpers";

// SPEC §4, §5: a user's history shows their own wallet's movements — direction and balances are theirs.

const history = async (token: string) => (await call("GET", "/api/wallet/transactions?limit=100", { token })).json.items as any[];

describe("history as each party sees it", () => {
  it("a content refund's claw-back is, in the creator's history, the settlement that took it from the wallet (not the buyer's refund read as theirs)", async () => {
    const [creator, buyer] = [await newUser("creator"), await newUser("buyer")];
    await adjust(buyer.id, 500);
    const id = uniqueId("c");
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 500 } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/unlock`, { token: buyer.token })).status).toBe(201);
    expect((await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "buyer_request", userId: buyer.id } })).status).toBe(200);
    const rows = await history(creator.token);
    expect(rows.map((t) => [t.type, t.direction, t.amount])).toEqual([
      ["debt_settlement", "out", 350],
      ["purchase", "in", 500],
    ]);
  });

  it("a marketplace buyer's history holds their purchase, not the seller's release or commission (their wallet did not move)", async () => {
    const [buyer, seller] = [await newUser("buyer"), await newUser("seller")];
    await adjust(buyer.id, 1000);
    const placed = await call("POST", "/api/marketplace/orders", { token: buyer.token, body: { productId: "sku-1", sellerId: seller.id, amount: 100 } });
    expect(placed.status, placed.text).toBe(201);
    expect((await call("POST", `/api/marketplace/orders/${placed.json.order.id}/confirm`, { token: buyer.token })).status).toBe(200);
    expect((await history(buyer.token)).map((t) => [t.type, t.direction])).toEqual([
      ["purchase", "out"],
      ["adjustment", "in"],
    ]);
    expect((await history(seller.token)).map((t) => [t.type, t.direction])).toEqual([["escrow_release", "in"]]);
  });

  it("a campaign deposit reads as money in, without the campaign budget passed off as the advertiser's balance", async () => {
    const advertiser = await newUser("adv");
    const created = await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "Launch", rateFeeIdr: 7 } });
    const deposit = await call("POST", `/api/campaigns/${created.json.id}/deposit`, { token: advertiser.token, body: { amount: 50_000 } });
    expect((await postMidtransWebhook(await midtransNotification(deposit.json.orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
    const [row] = await history(advertiser.token);
    expect(row).toMatchObject({ type: "deposit", direction: "in", balanceBefore: null, balanceAfter: null });
  });

  it("an adjustment does not show the admin's device to the adjusted user", async () => {
    const user = await newUser("adj");
    const res = await call("POST", "/api/admin/adjustments", { token: await adminToken(), body: { userId: user.id, asset: "COIN", amount: 10, reason: "goodwill" }, headers: { "x-device-fingerprint": "ADMIN-LAPTOP-7f3a" } });
    expect(res.status, res.text).toBe(201);
    expect((await history(user.token))[0]).toMatchObject({ type: "adjustment", deviceFingerprint: null });
  });
});

describe("history order", () => {
  it("the debt settlement that follows a hold released later sorts as the newest movement, not at the hold's old position", async () => {
    const creator = await verifiedUser("creator");
    const buyer = await newUser("buyer");
    await adjust(buyer.id, 500);
    await adjust(creator.id, 650);
    const id = uniqueId("c");
    expect((await call("PUT", `/api/content/${id}/premium`, { token: creator.token, body: { price: 500 } })).status).toBe(200);
    expect((await call("POST", `/api/content/${id}/unlock`, { token: buyer.token })).status).toBe(201);
    // All 1,000 coins are held by a withdrawal in flight; the claw-back of a refund becomes 350 of debt.
    const w = await call("POST", "/api/wallet/withdraw", { token: creator.token, body: { asset: "COIN", amount: 1000 } });
    expect(w.status, w.text).toBe(202);
    const ref = await irisReferenceOf(w.json.withdrawalId);
    expect((await call("POST", `/api/content/${id}/refund`, { token: await adminToken(), body: { reason: "buyer_request", userId: buyer.id } })).status).toBe(200);
    await adjust(creator.id, 1);
    await new Promise((r) => setTimeout(r, 20));
    // Iris fails the payout: the hold is released and the debt settled from it, now.
    expect((await irisNotify(ref, "failed")).status).toBe(200);
    const page = await history(creator.token);
    const created = page.map((t) => t.createdAt);
    expect(created).toEqual([...created].sort().reverse());
    const newest = (await call("GET", "/api/wallet/transactions?limit=1", { token: creator.token })).json.items[0];
    expect(newest, JSON.stringify(page.map((t) => [t.type, t.amount, t.createdAt]))).toMatchObject({ type: "debt_settlement", amount: 349 }); // (the adjustment of 1 settled 1 of the 350 first)
  });
});
