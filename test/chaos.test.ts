import { env } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { adjust, adminToken, call, expectLedgerOk, midtransNotification, postMidtransWebhook, sim, uniqueId, verifiedUser } from "./helpers";

/**
 * Randomized concurrency chaos: every round fires a seeded mix of value-moving requests at once across a
 * few users (transfers with repeated Idempotency-Keys, content, gifts, boosts, marketplace, withdrawals with
 * Iris answering, Midtrans deposits, admin freezes/bans/adjustments mid-flight), then checks invariants.
 */
const SEED = 20240607;
// Five rounds keep npm test short; change SEED or ROUNDS for a longer hunt (14 rounds and seeds 1, 777 passed).
const ROUNDS = 5;
const OPS = 110;
const USERS = 8;
const ITEMS = 3;
const KEYS = 3;

const VARS = {
  RATE_LIMIT_PER_MINUTE: "1000000",
  RAPID_TRANSACTIONS_PER_MINUTE: "1000000",
  SPEND_LIMIT_DAILY_VERIFIED_IDR: "1000000000",
  SPEND_LIMIT_DAILY_UNVERIFIED_IDR: "1000000000",
};

type User = { id: string; token: string };
type Res = Awaited<ReturnType<typeof call>>;

const u = fc.nat(USERS - 1);
type Op =
  | { kind: "transfer"; from: number; to: number; amount: number; key: number | null; variant: number }
  | { kind: "price"; creator: number; item: number; price: number }
  | { kind: "unlock"; buyer: number; item: number; then: "none" | "refund" | "refundTwice" | "unlockAgain" }
  | { kind: "buyerRefund"; buyer: number; item: number; creator: number }
  | { kind: "close"; item: number; creator: number; how: "delete" | "admin" }
  | { kind: "gift"; from: number; to: number; giftId: "heart" | "rose" | "diamond"; quantity: number }
  | { kind: "boost"; from: number; stream: number; level: "basic" | "premium" }
  | { kind: "order"; buyer: number; seller: number; amount: number; then: "confirm" | "sellerRefund" | "adminRefund" | "confirmTwice" | "none" }
  | { kind: "withdraw"; user: number; amount: number; outcome: "completed" | "failed" | "both" | "none" }
  | { kind: "deposit"; user: number; pkg: "pkg_100" | "pkg_500"; copies: number; status: "settlement" | "expire" | "refund" | "chargeback" }
  | { kind: "freeze"; user: number; unfreezeAfter: boolean }
  | { kind: "ban"; user: number }
  | { kind: "adjust"; user: number; amount: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant("transfer" as const), from: u, to: u, amount: fc.integer({ min: 1, max: 700 }), key: fc.option(fc.nat(KEYS - 1), { freq: 2 }), variant: fc.nat(1) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("price" as const), creator: u, item: fc.nat(ITEMS - 1), price: fc.integer({ min: 1, max: 300 }) }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant("unlock" as const), buyer: u, item: fc.nat(ITEMS - 1), then: fc.constantFrom("none" as const, "refund" as const, "refundTwice" as const, "unlockAgain" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("buyerRefund" as const), buyer: u, item: fc.nat(ITEMS - 1), creator: u }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("close" as const), item: fc.nat(ITEMS - 1), creator: u, how: fc.constantFrom("delete" as const, "admin" as const) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("gift" as const), from: u, to: u, giftId: fc.constantFrom("heart" as const, "rose" as const, "diamond" as const), quantity: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("boost" as const), from: u, stream: u, level: fc.constantFrom("basic" as const, "premium" as const) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("order" as const), buyer: u, seller: u, amount: fc.integer({ min: 2, max: 600 }), then: fc.constantFrom("confirm" as const, "sellerRefund" as const, "adminRefund" as const, "confirmTwice" as const, "none" as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("withdraw" as const), user: u, amount: fc.integer({ min: 500, max: 1500 }), outcome: fc.constantFrom("completed" as const, "failed" as const, "both" as const, "none" as const) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("deposit" as const), user: u, pkg: fc.constantFrom("pkg_100" as const, "pkg_500" as const), copies: fc.integer({ min: 1, max: 3 }), status: fc.constantFrom("settlement" as const, "settlement" as const, "expire" as const, "refund" as const, "chargeback" as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("freeze" as const), user: u, unfreezeAfter: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("ban" as const), user: u }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("adjust" as const), user: u, amount: fc.integer({ min: -400, max: 600 }).filter((n) => n !== 0) }) },
);
const roundArb = fc.record({
  ops: fc.array(fc.tuple(opArb, fc.integer({ min: 0, max: 40 })), { minLength: OPS, maxLength: OPS }).map((ops) =>
    // At most one ban per round, so most users keep trading; admin actions land mid-flight.
    ops.filter(([op], i) => op.kind !== "ban" || ops.findIndex(([o]) => o.kind === "ban") === i),
  ),
});

