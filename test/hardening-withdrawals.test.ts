import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { createDb } from "../src/db/client";
import { reconcileWithdrawals } from "../src/payouts/withdrawals.service";
import { adjust, adminToken, balanceOf, call, expectLedgerOk, expectProblem, irisNotify, irisReferenceOf, sim, verifiedUser } from "./helpers";

const config = loadConfig(env);
const reconcile = (now: number) => reconcileWithdrawals(createDb(env.DB), config, env, now);
const withdrawalOf = (id: string) => env.DB.prepare("select * from withdrawals where id = ?").bind(id).first<Record<string, any>>();
const simPayoutsFor = async (id: string) => ((await sim("GET", "/_sim/state")).json.payouts as { notes: string; reference_no: string; status: string }[]).filter((p) => p.notes === `Withdrawal ${id}`);
const withdraw = (token: string, amount: number, key?: string) =>
  call("POST", "/api/wallet/withdraw", { token, body: { asset: "COIN", amount }, headers: key ? { "idempotency-key": key } : {} });
/** A withdrawal whose create never reached Iris (held past our deadline): unconfirmed, nothing at Iris. Its id. */
async function unsent(token: string, amount: number) {
  await sim("POST", "/_sim/faults", { target: "iris", mode: "timeout" });
  const res = await withdraw(token, amount);
  expect(res.json, res.text).toMatchObject({ unconfirmed: true });
  const id = res.json.withdrawalId as string;
  expect(await simPayoutsFor(id)).toHaveLength(0);
  return id;
}

