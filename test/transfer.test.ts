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

describe("hostile transfers change nothing", () => {
  const cases: [string, (ids: { bob: string; alice: string }) => unknown, number, string][] = [
    ["to self", ({ alice }) => ({ toUserId: alice, amount: 10 }), 422, "self_transfer"],
    ["to an unknown user", () => ({ toUserId: "nobody-here", amount: 10 }), 404, "recipient_not_found"],
    ["zero", ({ bob }) => ({ toUserId: bob, amount: 0 }), 400, "validation_failed"],
    ["negative", ({ bob }) => ({ toUserId: bob, amount: -50 }), 400, "validation_failed"],
    ["fractional", ({ bob }) => ({ toUserId: bob, amount: 10.5 }), 400, "validation_failed"],
    ["string amount", ({ bob }) => ({ toUserId: bob, amount: "10" }), 400, "validation_failed"],
    ["2^60", ({ bob }) => ({ toUserId: bob, amount: 2 ** 60 }), 400, "validation_failed"],
    ["NaN-like", ({ bob }) => ({ toUserId: bob, amount: null }), 400, "validation_failed"],
    ["SQL metacharacters in the id", () => ({ toUserId: "x' OR '1'='1", amount: 10 }), 400, "validation_failed"],
    ["SQL comment in the id", () => ({ toUserId: "bob; DROP TABLE accounts;--", amount: 10 }), 400, "validation_failed"],
    ["an id that is too long", () => ({ toUserId: "a".repeat(65), amount: 10 }), 400, "validation_failed"],
    ["unknown fields", ({ bob }) => ({ toUserId: bob, amount: 10, fromUserId: "someone-else" }), 400, "validation_failed"],
    ["more than the balance", ({ bob }) => ({ toUserId: bob, amount: 101 }), 422, "insufficient_funds"],
    ["an array body", () => [1, 2], 400, "validation_failed"],
    ["an over-long note", ({ bob }) => ({ toUserId: bob, amount: 1, note: "n".repeat(281) }), 400, "validation_failed"],
  ];

  it.each(cases)("%s", async (_name, makeBody, status, code) => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 100);
    const res = await call("POST", "/api/wallet/transfer", { token: alice.token, body: makeBody({ alice: alice.id, bob: bob.id }) });
    expectProblem(res, status, code);
    if (code === "validation_failed") expect(res.json.errors.length).toBeGreaterThan(0);
    expect((await balanceOf(alice.token)).balance).toBe(100);
    expect((await balanceOf(bob.token)).balance).toBe(0);
    await expectLedgerOk();
  });

  it("refuses malformed JSON, non-JSON bodies and bodies over the size limit", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 100);
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, rawBody: "{\"toUserId\":", headers: { "content-type": "application/json" } }), 400);
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, rawBody: `toUserId=${bob.id}&amount=1`, headers: { "content-type": "application/x-www-form-urlencoded" } }), 415, "unsupported_media_type");
    // A `__proto__` key is an unknown field like any other (JSON.parse makes it an own key; it must not slip past strict schemas).
    const proto = await call("POST", "/api/wallet/transfer", { token: alice.token, rawBody: `{"toUserId":"${bob.id}","amount":1,"__proto__":{"amount":99}}`, headers: { "content-type": "application/json" } });
    expectProblem(proto, 400, "validation_failed");
    expect(proto.json.errors).toEqual([expect.objectContaining({ path: "json.__proto__" })]);
    const escaped = await call("POST", "/api/wallet/transfer", { token: alice.token, rawBody: `{"toUserId":"${bob.id}","amount":1,"\\u005f_proto__":{"amount":99}}`, headers: { "content-type": "application/json" } });
    expectProblem(escaped, 400, "validation_failed");
    const huge = JSON.stringify({ toUserId: bob.id, amount: 1, note: "x".repeat(200_000) });
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, rawBody: huge, headers: { "content-type": "application/json" } }), 413, "payload_too_large");
    expect((await balanceOf(alice.token)).balance).toBe(100);
    await expectLedgerOk();
  });

  it("refuses a banned recipient and a frozen or banned sender", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 100);
    await setUserStatus(bob.id, "banned");
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 10 } }), 422, "recipient_unavailable");
    const carol = await newUser("carol");
    await setUserStatus(alice.id, "frozen");
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: carol.id, amount: 10 } }), 403, "account_frozen");
    await setUserStatus(alice.id, "banned");
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: carol.id, amount: 10 } }), 403, "account_banned");
    // A banned user still reads balance and history.
    expect((await balanceOf(alice.token)).balance).toBe(100);
    expect((await call("GET", "/api/wallet/transactions", { token: alice.token })).status).toBe(200);
    await expectLedgerOk();
  });
});

describe("GET /api/wallet/transactions", () => {
  it("pages newest first with a stable cursor, unaffected by inserts between pages", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 1000);
    for (let i = 1; i <= 5; i++) {
      expect((await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: i } })).status).toBe(201);
    }
    const first = await call("GET", "/api/wallet/transactions?limit=2&type=transfer", { token: alice.token });
    expect(first.json.items.map((t: any) => t.amount)).toEqual([5, 4]);
    expect(first.json.nextCursor).toEqual(expect.any(String));
    await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 6 } });
    const second = await call("GET", `/api/wallet/transactions?limit=2&type=transfer&cursor=${first.json.nextCursor}`, { token: alice.token });
    expect(second.json.items.map((t: any) => t.amount)).toEqual([3, 2]);
    const third = await call("GET", `/api/wallet/transactions?limit=2&type=transfer&cursor=${second.json.nextCursor}`, { token: alice.token });
    expect(third.json.items.map((t: any) => t.amount)).toEqual([1]);
    expect(third.json.nextCursor).toBeNull();
    expectProblem(await call("GET", "/api/wallet/transactions?limit=0", { token: alice.token }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/wallet/transactions?limit=101", { token: alice.token }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/wallet/transactions?cursor=' OR 1=1 --", { token: alice.token }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/wallet/transactions?type=robbery", { token: alice.token }), 400, "validation_failed");
  });
});
