import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adjust, balanceOf, call, expectLedgerOk, newUser } from "./helpers";

describe("concurrent spending", () => {
  it("a user holding 100 coins fires 20 concurrent transfers of 100: exactly one succeeds", async () => {
    const alice = await newUser("alice");
    const recipients = await Promise.all(Array.from({ length: 20 }, () => newUser("r")));
    await adjust(alice.id, 100);
    const results = await Promise.all(
      recipients.map((r) => call("POST", "/api/wallet/transfer", { token: alice.token, body: { toUserId: r.id, amount: 100 } })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    const refused = results.filter((r) => r.status !== 201);
    expect(refused).toHaveLength(19);
    for (const r of refused) expect(r.json.code).toBe("insufficient_funds");
    expect((await balanceOf(alice.token)).balance).toBe(0);
    const received = await Promise.all(recipients.map(async (r) => (await balanceOf(r.token)).balance));
    expect(received.reduce((a, b) => a + b, 0)).toBe(100);
    await expectLedgerOk();
  });

  it("1,000 concurrent transfers among 10 users keep every invariant", async () => {
    const users = await Promise.all(Array.from({ length: 10 }, () => newUser("hot")));
    for (const u of users) await adjust(u.id, 500);
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const requests = Array.from({ length: 1000 }, () => {
      const from = rand(10);
      const to = (from + 1 + rand(9)) % 10;
      return { from: users[from]!, to: users[to]!, amount: 1 + rand(300) };
    });
    const results = await Promise.all(
      requests.map((r) => call("POST", "/api/wallet/transfer", { token: r.from.token, body: { toUserId: r.to.id, amount: r.amount } })),
    );
    const ok = results.filter((r) => r.status === 201).length;
    // 422 insufficient_funds, or 403 limit_exceeded once a sender passes the unverified daily limit.
    for (const r of results) expect([201, 422, 403]).toContain(r.status);
    for (const r of results.filter((r) => r.status === 403)) expect(r.json.code).toBe("limit_exceeded");
    expect(ok).toBeGreaterThan(0);
    const ids = users.map((u) => u.id);
    const placeholders = ids.map(() => "?").join(",");
    const completed = await env.DB.prepare(`select count(*) as n from transactions where type = 'transfer' and status = 'completed' and user_id in (${placeholders})`)
      .bind(...ids)
      .first<{ n: number }>();
    expect(completed?.n).toBe(ok);
    const balances = await Promise.all(users.map(async (u) => (await balanceOf(u.token)).balance));
    for (const b of balances) expect(b).toBeGreaterThanOrEqual(0);
    expect(balances.reduce((a, b) => a + b, 0)).toBe(5000);
    await expectLedgerOk();
  });
});
