import { describe, expect, it } from "vitest";
import { adjust, balanceOf, call, expectLedgerOk, expectProblem, newUser, setUserStatus } from "./helpers";

describe("POST /api/wallet/transfer", () => {
  it("moves coins and records both sides with balances before and after", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 500);
    const res = await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 120, note: "thanks!" } });
    expect(res.status, res.text).toBe(201);
    expect(res.json).toMatchObject({ type: "transfer", status: "completed", asset: "COIN", amount: 120, direction: "out", counterpartyId: bob.id, balanceBefore: 500, balanceAfter: 380 });
    expect((await balanceOf(alice.token)).balance).toBe(380);
    expect((await balanceOf(bob.token)).balance).toBe(120);

    const aliceHistory = await call("GET", "/api/wallet/transactions", { token: alice.token });
    expect(aliceHistory.json.items[0]).toMatchObject({ id: res.json.id, direction: "out", balanceBefore: 500, balanceAfter: 380 });
    expect(aliceHistory.json.items[1]).toMatchObject({ type: "adjustment", direction: "in", balanceBefore: 0, balanceAfter: 500 });
    const bobHistory = await call("GET", "/api/wallet/transactions?type=transfer", { token: bob.token });
    expect(bobHistory.json.items).toHaveLength(1);
    expect(bobHistory.json.items[0]).toMatchObject({ id: res.json.id, direction: "in", counterpartyId: alice.id, balanceBefore: 0, balanceAfter: 120 });
    await expectLedgerOk();
  });
});
