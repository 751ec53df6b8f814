import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkLedger } from "../src/admin/ledger-check";
import { createDb } from "../src/db/client";
import { systemAccountId, userAccountId } from "../src/ledger/accounts";
import { applyPlan } from "../src/ledger/executor";
import { holdPlan, movePlan, postHoldPlan, voidHoldPlan, type HoldRef } from "../src/ledger/plan";
import { ApiError } from "../src/lib/errors";
import { newId } from "../src/lib/ids";
import { findOrCreateUser } from "../src/users/users.service";
import { uniqueId } from "./helpers";

type Op =
  | { kind: "transfer"; from: number; to: number; amount: number }
  | { kind: "adjust"; user: number; amount: number }
  | { kind: "hold"; user: number; amount: number }
  | { kind: "post"; hold: number; feeBps: number }
  | { kind: "void"; hold: number };

const USERS = 4;
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("transfer" as const), from: fc.nat(USERS - 1), to: fc.nat(USERS - 1), amount: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant("adjust" as const), user: fc.nat(USERS - 1), amount: fc.integer({ min: -300, max: 500 }).filter((n) => n !== 0) }),
  fc.record({ kind: fc.constant("hold" as const), user: fc.nat(USERS - 1), amount: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant("post" as const), hold: fc.nat(4), feeBps: fc.integer({ min: 0, max: 10_000 }) }),
  fc.record({ kind: fc.constant("void" as const), hold: fc.nat(4) }),
);

const audit = { actorId: "property-test", action: "test", subjectType: "test", subjectId: "x" };