describe("hardening 1: ambiguous Iris outcomes never release a hold", () => {
  it("Iris accepts the payout but answers after the deadline: the coins stay locked, cannot be withdrawn twice, and Iris' notification settles it", async () => {
    const user = await verifiedUser("late");
    await adjust(user.id, 1500);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "late" });
    const res = await withdraw(user.token, 1000, `late-${user.id}`);
    expect(res.status, res.text).toBe(202);
    expect(res.json).toMatchObject({ status: "pending", unconfirmed: true, netIdr: 88_000 });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1500, lockedBalance: 1000, availableBalance: 500 });
    expectProblem(await withdraw(user.token, 1000), 422, "insufficient_funds");
    const replay = await withdraw(user.token, 1000, `late-${user.id}`);
    expect(replay.json).toEqual(res.json);
    expect(await withdrawalOf(res.json.withdrawalId)).toMatchObject({ status: "pending", unconfirmed: 1, iris_reference: null });
    const payouts = await simPayoutsFor(res.json.withdrawalId);
    expect(payouts).toHaveLength(1);

    // Iris' signed notification names only its reference; the service matches it through Iris' own record.
    const done = await irisNotify(payouts[0]!.reference_no, "completed");
    expect(done.json, done.text).toMatchObject({ outcome: "completed" });
    expect(await withdrawalOf(res.json.withdrawalId)).toMatchObject({ status: "completed", unconfirmed: 0, iris_reference: payouts[0]!.reference_no });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 500, lockedBalance: 0, totalWithdrawn: 100_000 });
    await expectLedgerOk();
  });

  it("a 5xx or an unreadable answer is ambiguous too: reconciliation repeats the create under the same key, learns the reference, and never makes a second payout", async () => {
    const user = await verifiedUser("amb");
    await adjust(user.id, 3000);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "http500" });
    const lost = await withdraw(user.token, 1000);
    expect(lost.json).toMatchObject({ unconfirmed: true });
    expect(await simPayoutsFor(lost.json.withdrawalId)).toHaveLength(0);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "garbage" });
    const unreadable = await withdraw(user.token, 1000);
    expect(unreadable.json).toMatchObject({ unconfirmed: true });
    expect(await simPayoutsFor(unreadable.json.withdrawalId)).toHaveLength(1);
    expect(await balanceOf(user.token)).toMatchObject({ lockedBalance: 2000 });

    const later = Date.now() + 6 * 60_000;
    const run = await reconcile(later);
    expect(run).toMatchObject({ referencesLearned: 2 });
    for (const w of [lost, unreadable]) {
      const payouts = await simPayoutsFor(w.json.withdrawalId);
      expect(payouts).toHaveLength(1);
      expect(await withdrawalOf(w.json.withdrawalId)).toMatchObject({ status: "pending", unconfirmed: 0, iris_reference: payouts[0]!.reference_no });
    }
    await sim("POST", `/_sim/iris/${await irisReferenceOf(lost.json.withdrawalId)}/notify`, { status: "completed", deliver: false });
    await sim("POST", `/_sim/iris/${await irisReferenceOf(unreadable.json.withdrawalId)}/notify`, { status: "failed", deliver: false });
    await reconcile(later + 3_600_000);
    expect(await withdrawalOf(lost.json.withdrawalId)).toMatchObject({ status: "completed" });
    expect(await withdrawalOf(unreadable.json.withdrawalId)).toMatchObject({ status: "failed" });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 2000, lockedBalance: 0 });
    await expectLedgerOk();
  });

  it("a withdrawal held but never sent to Iris (the Worker stopped) is sent by reconciliation under its key", async () => {
    const user = await verifiedUser("died");
    await adjust(user.id, 1000);
    const id = await unsent(user.token, 600);
    await reconcile(Date.now() + 6 * 60_000);
    const payouts = await simPayoutsFor(id);
    expect(payouts).toHaveLength(1);
    expect((await irisNotify(payouts[0]!.reference_no, "completed")).json.outcome).toBe("completed");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 400, lockedBalance: 0 });
    await expectLedgerOk();
  });

  it("an admin resolves a pending withdrawal once (audited); a second resolve is 409; Iris disagreeing later raises a critical alert", async () => {
    const user = await verifiedUser("admin-res");
    await adjust(user.id, 1000);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "late" });
    const res = await withdraw(user.token, 800);
    const token = await adminToken();
    const path = `/api/admin/withdrawals/${res.json.withdrawalId}/resolve`;
    const list = await call("GET", "/api/admin/withdrawals?unconfirmed=true&limit=100", { token });
    expect(list.json.items.map((w: any) => w.id)).toContain(res.json.withdrawalId);
    expectProblem(await call("POST", path, { token: user.token, body: { outcome: "failed", reason: "not mine" } }), 403, "forbidden");
    expectProblem(await call("POST", path, { token, body: { outcome: "lost", reason: "x" } }), 400, "validation_failed");
    const [a, b] = await Promise.all([call("POST", path, { token, body: { outcome: "failed", reason: "Iris dashboard shows no payout" } }), call("POST", path, { token, body: { outcome: "failed", reason: "twice" } })]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect((a.status === 200 ? a : b).json).toMatchObject({ status: "failed", resolvedBy: "admin-root" });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 0 });
    const audit = await env.DB.prepare("select actor_id, details from audit_log where action = 'withdrawal.failed' and subject_id = ?").bind(res.json.withdrawalId).all<{ actor_id: string; details: string }>();
    expect(audit.results).toHaveLength(1);
    expect(audit.results[0]!.actor_id).toBe("admin-root");
    // Iris actually paid it: nothing moves again, and a person is told.
    const [payout] = await simPayoutsFor(res.json.withdrawalId);
    expect((await irisNotify(payout!.reference_no, "completed")).json.outcome).toBe("duplicate");
    const conflicts = await env.DB.prepare("select severity from fraud_alerts where user_id = ? and alert_type = 'withdrawal_outcome_conflict'").bind(user.id).all();
    expect(conflicts.results).toEqual([{ severity: "critical" }]);
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 0 });
    await expectLedgerOk();
  });

  it("past Iris' idempotency window an unknown withdrawal is flagged for review with one alert, however many runs see it; reconciliation never stalls behind 100 stuck rows", async () => {
    const user = await verifiedUser("stuck");
    await adjust(user.id, 1000);
    const now = Date.now();
    const old = now - 2 * 86_400_000;
    // 100 rows stuck without a reference (as a Worker that stopped long ago would leave them), due first.
    const stuck = Array.from({ length: 100 }, (_, i) => `01STUCK${String(i).padStart(19, "0")}`);
    for (let i = 0; i < stuck.length; i += 50) {
      await env.DB.batch(
        stuck.slice(i, i + 50).map((id) =>
          env.DB.prepare(
            "insert into withdrawals (id, user_id, asset, amount, gross_idr, platform_fee_idr, tax_idr, net_idr, status, hold_id, transaction_id, bank_name, account_number, account_name, next_check_at, created_at, updated_at) values (?, ?, 'COIN', 500, 50000, 5000, 1000, 44000, 'pending', ?, ?, 'bca', '1234567890', 'Siti Rahma', 1, ?, ?)",
          ).bind(id, user.id, `h-${id}`, `t-${id}`, old, old),
        ),
      );
    }
    const res = await withdraw(user.token, 600);
    expect(res.status).toBe(202);
    const ref = await irisReferenceOf(res.json.withdrawalId);
    await sim("POST", `/_sim/iris/${ref}/notify`, { status: "completed", deliver: false });

    const due = now + 31 * 60_000;
    const first = await reconcile(due);
    expect(first).toMatchObject({ checked: 100, needsReview: 100 });
    const second = await reconcile(due + 1000);
    expect(second.settled).toBe(1);
    expect(await withdrawalOf(res.json.withdrawalId)).toMatchObject({ status: "completed", iris_reference: ref });
    await reconcile(due + 7 * 3_600_000);
    const alerts = await env.DB.prepare("select count(*) as n, count(distinct json_extract(details, '$.withdrawalId')) as d from fraud_alerts where alert_type = 'withdrawal_unconfirmed' and user_id = ?").bind(user.id).first<{ n: number; d: number }>();
    expect(alerts).toEqual({ n: 100, d: 100 });
    const flagged = await env.DB.prepare("select count(*) as n from withdrawals where user_id = ? and unconfirmed = 1 and status = 'pending'").bind(user.id).first<{ n: number }>();
    expect(flagged?.n).toBe(100);
    // Leave nothing pending that the ledger would not know about.
    await env.DB.prepare("delete from withdrawals where id like '01STUCK%'").run();
    await expectLedgerOk();
  });
});