const MONEY_OUT = ["wallet.transfer", "content.unlocked", "live.gift", "live.boost", "marketplace.ordered", "withdrawal.requested"];
const BLOCKING = ["user.frozen", "test.banned", "fraud.action_level_2", "fraud.action_level_3", "fraud.action_level_4"];
const UNBLOCKING = ["user.unfrozen", "fraud.review"];

async function refundsDone(id: string, admin: string) {
  for (let i = 0; i < 400; i++) {
    const p = await call("GET", `/api/admin/content/${id}/refunds`, { token: admin });
    if (p.status === 404) return;
    if (p.json?.status === "done") return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`refunds of ${id} did not finish`);
}

async function irisRef(withdrawalId: string): Promise<string | undefined> {
  const payouts = (await sim("GET", "/_sim/state")).json.payouts as { reference_no: string; notes: string }[];
  return payouts.find((p) => p.notes === `Withdrawal ${withdrawalId}`)?.reference_no;
}

async function irisNotifyRaw(referenceNo: string, status: string) {
  const built = await sim("POST", `/_sim/iris/${referenceNo}/notify`, { status, deliver: false });
  if (built.status !== 200) throw new Error(`sim iris notify ${built.status} ${JSON.stringify(built.json)}`);
  return call("POST", "/api/payment/midtrans/iris-webhook", { rawBody: built.json.raw, headers: { "content-type": "application/json", ...built.json.headers } });
}