describe("ledger model property", () => {
  it("random transfers, adjustments, holds, posts and voids agree with a simple model and keep the invariants", async () => {
    const db = createDb(env.DB);
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const users = await Promise.all(Array.from({ length: USERS }, () => findOrCreateUser(db, uniqueId("prop"), Date.now())));
        const acct = (i: number) => userAccountId(users[i]!.id, "COIN");
        const model = users.map(() => ({ balance: 0, locked: 0 }));
        const holds: (HoldRef & { user: number; settled: boolean })[] = [];

        for (const o of ops) {
          const now = Date.now();
          let expectOk: boolean;
          let run: () => Promise<unknown>;
          let apply: () => void;
          if (o.kind === "transfer") {
            if (o.from === o.to) continue;
            const m = model[o.from]!;
            expectOk = m.balance - m.locked >= o.amount;
            const spend = { userId: users[o.from]!.id, amountIdr: o.amount * 100, day: "property", limits: { verified: { perTxIdr: 1e12, dailyIdr: 1e12 }, unverified: { perTxIdr: 1e12, dailyIdr: 1e12 } } };
            run = () => applyPlan(db, movePlan({ tx: { id: newId(now), type: "transfer", asset: "COIN", amount: o.amount, userId: users[o.from]!.id }, from: acct(o.from), to: acct(o.to), sideAccountId: acct(o.from), audit, spend, now }));
            apply = () => {
              model[o.from]!.balance -= o.amount;
              model[o.to]!.balance += o.amount;
            };
          } else if (o.kind === "adjust") {
            const m = model[o.user]!;
            expectOk = o.amount > 0 || m.balance - m.locked >= -o.amount;
            const platform = systemAccountId("adjustments", "COIN");
            run = () =>
              applyPlan(db, movePlan({ tx: { id: newId(now), type: "adjustment", asset: "COIN", amount: Math.abs(o.amount), userId: users[o.user]!.id }, from: o.amount > 0 ? platform : acct(o.user), to: o.amount > 0 ? acct(o.user) : platform, sideAccountId: acct(o.user), audit, now }));
            apply = () => {
              m.balance += o.amount;
            };
          } else if (o.kind === "hold") {
            const m = model[o.user]!;
            expectOk = m.balance - m.locked >= o.amount;
            const ref = { id: newId(now), transactionId: newId(now), accountId: acct(o.user), asset: "COIN" as const, amount: o.amount };
            run = () => applyPlan(db, holdPlan({ tx: { id: ref.transactionId, type: "withdraw", asset: "COIN", amount: o.amount, userId: users[o.user]!.id }, holdId: ref.id, accountId: ref.accountId, audit, now }));
            apply = () => {
              m.locked += o.amount;
              holds.push({ ...ref, user: o.user, settled: false });
            };
          } else {
            const h = holds[o.hold];
            if (!h) continue;
            expectOk = !h.settled;
            const m = model[h.user]!;
            if (o.kind === "post") {
              const fee = Math.floor((h.amount * o.feeBps) / 10_000);
              const credits = [
                { accountId: systemAccountId("platform_revenue", "COIN"), asset: "COIN" as const, amount: fee },
                { accountId: systemAccountId("payout_clearing", "COIN"), asset: "COIN" as const, amount: h.amount - fee },
              ];
              run = () => applyPlan(db, postHoldPlan({ hold: h, credits, audit, now }));
              apply = () => {
                m.balance -= h.amount;
                m.locked -= h.amount;
                h.settled = true;
              };
            } else {
              run = () => applyPlan(db, voidHoldPlan({ hold: h, status: "cancelled", audit, now }));
              apply = () => {
                m.locked -= h.amount;
                h.settled = true;
              };
            }
          }
          let ok = true;
          try {
            await run();
          } catch (error) {
            ok = false;
            expect(error).toBeInstanceOf(ApiError);
            expect(["insufficient_funds", "already_applied"]).toContain((error as ApiError).code);
          }
          expect(ok, `${JSON.stringify(o)} expected ${expectOk ? "success" : "refusal"}`).toBe(expectOk);
          if (ok) apply();

          const rows = await env.DB.prepare(`select id, balance, locked from accounts where id in (${users.map(() => "?").join(",")})`)
            .bind(...users.map((_, i) => acct(i)))
            .all<{ id: string; balance: number; locked: number }>();
          for (let i = 0; i < USERS; i++) {
            const row = rows.results.find((r) => r.id === acct(i));
            expect({ balance: row?.balance, locked: row?.locked }).toEqual(model[i]);
          }
        }
        const report = await checkLedger(db);
        expect(report.ok, JSON.stringify(report)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});

describe("two-phase holds", () => {
  it("post and void each apply at most once, even with other holds keeping the lock positive", async () => {
    const db = createDb(env.DB);
    const user = await findOrCreateUser(db, uniqueId("hold"), Date.now());
    const account = userAccountId(user.id, "COIN");
    const now = Date.now();
    await applyPlan(db, movePlan({ tx: { id: newId(now), type: "adjustment", asset: "COIN", amount: 1000, userId: user.id }, from: systemAccountId("adjustments", "COIN"), to: account, sideAccountId: account, audit, now }));
    const place = async (amount: number) => {
      const ref = { id: newId(), transactionId: newId(), accountId: account, asset: "COIN" as const, amount };
      await applyPlan(db, holdPlan({ tx: { id: ref.transactionId, type: "withdraw", asset: "COIN", amount, userId: user.id }, holdId: ref.id, accountId: account, audit, now }));
      return ref;
    };
    const first = await place(300);
    const second = await place(300);
    await expect(place(401)).rejects.toMatchObject({ code: "insufficient_funds" });
    const credits = [{ accountId: systemAccountId("payout_clearing", "COIN"), asset: "COIN" as const, amount: 300 }];
    await applyPlan(db, postHoldPlan({ hold: first, credits, audit, now }));
    await expect(applyPlan(db, postHoldPlan({ hold: first, credits, audit, now }))).rejects.toMatchObject({ code: "already_applied" });
    await expect(applyPlan(db, voidHoldPlan({ hold: first, status: "cancelled", audit, now }))).rejects.toMatchObject({ code: "already_applied" });
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => applyPlan(db, i % 2 ? voidHoldPlan({ hold: second, status: "failed", audit, now }) : postHoldPlan({ hold: second, credits, audit, now }))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const row = await env.DB.prepare("select balance, locked from accounts where id = ?").bind(account).first<{ balance: number; locked: number }>();
    const secondPosted = (results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<{ status: string }>).value.status === "completed";
    expect(row).toEqual({ balance: secondPosted ? 400 : 700, locked: 0 });
    expect((await checkLedger(db)).ok).toBe(true);
  });
});

describe("applyPlans", () => {
  it("commits several plans in one batch, or none of them", async () => {
    const db = createDb(env.DB);
    const { applyPlans } = await import("../src/ledger/executor");
    const a = await findOrCreateUser(db, uniqueId("multi"), Date.now());
    const b = await findOrCreateUser(db, uniqueId("multi"), Date.now());
    const now = Date.now();
    const fund = (user: string, amount: number, key?: string) => ({
      plan: movePlan({ tx: { id: newId(now), type: "adjustment", asset: "COIN", amount, userId: user }, from: systemAccountId("adjustments", "COIN"), to: userAccountId(user, "COIN"), sideAccountId: userAccountId(user, "COIN"), audit, onceKeys: key ? [key] : [], now }),
    });
    const debit = (user: string, amount: number) => ({
      plan: movePlan({ tx: { id: newId(now), type: "adjustment", asset: "COIN", amount, userId: user }, from: userAccountId(user, "COIN"), to: systemAccountId("adjustments", "COIN"), sideAccountId: userAccountId(user, "COIN"), audit, now }),
    });
    const rows = await applyPlans(db, [fund(a.id, 100), fund(b.id, 50), debit(a.id, 30)]);
    expect(rows.map((r) => r.balanceAfter)).toEqual([100, 50, 70]);
    await expect(applyPlans(db, [fund(a.id, 10), debit(b.id, 51)])).rejects.toMatchObject({ code: "insufficient_funds" });
    await expect(applyPlans(db, [fund(a.id, 10, `k-${a.id}`), fund(b.id, 10, `k-${a.id}`)])).rejects.toMatchObject({ code: "already_applied" });
    const balances = await env.DB.prepare("select id, balance from accounts where id in (?, ?) order by id").bind(userAccountId(a.id, "COIN"), userAccountId(b.id, "COIN")).all<{ id: string; balance: number }>();
    expect(balances.results.map((r) => r.balance).sort()).toEqual([50, 70]);
    expect((await checkLedger(db)).ok).toBe(true);
  });
});
