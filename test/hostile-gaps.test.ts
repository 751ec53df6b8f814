import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adjust, adminToken, balanceOf, call, expectProblem, newUser, uniqueId } from "./helpers";

describe("hostile input: gaps in the sweep", () => {
  // SPEC §3: "Validation errors add `errors: [{ path, message }]`."
  it("every validation_failed answer lists its errors (SPEC §3)", async () => {
    const admin = await adminToken();
    const user = await newUser("valerr");
    const cases: [string, string, string, Record<string, string>?][] = [
      [admin, "GET", "/api/admin/metrics?from=2026-02-01&to=2026-01-01"],
      [admin, "GET", "/api/admin/metrics?from=2024-01-01&to=2026-01-01"],
      [user.token, "GET", "/api/creator/earnings?from=2026-02-01&to=2026-01-01"],
      [user.token, "GET", "/api/creator/earnings?from=2024-01-01&to=2026-01-01"],
      [user.token, "GET", "/api/realtime?since=abc", { upgrade: "websocket" }],
    ];
    for (const [token, method, path, headers] of cases) {
      const res = await call(method, path, { token, headers });
      expectProblem(res, 400, "validation_failed");
      expect(res.json.errors, `${method} ${path}: ${res.text}`).toEqual(expect.arrayContaining([expect.objectContaining({ path: expect.any(String), message: expect.any(String) })]));
    }
  });

  it("a metrics rollup of a business day that has not happened yet is refused, and is never reported as computed", async () => {
    const admin = await adminToken();
    const res = await call("POST", "/api/admin/metrics/2999-12-31/rollup", { token: admin });
    expect(res.status, res.text).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const report = await call("GET", "/api/admin/metrics?from=2999-12-31&to=2999-12-31", { token: admin });
    expect(report.status).toBe(200);
    expect(report.json.days[0]).toMatchObject({ date: "2999-12-31", computed: false });
  });

  it("a JSON body with a duplicate key is refused and moves nothing", async () => {
    const alice = await newUser("dupkey");
    const bob = await newUser("dupkey-peer");
    await adjust(alice.id, 100);
    const res = await call("POST", "/api/wallet/transfer", {
      token: alice.token,
      rawBody: `{"toUserId":"${bob.id}","amount":1,"amount":90}`,
      headers: { "content-type": "application/json" },
    });
    expectProblem(res, 400, "validation_failed");
    expect((await balanceOf(alice.token)).balance).toBe(100);
  });

  it("?limit= takes whole decimal numbers only (no hex, exponent or padded forms)", async () => {
    const user = await newUser("limit");
    for (const limit of ["0x10", "1e1", "%205", "5.0", "0b11"]) {
      const res = await call("GET", `/api/wallet/transactions?limit=${limit}`, { token: user.token });
      expectProblem(res, 400, "validation_failed");
    }
  });

  it("whitelisting a user id that does not exist is 404, like every other admin action about a user", async () => {
    const admin = await adminToken();
    const ghost = uniqueId("ghost");
    const res = await call("POST", "/api/fraud/whitelist", { token: admin, body: { userId: ghost, reason: "pre-approved QA" } });
    expectProblem(res, 404, "not_found");
    const row = await env.DB.prepare("select count(*) as n from fraud_whitelist where user_id = ?").bind(ghost).first<{ n: number }>();
    expect(row!.n).toBe(0);
  });
});
