import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { withdrawalBreakdown, withdrawalCredits } from "../src/payouts/withdrawal-rules";
import { assertBalanced } from "../src/ledger/plan";
import { adjust, adminToken, balanceOf, call, expectLedgerOk, expectProblem, irisNotify, irisReferenceOf, kycForm, newUser, setUserStatus, sim, verifiedUser } from "./helpers";

const rates = { coinValueIdr: 100, feeBps: 1000, taxBps: 200 };

describe("withdrawal fee rule", () => {
  it("1,000 coins → gross 100,000, fee 10,000, tax 2,000, net 88,000", () => {
    expect(withdrawalBreakdown("COIN", 1000, rates)).toEqual({ grossIdr: 100_000, platformFeeIdr: 10_000, taxIdr: 2_000, netIdr: 88_000 });
  });

  it("rounds fee and tax down and the parts always sum to gross", () => {
    expect(withdrawalBreakdown("IDR", 50_009, rates)).toEqual({ grossIdr: 50_009, platformFeeIdr: 5_000, taxIdr: 1_000, netIdr: 44_009 });
    for (const gross of [50_000, 50_001, 77_777, 99_999, 123_456_789]) {
      const b = withdrawalBreakdown("IDR", gross, rates);
      expect(b.platformFeeIdr + b.taxIdr + b.netIdr).toBe(gross);
      expect(b.platformFeeIdr).toBe(Math.floor(gross / 10));
      expect(b.taxIdr).toBe(Math.floor((gross * 2) / 100));
    }
  });

  it("the credits balance the held amount per asset", () => {
    const b = withdrawalBreakdown("COIN", 1234, rates);
    assertBalanced([{ accountId: "usr:x:COIN", asset: "COIN", amount: -1234 }, ...withdrawalCredits("COIN", 1234, b)]);
    const i = withdrawalBreakdown("IDR", 60_001, rates);
    assertBalanced([{ accountId: "usr:x:IDR", asset: "IDR", amount: -60_001 }, ...withdrawalCredits("IDR", 60_001, i)]);
  });
});

const withdrawalOf = (id: string) => env.DB.prepare("select * from withdrawals where id = ?").bind(id).first<Record<string, any>>();