describe("reconciliation never releases a hold a payout may still use", () => {
  it("a refusal of the repeated create proves nothing (Iris may check before its idempotency key): the hold stays and a person is told; Iris completing it later pays once", async () => {
    const user = await verifiedUser("replay-refused");
    await adjust(user.id, 1000);
    const res = await withdraw(user.token, 700);
    expect(res.status, res.text).toBe(202);
    const w = await withdrawalOf(res.json.withdrawalId);
    expect(await simPayoutsFor(w!.id)).toHaveLength(1);
    // No notification within 30 minutes (the payout waits for the approver); the repeated create is refused.
    await sim("POST", "/_sim/faults", { target: "iris", mode: "reject" });
    await reconcile(w!.created_at + 31 * 60_000);
    expect(await withdrawalOf(w!.id)).toMatchObject({ status: "pending", unconfirmed: 1 });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 700 });
    const alerts = await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = 'withdrawal_unconfirmed'").bind(user.id).first<{ n: number }>();
    expect(alerts?.n).toBe(1);
    expect((await irisNotify(await irisReferenceOf(w!.id), "completed")).json.outcome).toBe("completed");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 300, lockedBalance: 0 });
    await expectLedgerOk();
  });

  it("a status query Iris refuses for a known reference is not retried in silence: the hold stays and a person is told, once", async () => {
    const user = await verifiedUser("status-refused");
    await adjust(user.id, 1000);
    const res = await withdraw(user.token, 700);
    expect(res.status, res.text).toBe(202);
    const w = await withdrawalOf(res.json.withdrawalId);
    // The reference is known (learned by an earlier run) and the row is due; Iris refuses every status query.
    await env.DB.prepare("update withdrawals set iris_reference = ?, next_check_at = 1 where id = ?").bind(await irisReferenceOf(w!.id), w!.id).run();
    await sim("POST", "/_sim/faults", { target: "iris", mode: "reject", count: 5 });
    await reconcile(w!.created_at + 31 * 60_000);
    await env.DB.prepare("update withdrawals set next_check_at = 1 where id = ?").bind(w!.id).run();
    await reconcile(w!.created_at + 90 * 60_000);
    expect(await withdrawalOf(w!.id)).toMatchObject({ status: "pending", unconfirmed: 1 });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 700 });
    const alerts = await env.DB.prepare("select count(*) as n from fraud_alerts where user_id = ? and alert_type = 'withdrawal_unconfirmed'").bind(user.id).first<{ n: number }>();
    expect(alerts?.n).toBe(1);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "none" });
  });

  it("a withdrawal an admin settled while a run was busy with earlier rows is not sent to Iris by that run", async () => {
    const user = await verifiedUser("stale-run");
    await adjust(user.id, 2000);
    // Two withdrawals whose create never reached Iris (the Worker's deadline passed first).
    const [a, b] = [await unsent(user.token, 600), await unsent(user.token, 600)];
    // The run's first Iris call (a's create) answers slowly; meanwhile an admin sees no payout for b and fails it.
    await sim("POST", "/_sim/faults", { target: "iris", mode: "late", delayMs: 700 });
    const run = reconcile(Date.now() + 6 * 60_000);
    await new Promise((r) => setTimeout(r, 200));
    const resolved = await call("POST", `/api/admin/withdrawals/${b}/resolve`, { token: await adminToken(), body: { outcome: "failed", reason: "Iris dashboard shows no payout" } });
    expect(resolved.status, resolved.text).toBe(200);
    await run;
    expect(await simPayoutsFor(a)).toHaveLength(1);
    expect(await simPayoutsFor(b)).toHaveLength(0);
    expect(await balanceOf(user.token)).toMatchObject({ balance: 2000, lockedBalance: 600 });
    await expectLedgerOk();
  });
});

