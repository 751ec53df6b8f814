import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adjust, adminToken, balanceOf, call, expectProblem, newUser, sim, tokenFor, verifiedUser } from "./helpers";

/** Separation of duties: an admin never decides about their own account or money; another admin may. */
describe("an admin does not decide for themselves", () => {
  it("adjustments, alert reviews, whitelisting, freezes, held payouts, withdrawals and refunds of their own are 403", async () => {
    const me = await verifiedUser("ops-self");
    const self = await tokenFor(me.id, "admin");
    const other = await adminToken();

    expectProblem(await call("POST", "/api/admin/adjustments", { token: self, body: { userId: me.id, asset: "COIN", amount: 500, reason: "my own bonus" } }), 403, "forbidden");
    expect((await balanceOf(me.token)).balance).toBe(0);

    const now = Date.now();
    await env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, action_taken, created_at) values (?, ?, 'multiple_failed_payments', 'high', '{}', 'open', 'frozen', ?)").bind(`AL-self-${me.id}`, me.id, now).run();
    expectProblem(await call("POST", "/api/fraud/review", { token: self, body: { alertId: `AL-self-${me.id}`, status: "false_positive", action: "cleared" } }), 403, "forbidden");
    expectProblem(await call("POST", "/api/fraud/whitelist", { token: self, body: { userId: me.id, reason: "trust me" } }), 403, "forbidden");
    expectProblem(await call("POST", `/api/admin/users/${me.id}/status`, { token: self, body: { status: "frozen", reason: "testing myself" } }), 403, "forbidden");

    await env.DB.prepare("insert into payouts (id, day, user_id, campaign_id, advertiser_id, units, amount_idr, fee_idr, capped_idr, status, created_at) values (?, '2024-02-02', ?, 'cmp-self', 'adv-self', 10, 50, 5, 0, 'held', ?)").bind(`po_self_${me.id}`, me.id, now).run();
    expectProblem(await call("POST", `/api/admin/payouts/po_self_${me.id}/release`, { token: self }), 403, "forbidden");
    // Nor a held payout of their own campaign: rejecting it keeps their budget, releasing it spends it.
    const earner = await newUser("self-earner");
    await env.DB.prepare("insert into payouts (id, day, user_id, campaign_id, advertiser_id, units, amount_idr, fee_idr, capped_idr, status, created_at) values (?, '2024-02-03', ?, ?, ?, 10, 50, 5, 0, 'held', ?)").bind(`po_own_${me.id}`, earner.id, `cmp-${me.id}`, me.id, now).run();
    for (const decision of ["reject", "release"]) expectProblem(await call("POST", `/api/admin/payouts/po_own_${me.id}/${decision}`, { token: self }), 403, "forbidden");
    expect((await env.DB.prepare("select status from payouts where id = ?").bind(`po_own_${me.id}`).first<{ status: string }>())?.status).toBe("held");

    await adjust(me.id, 1000);
    await sim("POST", "/_sim/faults", { target: "iris", mode: "timeout" });
    const withdrawal = await call("POST", "/api/wallet/withdraw", { token: me.token, body: { asset: "COIN", amount: 500 } });
    await sim("POST", "/_sim/faults", { target: "iris", mode: "none" });
    expect(withdrawal.json).toMatchObject({ status: "pending", unconfirmed: true });
    expectProblem(await call("POST", `/api/admin/withdrawals/${withdrawal.json.withdrawalId}/resolve`, { token: self, body: { outcome: "failed", reason: "refund myself" } }), 403, "forbidden");

    const creator = await newUser("self-creator");
    await call("PUT", "/api/content/self-video/premium", { token: creator.token, body: { price: 100 } });
    expect((await call("POST", "/api/content/self-video/unlock", { token: me.token })).status).toBe(201);
    expectProblem(await call("POST", "/api/content/self-video/refund", { token: self, body: { reason: "buyer_request", userId: me.id } }), 403, "forbidden");

    // Another admin may do each of them.
    expect((await call("POST", "/api/fraud/review", { token: other, body: { alertId: `AL-self-${me.id}`, status: "false_positive", action: "cleared" } })).status).toBe(200);
    expect((await call("POST", `/api/admin/payouts/po_self_${me.id}/reject`, { token: other })).status).toBe(200);
    expect((await call("POST", "/api/content/self-video/refund", { token: other, body: { reason: "buyer_request", userId: me.id } })).status).toBe(200);
  });

  it("nor verify their own business, take over content, or whitelist a device their own account uses", async () => {
    const me = await newUser("ops-biz");
    const self = await tokenFor(me.id, "admin");
    const body = { businessName: "CV Saya", licenseNumber: "9120009876543", taxId: "012345678901234" };
    expect((await call("POST", "/api/marketplace/business-verification", { token: me.token, body })).status).toBe(201);
    expectProblem(await call("POST", `/api/admin/business-verifications/${me.id}/review`, { token: self, body: { decision: "verified" } }), 403, "forbidden");

    const creator = await newUser("ops-creator");
    expect((await call("PUT", "/api/content/ops-takeover/premium", { token: creator.token, body: { price: 100 } })).status).toBe(200);
    expectProblem(await call("POST", "/api/admin/content/ops-takeover/owner", { token: self, body: { creatorId: me.id } }), 403, "forbidden");

    await adjust(me.id, 10);
    const device = `dev-ops-${me.id}`;
    expect((await call("POST", "/api/wallet/transfer", { token: me.token, body: { toUserId: creator.id, amount: 1 }, headers: { "x-device-fingerprint": device } })).status).toBe(201);
    expectProblem(await call("POST", "/api/fraud/whitelist", { token: self, body: { deviceFingerprint: device, reason: "mine" } }), 403, "forbidden");
    expect((await call("POST", "/api/fraud/whitelist", { token: await adminToken(), body: { deviceFingerprint: device, reason: "checked by another admin" } })).status).toBe(201);
  });
});
