import { describe, expect, it } from "vitest";
import readme from "../README.md?raw";
import { loadConfig } from "../src/config";
import { call } from "./helpers";

/** A request body schema's example, directly or through its component. */
function refExample(doc: any, schema: any): boolean {
  const ref = schema?.$ref as string | undefined;
  const target = ref ? doc.components.schemas[ref.split("/").at(-1)!] : schema;
  return target?.example !== undefined;
}

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

  it("serves the API reference page: Swagger UI from this origin, no inline script (the browser test renders it)", async () => {
    const res = await call("GET", "/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.text).toContain('<script src="/docs/vendor/swagger-ui-bundle.js"></script>');
    expect(res.text).toContain('<script src="/docs/init.js"></script>');
    expect(res.text).not.toMatch(/<script>[^<]/);
  });

  it("every route has a summary, every JSON request body an example, every operation its error responses", async () => {
    const doc = (await call("GET", "/openapi.json")).json;
    const missing: string[] = [];
    for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(methods)) {
        if (!op.summary) missing.push(`${method} ${path}: summary`);
        const body = op.requestBody?.content?.["application/json"];
        if (body && body.schema?.example === undefined && body.example === undefined && !refExample(doc, body.schema)) missing.push(`${method} ${path}: example`);
        if (op.security?.length && !op.responses?.["401"]) missing.push(`${method} ${path}: 401`);
        // Anything can fail on our side; a body can be malformed or too large; a key can be reused with another request.
        if (!op.responses?.["500"]) missing.push(`${method} ${path}: 500`);
        if (op.requestBody && !(op.responses?.["400"] && op.responses?.["413"])) missing.push(`${method} ${path}: 400 and 413`);
        if (op.parameters?.some((p: any) => p.in === "header" && p.name === "idempotency-key") && !op.responses?.["409"]) missing.push(`${method} ${path}: 409`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("whole-number query parameters are described as integers with their bounds and default", async () => {
    const doc = (await call("GET", "/openapi.json")).json;
    const limit = doc.paths["/api/wallet/transactions"].get.parameters.find((p: any) => p.name === "limit");
    expect(limit.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 100, default: 20 });
    const units = doc.paths["/api/billing/quote"]?.get?.parameters.find((p: any) => p.name === "units");
    if (units) expect(units.schema).toMatchObject({ type: "integer", minimum: 0 });
  });
});

describe("README", () => {
  it("its configuration table names every variable of src/config.ts", () => {
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Architecture"));
    // The bot signals' per-column variables are named by their pattern.
    const column = /^BOT_(ACTIVE_MINUTES|ACTIVE_HOURS|RATE_DISPERSION|CADENCE)_(MU|SIGMA|SIGMA_MIN)$/;
    expect(section).toContain("BOT_<ACTIVE_MINUTES\\|ACTIVE_HOURS\\|RATE_DISPERSION\\|CADENCE>_MU/_SIGMA/_SIGMA_MIN");
    const missing = Object.keys(loadConfig({})).filter((key) => !column.test(key) && !section.includes(`\`${key}\``));
    expect(missing).toEqual([]);
  });
});