describe("an admin resolves only what Iris left unconfirmed", () => {
  it("a payout Iris accepted is not settled by hand (409, the hold stays): Iris' own outcome settles it, once", async () => {
    const user = await verifiedUser("resolve-confirmed");
    await adjust(user.id, 1000);
    const res = await withdraw(user.token, 1000);
    expect(res.status, res.text).toBe(202);
    expect(res.json.unconfirmed).toBeUndefined();
    const token = await adminToken();
    for (const outcome of ["failed", "completed"]) {
      expectProblem(await call("POST", `/api/admin/withdrawals/${res.json.withdrawalId}/resolve`, { token, body: { outcome, reason: "user asked to cancel" } }), 409, "conflict");
    }
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 1000 });
    expect((await irisNotify(await irisReferenceOf(res.json.withdrawalId), "completed")).json.outcome).toBe("completed");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 0, lockedBalance: 0 });
    await expectLedgerOk();
  });
});

describe("a payout Iris accepted but never finishes", () => {
  it("is flagged for a person after WITHDRAW_REVIEW_AFTER_HOURS without an outcome (one alert), who can then resolve it; before that it is Iris' to settle", async () => {
    const config = loadConfig(env);
    const user = await verifiedUser("stuck-accepted");
    await adjust(user.id, 1000);
    const res = await withdraw(user.token, 700);
    expect(res.status, res.text).toBe(202);
    const id = res.json.withdrawalId as string;
    const created = (await withdrawalOf(id))!.created_at as number;
    const token = await adminToken();
    const resolve = () => call("POST", `/api/admin/withdrawals/${id}/resolve`, { token, body: { outcome: "failed", reason: "Iris dashboard: never approved, cancelled there" } });
    // Iris keeps it queued (nobody approves it): every look finds no outcome.
    for (const hours of [1, 6, 24]) {
      await env.DB.prepare("update withdrawals set next_check_at = 1 where id = ?").bind(id).run();
      await reconcileWithdrawals(createDb(env.DB), config, env, created + hours * 3_600_000);
    }
    expectProblem(await resolve(), 409, "conflict");
    for (const hours of [config.WITHDRAW_REVIEW_AFTER_HOURS + 1, 24 * 30]) {
      await env.DB.prepare("update withdrawals set next_check_at = 1 where id = ?").bind(id).run();
      await reconcileWithdrawals(createDb(env.DB), config, env, created + hours * 3_600_000);
    }
    const alerts = await env.DB.prepare("select json_extract(details, '$.reason') as reason from fraud_alerts where user_id = ? and alert_type = 'withdrawal_unconfirmed'").bind(user.id).all<{ reason: string }>();
    expect(alerts.results).toEqual([{ reason: "iris_no_outcome" }]);
    expect((await resolve()).status).toBe(200);
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 0 });
    await expectLedgerOk();
  });
});

describe("an admin's resolve under an Idempotency-Key", () => {
  it("settles once; the same request again replays the answer", async () => {
    const user = await verifiedUser("resolve-key");
    await adjust(user.id, 1000);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "late" });
    const res = await withdraw(user.token, 500);
    const token = await adminToken();
    const path = `/api/admin/withdrawals/${res.json.withdrawalId}/resolve`;
    const headers = { "idempotency-key": `resolve-${res.json.withdrawalId}` };
    const body = { outcome: "failed", reason: "Iris dashboard shows no payout" };
    const first = await call("POST", path, { token, body, headers });
    expect(first.status, first.text).toBe(200);
    const again = await call("POST", path, { token, body, headers });
    expect([again.status, again.json, again.headers.get("idempotent-replayed")]).toEqual([200, first.json, "true"]);
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 0 });
    await expectLedgerOk();
  });
});