describe("POST /api/wallet/withdraw", () => {
  it("holds at once, sends the net to Iris, and posts fee, tax and net when Iris completes", async () => {
    const user = await verifiedUser();
    await adjust(user.id, 1500);
    const res = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 1000 } });
    expect(res.status, res.text).toBe(202);
    expect(res.json).toMatchObject({ grossIdr: 100_000, platformFeeIdr: 10_000, taxIdr: 2_000, netIdr: 88_000, status: "pending" });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1500, lockedBalance: 1000, availableBalance: 500 });
    const ref = await irisReferenceOf(res.json.withdrawalId);
    const payouts = (await sim("GET", "/_sim/state")).json.payouts as any[];
    const payout = payouts.find((p) => p.reference_no === ref);
    expect(Number(payout.amount)).toBe(88_000);
    expect(payout.beneficiary_account).toBe("1234567890");

    // A second withdrawal beyond what is available while the first is held is refused.
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 501 } }), 422, "insufficient_funds");

    const revenueBefore = await env.DB.prepare("select balance from accounts where id = 'sys:platform_revenue:IDR'").first<{ balance: number }>();
    const done = await irisNotify(ref, "completed");
    expect(done.json).toMatchObject({ outcome: "completed" });
    expect((await irisNotify(ref, "completed")).json.outcome).toBe("duplicate");
    expect((await irisNotify(ref, "failed")).json.outcome).toBe("duplicate");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 500, lockedBalance: 0, totalWithdrawn: 100_000 });
    const revenueAfter = await env.DB.prepare("select balance from accounts where id = 'sys:platform_revenue:IDR'").first<{ balance: number }>();
    expect(revenueAfter!.balance - revenueBefore!.balance).toBe(10_000);
    expect(await withdrawalOf(res.json.withdrawalId)).toMatchObject({ status: "completed" });
    await expectLedgerOk();
  });

  it("failed or rejected voids the hold once; a later completed changes nothing", async () => {
    const user = await verifiedUser();
    await adjust(user.id, 100_000, "IDR");
    const res = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "IDR", amount: 60_001 } });
    expect(res.json).toMatchObject({ grossIdr: 60_001, platformFeeIdr: 6_000, taxIdr: 1_200, netIdr: 52_801 });
    const ref = await irisReferenceOf(res.json.withdrawalId);
    expect((await irisNotify(ref, "rejected")).json.outcome).toBe("failed");
    expect((await irisNotify(ref, "completed")).json.outcome).toBe("duplicate");
    expect(await balanceOf(user.token)).toMatchObject({ idrBalance: 100_000, idrLockedBalance: 0, totalWithdrawn: 0 });
    await expectLedgerOk();
  });

  it("forged or unknown Iris notifications change nothing", async () => {
    const user = await verifiedUser();
    await adjust(user.id, 1000);
    const res = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 600 } });
    const ref = await irisReferenceOf(res.json.withdrawalId);
    expectProblem(await irisNotify(ref, "completed", { signature: "ab".repeat(64) }), 401, "invalid_signature");
    const raw = JSON.stringify({ reference_no: ref, status: "completed" });
    expectProblem(await call("POST", "/api/payment/midtrans/iris-webhook", { rawBody: raw, headers: { "content-type": "application/json" } }), 401, "invalid_signature");
    expectProblem(await irisNotify("no-such-reference", "completed"), 404, "not_found");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 1000, lockedBalance: 600 });
    await expectLedgerOk();
  });

  it("requires verified KYC, a bank account, the minimum, and an active account", async () => {
    const none = await newUser("nokyc");
    await adjust(none.id, 5000);
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: none.token, body: { asset: "COIN", amount: 1000 } }), 403, "kyc_required");
    await call("POST", "/api/wallet/kyc/submit", { token: none.token, form: kycForm() });
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: none.token, body: { asset: "COIN", amount: 1000 } }), 403, "kyc_required");
    await call("POST", `/api/admin/kyc/${none.id}/review`, { token: await adminToken(), body: { decision: "rejected", reason: "no" } });
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: none.token, body: { asset: "COIN", amount: 1000 } }), 403, "kyc_required");

    const nomethod = await newUser("nomethod");
    await call("POST", "/api/wallet/kyc/submit", { token: nomethod.token, form: kycForm() });
    await call("POST", `/api/admin/kyc/${nomethod.id}/review`, { token: await adminToken(), body: { decision: "verified" } });
    await adjust(nomethod.id, 5000);
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: nomethod.token, body: { asset: "COIN", amount: 1000 } }), 422, "withdraw_method_required");

    const user = await verifiedUser();
    await adjust(user.id, 5000);
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 499 } }), 422, "below_minimum");
    for (const bad of [{ asset: "COIN", amount: -1000 }, { asset: "COIN", amount: 10.5 }, { asset: "BTC", amount: 1000 }, { asset: "COIN", amount: "1000" }, { asset: "COIN", amount: 2 ** 60 }]) {
      expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: bad }), 400, "validation_failed");
    }
    for (const bad of [{ bankName: "BCA'; --", accountNumber: "123456", accountName: "A B" }, { bankName: "bca", accountNumber: "12ab", accountName: "A B" }, { bankName: "bca", accountNumber: "123456", accountName: "<script>" }]) {
      expectProblem(await call("PUT", "/api/wallet/withdraw-method", { token: user.token, body: bad }), 400, "validation_failed");
    }
    await setUserStatus(user.id, "frozen");
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 1000 } }), 403, "account_frozen");
    await setUserStatus(user.id, "banned");
    expectProblem(await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 1000 } }), 403, "account_banned");
    expect((await balanceOf(user.token)).lockedBalance).toBe(0);
    await expectLedgerOk();
  });

  it("a definite refusal by Iris voids the hold and says so; the Idempotency-Key replays that answer", async () => {
    const user = await verifiedUser();
    await adjust(user.id, 2000);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "reject" });
    const headers = { "idempotency-key": `wd-${user.id}` };
    const res = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 1000 }, headers });
    expectProblem(res, 502, "gateway_error");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 2000, lockedBalance: 0 });
    const again = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 1000 }, headers });
    expectProblem(again, 502, "gateway_error");
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await balanceOf(user.token)).toMatchObject({ balance: 2000, lockedBalance: 0 });
    await expectLedgerOk();
  });

  it("concurrent withdrawals cannot hold more than the balance", async () => {
    const user = await verifiedUser();
    await adjust(user.id, 1000);
    const results = await Promise.all(Array.from({ length: 8 }, () => call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 600 } })));
    expect(results.filter((r) => r.status === 202)).toHaveLength(1);
    expect(results.filter((r) => r.json?.code === "insufficient_funds")).toHaveLength(7);
    expect((await balanceOf(user.token)).lockedBalance).toBe(600);
    await expectLedgerOk();
  });

  it("reconciliation asks Iris about stale pending withdrawals and settles them", async () => {
    const user = await verifiedUser();
    await adjust(user.id, 1000);
    const res = await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 700 } });
    const w = await withdrawalOf(res.json.withdrawalId);
    // Iris completed it but the notification never arrived.
    await sim("POST", `/_sim/iris/${await irisReferenceOf(w!.id)}/notify`, { status: "completed", deliver: false });
    const { reconcileWithdrawals } = await import("../src/payouts/withdrawals.service");
    const { createDb } = await import("../src/db/client");
    const { loadConfig } = await import("../src/config");
    const config = loadConfig(env);
    const early = await reconcileWithdrawals(createDb(env.DB), config, env, w!.created_at + 60_000);
    expect(early.checked).toBe(0);
    await reconcileWithdrawals(createDb(env.DB), config, env, w!.created_at + 31 * 60_000);
    expect(await withdrawalOf(w!.id)).toMatchObject({ status: "completed" });
    expect(await balanceOf(user.token)).toMatchObject({ balance: 300, lockedBalance: 0 });
    await expectLedgerOk();
  });
});
