import { describe, expect, it } from "vitest";
import { adjust, balanceOf, call, expectLedgerOk, expectProblem, newUser } from "./helpers";

describe("Idempotency-Key", () => {
  it("50 concurrent identical requests with one key move money once and all get the same answer", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    await adjust(alice.id, 1000);
    const body = { toUserId: bob.id, amount: 70 };
    const results = await Promise.all(
      Array.from({ length: 50 }, () => call("POST", "/api/wallet/transfer", { token: alice.token, body, headers: { "idempotency-key": "pay-bob-once" } })),
    );
    for (const r of results) {
      expect(r.status, r.text).toBe(201);
      expect(r.json).toEqual(results[0]!.json);
    }
    expect(results[0]!.json).toMatchObject({ balanceBefore: 1000, balanceAfter: 930 });
    expect((await balanceOf(alice.token)).balance).toBe(930);
    expect((await balanceOf(bob.token)).balance).toBe(70);

    const later = await call("POST", "/api/wallet/transfer", { token: alice.token, body, headers: { "idempotency-key": "pay-bob-once" } });
    expect(later.status).toBe(201);
    expect(later.json).toEqual(results[0]!.json);
    expect(later.headers.get("idempotent-replayed")).toBe("true");

    const conflict = await call("POST", "/api/wallet/transfer", { token: alice.token, body: { ...body, amount: 71 }, headers: { "idempotency-key": "pay-bob-once" } });
    expectProblem(conflict, 409, "idempotency_conflict");
    expect((await balanceOf(alice.token)).balance).toBe(930);
    await expectLedgerOk();
  });

  it("keys are scoped per user", async () => {
    const alice = await newUser("alice");
    const carol = await newUser("carol");
    const bob = await newUser("bob");
    await adjust(alice.id, 100);
    await adjust(carol.id, 100);
    const headers = { "idempotency-key": "same-key" };
    expect((await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 10 }, headers })).status).toBe(201);
    expect((await call("POST", "/api/wallet/transfer", { token: carol.token, body: { toUserId: bob.id, amount: 10 }, headers })).status).toBe(201);
    expect((await balanceOf(bob.token)).balance).toBe(20);
  });

  it("a refusal is remembered: the repeat gets the same answer even after funds arrive", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    const headers = { "idempotency-key": "too-early" };
    const first = await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 10 }, headers });
    expectProblem(first, 422, "insufficient_funds");
    await adjust(alice.id, 100);
    const again = await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 10 }, headers });
    expectProblem(again, 422, "insufficient_funds");
    expect(again.json).toEqual(first.json);
    // Only the repeat is a replay.
    expect([first.headers.get("idempotent-replayed"), again.headers.get("idempotent-replayed")]).toEqual([null, "true"]);
    expect((await balanceOf(alice.token)).balance).toBe(100);
  });

  it("rejects an invalid key", async () => {
    const alice = await newUser("alice");
    const bob = await newUser("bob");
    expectProblem(await call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: bob.id, amount: 1 }, headers: { "idempotency-key": "k".repeat(256) } }), 400, "validation_failed");
  });

  it("admin adjustments are idempotent too", async () => {
    const bob = await newUser("bob");
    const { adminToken } = await import("./helpers");
    const token = await adminToken();
    const body = { userId: bob.id, asset: "IDR", amount: 5000, reason: "goodwill credit" };
    const [a, b] = await Promise.all([
      call("POST", "/api/admin/adjustments", { token, body, headers: { "idempotency-key": `adj-${bob.id}` } }),
      call("POST", "/api/admin/adjustments", { token, body, headers: { "idempotency-key": `adj-${bob.id}` } }),
    ]);
    expect(a.status).toBe(201);
    expect(b.json).toEqual(a.json);
    expect((await balanceOf(bob.token)).idrBalance).toBe(5000);
    expectProblem(await call("POST", "/api/admin/adjustments", { token, body: { ...body, amount: -6000 } }), 422, "insufficient_funds");
    expectProblem(await call("POST", "/api/admin/adjustments", { token, body: { ...body, userId: "ghost-user" } }), 404, "not_found");
    expectProblem(await call("POST", "/api/admin/adjustments", { token, body: { ...body, amount: 0 } }), 400, "validation_failed");
    await expectLedgerOk();
  });
});