describe("chaos: concurrent mixed traffic", () => {
  it("random concurrent mixed traffic keeps every money invariant", async () => {
    const admin = await adminToken();
    const rounds = fc.sample(roundArb, { seed: SEED, numRuns: ROUNDS });
    let totalOps = 0;
    let totalRequests = 0;

    for (const [r, round] of rounds.entries()) {
      const users: User[] = await Promise.all(Array.from({ length: USERS }, () => verifiedUser(`ch${r}`)));
      await Promise.all(users.map((x) => adjust(x.id, 3000)));
      const items = Array.from({ length: ITEMS }, () => uniqueId(`item${r}`));
      const streams = users.map((x) => `st-${r}-${x.id}`);
      const closed = new Set<string>();
      for (const [n, id] of items.entries()) {
        const res = await call("PUT", `/api/content/${id}/premium`, { token: users[n]!.token, body: { price: 40 + n * 60 } });
        expect(res.status, res.text).toBe(200);
      }
      const violations: string[] = [];
      const keyed = new Map<string, { body: string; res: Res }[]>();

      const check = (label: string, res: Res) => {
        totalRequests++;
        const ct = res.headers.get("content-type") ?? "";
        if (res.status >= 500) {
          violations.push(`${label}: ${res.status} ${res.text.slice(0, 300)}`);
          if (/at \w+ \(|sqlite|select |insert /i.test(res.text)) violations.push(`${label}: 5xx leaks internals ${res.text.slice(0, 200)}`);
        } else if (res.status >= 400) {
          const j = res.json;
          if (!ct.includes("application/problem+json") || !j || j.status !== res.status || typeof j.type !== "string" || typeof j.title !== "string" || typeof j.detail !== "string" || typeof j.code !== "string")
            violations.push(`${label}: malformed problem ${res.status} ${ct} ${res.text.slice(0, 200)}`);
        } else if (res.status >= 200 && res.status < 300 && res.status !== 204) {
          if (!ct.includes("application/json") || res.json === undefined) violations.push(`${label}: 2xx not JSON ${res.status} ${ct} ${res.text.slice(0, 200)}`);
        }
        return res;
      };
      const C = (label: string, method: string, path: string, opts: Parameters<typeof call>[2] = {}) => call(method, path, { ...opts, vars: { ...VARS, ...opts.vars } }).then((res) => check(label, res));

      const run = async (op: Op, i: number): Promise<void> => {
        const L = `r${r}#${i} ${JSON.stringify(op)}`;
        switch (op.kind) {
          case "transfer": {
            const from = users[op.from]!;
            const body = { toUserId: users[op.to]!.id, amount: op.key === null ? op.amount : 37 + op.variant * 11, ...(op.key === null ? {} : { note: `idem:${r}:${op.from}:${op.key}` }) };
            const headers: Record<string, string> = op.key === null ? {} : { "idempotency-key": `k-${op.key}` };
            const res = await C(L, "POST", "/api/wallet/transfer", { token: from.token, body, headers });
            if (op.key !== null) {
              const k = `${from.id}|k-${op.key}`;
              keyed.set(k, [...(keyed.get(k) ?? []), { body: JSON.stringify(body), res }]);
            }
            return;
          }
          case "price":
            await C(L, "PUT", `/api/content/${items[op.item]}/premium`, { token: users[op.creator]!.token, body: { price: op.price } });
            return;
          case "unlock": {
            const buyer = users[op.buyer]!;
            const path = `/api/content/${items[op.item]}/unlock`;
            if (op.then === "unlockAgain") {
              const both = await Promise.all([C(L, "POST", path, { token: buyer.token }), C(`${L} again`, "POST", path, { token: buyer.token })]);
              if (both.filter((b) => b.status === 201).length > 1) violations.push(`${L}: unlocked twice`);
              return;
            }
            const res = await C(L, "POST", path, { token: buyer.token });
            if (res.status !== 201 || op.then === "none") return;
            const body = { reason: "buyer_request", userId: buyer.id };
            const refunds = await Promise.all(
              Array.from({ length: op.then === "refundTwice" ? 2 : 1 }, () => C(`${L} refund`, "POST", `/api/content/${items[op.item]}/refund`, { token: admin, body })),
            );
            if (refunds.filter((b) => b.status === 200).length > 1) violations.push(`${L}: purchase refunded twice`);
            return;
          }
          case "buyerRefund":
            await C(L, "POST", `/api/content/${items[op.item]}/refund`, { token: admin, body: { reason: "buyer_request", userId: users[op.buyer]!.id } });
            return;
          case "close": {
            const id = items[op.item]!;
            const res =
              op.how === "delete"
                ? await C(L, "DELETE", `/api/content/${id}`, { token: users[op.creator]!.token })
                : await C(L, "POST", `/api/content/${id}/refund`, { token: admin, body: { reason: "admin_removed" } });
            if (res.status === 202 || res.status === 200) closed.add(id);
            return;
          }
          case "gift":
            await C(L, "POST", `/api/live/${streams[op.to]}/gift`, { token: users[op.from]!.token, body: { giftId: op.giftId, streamerId: users[op.to]!.id, quantity: op.quantity } });
            return;
          case "boost":
            await C(L, "POST", `/api/live/${streams[op.stream]}-b/boost`, { token: users[op.from]!.token, body: { level: op.level } });
            return;
          case "order": {
            const buyer = users[op.buyer]!;
            const seller = users[op.seller]!;
            const res = await C(L, "POST", "/api/marketplace/orders", { token: buyer.token, body: { sellerId: seller.id, productId: `sku-${i}`, amount: op.amount } });
            if (res.status !== 201) return;
            const id = res.json.order.id as string;
            if (op.then === "confirm") await C(`${L} confirm`, "POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token });
            else if (op.then === "confirmTwice") {
              const headers = { "idempotency-key": `confirm-${id}` };
              const [a, b] = await Promise.all([
                C(`${L} confirmA`, "POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token, headers }),
                C(`${L} confirmB`, "POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token, headers }),
              ]);
              if (a.status === 200 && b.status === 200 && JSON.stringify(a.json) !== JSON.stringify(b.json)) violations.push(`${L}: idempotent confirm answered differently`);
            } else if (op.then === "sellerRefund") await C(`${L} sellerRefund`, "POST", `/api/marketplace/orders/${id}/refund`, { token: seller.token });
            else if (op.then === "adminRefund") {
              await C(`${L} confirm`, "POST", `/api/marketplace/orders/${id}/confirm`, { token: buyer.token });
              await C(`${L} adminRefund`, "POST", `/api/marketplace/orders/${id}/refund`, { token: admin });
            }
            return;
          }
          case "withdraw": {
            const user = users[op.user]!;
            const res = await C(L, "POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: op.amount } });
            if (res.status !== 202) return;
            const wid = res.json.withdrawalId as string;
            const ref = await irisRef(wid);
            if (!ref) {
              violations.push(`${L}: withdrawal ${wid} never reached Iris`);
              return;
            }
            if (op.outcome === "none") return;
            const outcomes = op.outcome === "both" ? ["completed", "failed"] : [op.outcome, op.outcome];
            const answers = await Promise.all(outcomes.map((o) => irisNotifyRaw(ref, o)));
            for (const a of answers) check(`${L} iris`, a);
            return;
          }
          case "deposit": {
            const user = users[op.user]!;
            const res = await C(L, "POST", "/api/payment/midtrans/create", { token: user.token, body: { packageId: op.pkg } });
            if (res.status !== 201 && res.status !== 200) return;
            const orderId = res.json.orderId as string;
            const n = await midtransNotification(orderId, { transaction_status: op.status === "expire" ? "expire" : "settlement" });
            const answers = await Promise.all(Array.from({ length: op.copies }, () => postMidtransWebhook(n)));
            for (const a of answers) check(`${L} webhook`, a);
            if (op.status === "refund" || op.status === "chargeback") {
              // The buyer spends meanwhile; the reversal may leave recorded debt.
              const back = await midtransNotification(orderId, { transaction_status: op.status });
              const rev = await Promise.all([
                postMidtransWebhook(back),
                postMidtransWebhook(back),
                C(`${L} spend`, "POST", "/api/wallet/transfer", { token: user.token, body: { toUserId: users[(op.user + 1) % USERS]!.id, amount: 90 } }),
              ]);
              check(`${L} reversal`, rev[0]);
              check(`${L} reversal`, rev[1]);
            }
            return;
          }
          case "freeze": {
            const id = users[op.user]!.id;
            await C(L, "POST", `/api/admin/users/${id}/status`, { token: admin, body: { status: "frozen", reason: "chaos freeze" } });
            if (op.unfreezeAfter) await C(`${L} unfreeze`, "POST", `/api/admin/users/${id}/status`, { token: admin, body: { status: "active", reason: "chaos unfreeze" } });
            return;
          }
          case "ban": {
            const id = users[op.user]!.id;
            const now = Date.now();
            await env.DB.batch([
              env.DB.prepare("update users set status = 'banned', updated_at = ? where id = ?").bind(now, id),
              env.DB.prepare("insert into audit_log (actor_id, action, subject_type, subject_id, details, created_at) values ('chaos', 'test.banned', 'user', ?, '{}', ?)").bind(id, now),
            ]);
            return;
          }
          case "adjust":
            await C(L, "POST", "/api/admin/adjustments", { token: admin, body: { userId: users[op.user]!.id, asset: "COIN", amount: op.amount, reason: "chaos adjustment" } });
            return;
        }
      };

      const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
      await Promise.all(round.ops.map(([op, delay], i) => sleep(delay).then(() => run(op, i)).catch((e) => void violations.push(`r${r}#${i} ${JSON.stringify(op)} threw: ${e?.stack ?? e}`))));
      totalOps += round.ops.length;
      // The queue: a closed item's refunds run in chunks; wait for all of them.
      await Promise.all([...closed].map((id) => refundsDone(id, admin)));

      // --- invariants ---
      // 1. Ledger check.
      await expectLedgerOk();
      // 2. No negative user balance (wallet, available) among this round's users.
      const ids = users.map((x) => x.id);
      const marks = ids.map(() => "?").join(",");
      const neg = await env.DB.prepare(`select id, balance, locked from accounts where owner_id in (${marks}) and kind = 'user_wallet' and (balance < 0 or balance - locked < 0)`)
        .bind(...ids)
        .all();
      if (neg.results.length) violations.push(`negative wallets: ${JSON.stringify(neg.results)}`);
      // 3. Each Idempotency-Key moved money at most once, and its successes agree.
      for (const [k, tries] of keyed) {
        const ok = tries.filter((t) => t.res.status === 201);
        const txIds = new Set(ok.map((t) => t.res.json?.id ?? t.res.json?.transaction?.id));
        if (txIds.size > 1) violations.push(`key ${k}: ${txIds.size} different successful transactions ${[...txIds]}`);
        const bodies = new Set(ok.map((t) => t.body));
        if (bodies.size > 1) violations.push(`key ${k}: succeeded for different bodies ${[...bodies]}`);
      }
      const moved = await env.DB.prepare(
        `select user_id as userId, json_extract(metadata, '$.notes') as note, count(*) as n from transactions where type = 'transfer' and status = 'completed' and user_id in (${marks}) and json_extract(metadata, '$.notes') like 'idem:%' group by user_id, note having count(*) > 1`,
      )
        .bind(...ids)
        .all();
      if (moved.results.length) violations.push(`Idempotency-Key moved money more than once: ${JSON.stringify(moved.results)}`);
      // ... and every once-only movement happened at most once: content refunds per purchase, marketplace refunds per order, deposit credits per order.
      const twice = await env.DB.prepare(
        `select type, coalesce(json_extract(metadata, '$.purchaseId'), json_extract(metadata, '$.orderId')) as ref, json_extract(metadata, '$.source') as source, count(*) as n
         from transactions where type in ('refund', 'deposit') and status = 'completed' and user_id in (${marks}) group by type, ref, source having count(*) > 1`,
      )
        .bind(...ids)
        .all();
      if (twice.results.length) violations.push(`applied more than once: ${JSON.stringify(twice.results)}`);
      // 4. Nobody blocked (frozen, banned, verification required) moved coins out after the block committed.
      const log = await env.DB.prepare(`select id, actor_id as actor, action, subject_id as subject from audit_log where actor_id in (${marks}) or subject_id in (${marks}) order by id`)
        .bind(...ids, ...ids)
        .all<{ id: number; actor: string; action: string; subject: string }>();
      const blocked = new Map<string, number>();
      const banned = new Map<string, number>();
      for (const e of log.results) {
        if (e.action === "wallet.transfer" && banned.has(e.subject)) violations.push(`transfer to ${e.subject} (audit ${e.id}) after its ban (audit ${banned.get(e.subject)})`);
        if ((e.action === "test.banned" || e.action === "fraud.action_level_4") && ids.includes(e.subject)) banned.set(e.subject, e.id);
        if (BLOCKING.includes(e.action) && ids.includes(e.subject)) blocked.set(e.subject, e.id);
        else if (UNBLOCKING.includes(e.action) && ids.includes(e.subject)) blocked.delete(e.subject);
        else if (MONEY_OUT.includes(e.action) && ids.includes(e.actor)) {
          const at = blocked.get(e.actor);
          if (at !== undefined) violations.push(`${e.actor} moved money out (${e.action}, audit ${e.id}) after being blocked (audit ${at})`);
        }
      }
      // 5. The books balance: user wallets + debts + system accounts sum to zero per asset.
      const sums = await env.DB.prepare("select asset, sum(balance) as s from accounts group by asset").all<{ asset: string; s: number }>();
      for (const s of sums.results) if (s.s !== 0) violations.push(`asset ${s.asset} does not sum to zero: ${JSON.stringify(s)}`);
      // 6. Locks match pending holds and pending withdrawals for this round's users.
      const holdMismatch = await env.DB.prepare(
        `select w.id, w.status, h.status as hold from withdrawals w join holds h on h.transaction_id = w.transaction_id where w.user_id in (${marks}) and ((w.status = 'pending') != (h.status = 'pending'))`,
      )
        .bind(...ids)
        .all()
        .catch((e) => ({ results: [{ error: String(e) }] }));
      if (holdMismatch.results.length) violations.push(`withdrawal/hold mismatch: ${JSON.stringify(holdMismatch.results)}`);

      expect(violations, violations.join("\n")).toEqual([]);
    }
    expect(totalRequests).toBeGreaterThan(ROUNDS * OPS * 0.9);
  }, 180_000);
});
