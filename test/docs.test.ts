import { describe, expect, it } from "vitest";
import { call } from "./helpers";

describe("API description", () => {
  it("serves an OpenAPI 3.1 document generated from the route schemas", async () => {
    const res = await call("GET", "/openapi.json");
    expect(res.status).toBe(200);
    expect(res.json.openapi).toBe("3.1.0");
    for (const path of ["/api/wallet/balance", "/api/wallet/transactions", "/api/wallet/transfer", "/api/admin/adjustments", "/api/admin/ledger/check"]) {
      expect(Object.keys(res.json.paths)).toContain(path);
    }
    expect(res.json.components.schemas.Problem).toBeDefined();
    expect(res.json.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
  });

  it("serves a readable docs page", async () => {
    const res = await call("GET", "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.text).toContain("/api/wallet/transfer");
  });
});