describe("a repeat of a withdrawal while Iris is still being asked", () => {
  it("is never told 'pending' for a withdrawal Iris then refuses: it is 409 in progress (retry), and afterwards the refusal", async () => {
    const user = await verifiedUser("wd-twin");
    await adjust(user.id, 2000);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "reject" });
    const key = `wd-twin-${user.id}`;
    const [a, b] = await Promise.all([withdraw(user.token, 1000, key), withdraw(user.token, 1000, key)]);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "none" });
    const answers = [a, b].map((r) => `${r.status} ${r.json.code ?? r.json.status}`).sort();
    expect(answers).toContain("502 gateway_error");
    expect(answers.every((x) => x === "502 gateway_error" || x === "409 conflict"), answers.join(", ")).toBe(true);
    const later = await withdraw(user.token, 1000, key);
    expectProblem(later, 502, "gateway_error");
    expect(later.headers.get("idempotent-replayed")).toBe("true");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 2000, lockedBalance: 0 });
    await expectLedgerOk();
  });

  it("a repeat that finds the answer still open gets 409 with Retry-After; once its window has passed, the 202", async () => {
    const user = await verifiedUser("wd-open");
    await adjust(user.id, 2000);
    const key = `wd-open-${user.id}`;
    const first = await withdraw(user.token, 1000, key);
    expect(first.status, first.text).toBe(202);
    const early = await withdraw(user.token, 1000, key);
    expectProblem(early, 409, "conflict");
    expect(Number(early.headers.get("retry-after"))).toBeGreaterThan(0);
    // The window is the gateway's deadline and a margin; once past it, the stored answer is final.
    await env.DB.prepare("update idempotency_keys set settles_at = ? where user_id = ? and key = ?").bind(Date.now() - 1, user.id, key).run();
    const replay = await withdraw(user.token, 1000, key);
    expect(replay.status).toBe(202);
    expect(replay.json).toEqual(first.json);
    expect((await balanceOf(user.token)).lockedBalance).toBe(1000);
  });
});

describe("an accepted payout is never resolved by hand", () => {
  it("Iris' notification of the payout arriving before its late answer keeps the withdrawal confirmed: no resolve by hand, Iris' completed posts it", async () => {
    const user = await verifiedUser("late-approved");
    await adjust(user.id, 1000);
    // Iris makes the payout at once but answers after the client's deadline.
    await sim("POST", "/_sim/faults", { target: "iris", mode: "late", delayMs: 4000 });
    const pending = withdraw(user.token, 1000);
    // While the request waits on Iris, Iris' signed "approved" notification arrives.
    let payout: { reference_no: string } | undefined;
    for (let i = 0; i < 60 && !payout; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const id = (await env.DB.prepare("select id from withdrawals where user_id = ?").bind(user.id).first<{ id: string }>())?.id;
      if (id) payout = (await simPayoutsFor(id))[0];
    }
    expect(payout).toBeDefined();
    expect((await irisNotify(payout!.reference_no, "approved")).status).toBe(200);
    const res = await pending;
    expect(res.status, res.text).toBe(202);
    const id = res.json.withdrawalId as string;
    expect(await withdrawalOf(id)).toMatchObject({ status: "pending", iris_reference: payout!.reference_no, unconfirmed: 0 });
    const resolved = await call("POST", `/api/admin/withdrawals/${id}/resolve`, { token: await adminToken(), body: { outcome: "failed", reason: "support ticket says no money arrived" } });
    expectProblem(resolved, 409, "conflict");
    expect((await irisNotify(payout!.reference_no, "completed")).json.outcome).toBe("completed");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 0, lockedBalance: 0 });
    await expectLedgerOk();
  });

  it("a withdrawal reconciliation is sending to Iris cannot be resolved by hand meanwhile", async () => {
    const user = await verifiedUser("resolve-during-send");
    await adjust(user.id, 1000);
    const id = await unsent(user.token, 1000);
    // Reconciliation repeats the create; Iris takes 700 ms to answer. An admin resolves "failed" meanwhile.
    await sim("POST", "/_sim/faults", { target: "iris", mode: "late", delayMs: 700 });
    const run = reconcile(Date.now() + 6 * 60_000);
    await new Promise((r) => setTimeout(r, 150));
    const resolved = await call("POST", `/api/admin/withdrawals/${id}/resolve`, { token: await adminToken(), body: { outcome: "failed", reason: "Iris dashboard shows no payout" } });
    await run;
    expectProblem(resolved, 409, "conflict");
    const [made] = await simPayoutsFor(id);
    expect(made).toBeDefined();
    expect((await irisNotify(made!.reference_no, "completed")).json.outcome).toBe("completed");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 0, lockedBalance: 0 });
    await expectLedgerOk();
  });
});
