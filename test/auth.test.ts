import { sign } from "hono/jwt";
import { describe, expect, it } from "vitest";
import { call, expectProblem, JWT_SECRET, tokenFor, uniqueId } from "./helpers";

describe("authentication and roles", () => {
  it("401 for a missing, malformed, wrongly signed or expired token", async () => {
    const id = uniqueId();
    expectProblem(await call("GET", "/api/wallet/balance"), 401, "unauthorized");
    expectProblem(await call("GET", "/api/wallet/balance", { headers: { authorization: "Bearer not-a-jwt" } }), 401, "unauthorized");
    expectProblem(await call("GET", "/api/wallet/balance", { headers: { authorization: "Basic dXNlcjpwYXNz" } }), 401, "unauthorized");
    expectProblem(await call("GET", "/api/wallet/balance", { token: await tokenFor(id, "user", {}, "some-other-secret") }), 401, "unauthorized");
    const expired = await sign({ sub: id, role: "user", exp: Math.floor(Date.now() / 1000) - 10 }, JWT_SECRET, "HS256");
    expectProblem(await call("GET", "/api/wallet/balance", { token: expired }), 401, "unauthorized");
    const noExp = await sign({ sub: id, role: "user" }, JWT_SECRET, "HS256");
    expectProblem(await call("GET", "/api/wallet/balance", { token: noExp }), 401, "unauthorized");
    const badSub = await sign({ sub: "x' OR 1=1", role: "user", exp: Math.floor(Date.now() / 1000) + 60 }, JWT_SECRET, "HS256");
    expectProblem(await call("GET", "/api/wallet/balance", { token: badSub }), 401, "unauthorized");
    const badRole = await sign({ sub: id, role: "root", exp: Math.floor(Date.now() / 1000) + 60 }, JWT_SECRET, "HS256");
    expectProblem(await call("GET", "/api/wallet/balance", { token: badRole }), 401, "unauthorized");
    const hs512 = await sign({ sub: id, role: "admin", exp: Math.floor(Date.now() / 1000) + 60 }, JWT_SECRET, "HS512");
    expectProblem(await call("GET", "/api/admin/ledger/check", { token: hs512 }), 401, "unauthorized");
  });

  it("the scheme is case-insensitive (RFC 7235: `bearer` and `BEARER` are `Bearer`)", async () => {
    const token = await tokenFor(uniqueId());
    for (const scheme of ["bearer", "BEARER", "Bearer"]) expect((await call("GET", "/api/wallet/balance", { headers: { authorization: `${scheme} ${token}` } })).status).toBe(200);
  });

  it("403 for a user on an admin route, and for an admin token signed with the wrong secret: 401", async () => {
    const user = await tokenFor(uniqueId());
    expectProblem(await call("GET", "/api/admin/ledger/check", { token: user }), 403, "forbidden");
    expectProblem(await call("POST", "/api/admin/adjustments", { token: user, body: { userId: "x", asset: "COIN", amount: 5, reason: "gift to myself" } }), 403, "forbidden");
    const forged = await tokenFor("mallory", "admin", {}, "guessed-secret");
    expectProblem(await call("GET", "/api/admin/ledger/check", { token: forged }), 401, "unauthorized");
  });

  it("creates the user on first sight with empty wallets", async () => {
    const res = await call("GET", "/api/wallet/balance", { token: await tokenFor(uniqueId()) });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ balance: 0, lockedBalance: 0, availableBalance: 0, idrBalance: 0, idrLockedBalance: 0, debt: 0, idrDebt: 0, totalDeposited: 0, totalWithdrawn: 0, kycStatus: "none" });
  });

  it("answers unknown routes with problem+json 404", async () => {
    expectProblem(await call("GET", "/api/nothing-here"), 404, "not_found");
  });
});
