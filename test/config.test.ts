import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { ConfigError, loadConfig } from "../src/config";
import { thresholdsOf } from "../src/activity/signals";
import { DEV_EXAMPLE_VALUES, secretProblems } from "../src/secrets";
import { call, expectProblem } from "./helpers";

describe("configuration", () => {
  it("has the spec's defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      COIN_VALUE_IDR: 100,
      BUSINESS_TZ_OFFSET: "+07:00",
      WITHDRAW_PLATFORM_FEE_BPS: 1000,
      WITHDRAW_PPH_BPS: 200,
      CREATOR_PAYOUT_FEE_BPS: 1000,
      BOT_K_A: 3,
      BOT_K_B: 2,
      BOT_MU: 4,
      BOT_SIGMA: 2,
      BOT_MIN_POPULATION: 30,
      BOT_PARAMS_MODE: "robust",
      RATE_FEE_IDR: 5,
      RATE_LIMIT_PER_MINUTE: 10,
      DEVICE_MAX_ACCOUNTS: 3,
      USAGE_UNIT_PRICE_IDR: 10,
      USAGE_OVERAGE_PRICE_IDR: 15,
      USAGE_CREDIT_LIMIT_UNITS: 1_000_000,
      MIDTRANS_SNAP_BASE_URL: "https://app.sandbox.midtrans.com/snap/v1",
    });
  });

  it("takes overrides from vars as strings", () => {
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: "25", BOT_PARAMS_MODE: "fixed", MIDTRANS_VERIFY_STATUS: "false", BOT_RBAR_SE_MAX_SIGMA: "0" })).toMatchObject({
      RATE_LIMIT_PER_MINUTE: 25,
      BOT_PARAMS_MODE: "fixed",
      MIDTRANS_VERIFY_STATUS: false,
      BOT_RBAR_SE_MAX_SIGMA: 0,
    });
    // 0 reaches the classification: R̄ is judged as SPEC §8 says, to the letter.
    expect(thresholdsOf(loadConfig({ BOT_RBAR_SE_MAX_SIGMA: "0" })).rbar).toEqual({ a: 3, b: 2, seMaxSigma: 0, seFullMinutes: 30 });
    expect(loadConfig({ BOT_SIGMA_MIN: "0.5", BOT_RBAR_SE_FULL_MINUTES: "60" })).toMatchObject({ BOT_SIGMA_MIN: 0.5, BOT_RBAR_SE_FULL_MINUTES: 60 });
    expect(thresholdsOf(loadConfig({})).rbar).toEqual({ a: 3, b: 2, seMaxSigma: 2, seFullMinutes: 30 });
  });

  it("refuses a bad value naming the var", () => {
    expect(() => loadConfig({ RATE_LIMIT_PER_MINUTE: "ten" })).toThrow(/RATE_LIMIT_PER_MINUTE/);
    expect(() => loadConfig({ BOT_RBAR_SE_MAX_SIGMA: "-1" })).toThrow(/BOT_RBAR_SE_MAX_SIGMA/);
    expect(() => loadConfig({ WITHDRAW_PPH_BPS: "20000" })).toThrow(ConfigError);
    // A tier threshold past what a whole number holds exactly would fail every usage request later.
    expect(() => loadConfig({ USAGE_TIERS: "100000000000000000000:1000" })).toThrow(/USAGE_TIERS/);
    expect(() => loadConfig({ BUSINESS_TZ_OFFSET: "WIB" })).toThrow(/BUSINESS_TZ_OFFSET/);
    expect(() => loadConfig({ CONTENT_CREATOR_BPS: "9000" })).toThrow(/CONTENT_\*_BPS/);
    expect(() => loadConfig({ MIDTRANS_SNAP_BASE_URL: "not a url" })).toThrow(/MIDTRANS_SNAP_BASE_URL/);
  });
});

describe("hardening 5: secrets and production safety", () => {
  const production = {
    ENVIRONMENT: "production",
    JWT_SECRET: "p".repeat(48),
    MIDTRANS_SERVER_KEY: "Mid-server-real",
    MIDTRANS_IRIS_API_KEY: "IRIS-real-api",
    MIDTRANS_IRIS_MERCHANT_KEY: "IRIS-real-merchant",
    XENDIT_SECRET_KEY: "xnd_production_real",
    XENDIT_CALLBACK_TOKEN: "real-callback-token",
    KYC_ENCRYPTION_KEY: btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => 255 - i))),
    MIDTRANS_IS_PRODUCTION: "true",
    MIDTRANS_SNAP_BASE_URL: "https://app.midtrans.com/snap/v1",
    MIDTRANS_API_BASE_URL: "https://api.midtrans.com",
    MIDTRANS_IRIS_BASE_URL: "https://app.midtrans.com/iris/api/v1",
    XENDIT_API_BASE_URL: "https://api.xendit.co",
  };

  it("a sound production configuration runs", async () => {
    expect(secretProblems(production, loadConfig(production))).toEqual([]);
    expect((await call("GET", "/api/payment/packages", { vars: production })).status).toBe(200);
  });

  it.each([
    ["a missing secret", { JWT_SECRET: "" }, "JWT_SECRET"],
    ["a short JWT secret", { JWT_SECRET: "short-secret" }, "JWT_SECRET"],
    ["an empty Midtrans key", { MIDTRANS_SERVER_KEY: "" }, "MIDTRANS_SERVER_KEY"],
    ["an empty Xendit token", { XENDIT_CALLBACK_TOKEN: "" }, "XENDIT_CALLBACK_TOKEN"],
    ["a KYC key that is not 32 bytes", { KYC_ENCRYPTION_KEY: btoa("sixteen byte key") }, "KYC_ENCRYPTION_KEY"],
    ["a previous KYC key that is not 32 bytes", { KYC_ENCRYPTION_KEY_PREVIOUS: "not base64!" }, "KYC_ENCRYPTION_KEY_PREVIOUS"],
    ["a sandbox Snap URL in production", { MIDTRANS_SNAP_BASE_URL: "https://app.sandbox.midtrans.com/snap/v1" }, "MIDTRANS_SNAP_BASE_URL"],
    ["a local simulator in production", { MIDTRANS_IRIS_BASE_URL: "http://127.0.0.1:8790/iris/api/v1" }, "MIDTRANS_IRIS_BASE_URL"],
    ["MIDTRANS_IS_PRODUCTION=false in production", { MIDTRANS_IS_PRODUCTION: "false" }, "MIDTRANS_IS_PRODUCTION"],
    ["MIDTRANS_VERIFY_STATUS=false in production", { MIDTRANS_VERIFY_STATUS: "false" }, "MIDTRANS_VERIFY_STATUS"],
    ["a Xendit development key in production", { XENDIT_SECRET_KEY: "xnd_development_abc" }, "XENDIT_SECRET_KEY"],
    ["an allow-list entry that is not an address range", { MIDTRANS_ALLOWED_IPS: "103.208.23.0/24, 103.208.23.0/33" }, "MIDTRANS_ALLOWED_IPS"],
  ])("%s: every request is 500 misconfigured and the log names the var", async (_name, override, varName) => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      const res = await call("GET", "/api/payment/packages", { vars: { ...production, ...override } });
      expectProblem(res, 500, "misconfigured");
      expect(res.text).not.toContain(varName);
      expect(errors.mock.calls.flat().join(" ")).toContain(varName);
    } finally {
      errors.mockRestore();
    }
  });

  it("production refuses every value of .dev.vars.example, and the list the code holds is that file's", async () => {
    const example = Object.fromEntries(
      env.DEV_VARS_EXAMPLE.split("\n")
        .map((line) => /^([A-Z0-9_]+)=(.*)$/.exec(line.trim()))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => [m[1]!, m[2]!]),
    );
    expect(Object.keys(example).length).toBeGreaterThanOrEqual(7);
    expect([...DEV_EXAMPLE_VALUES].sort()).toEqual(Object.values(example).sort());
    for (const [name, value] of Object.entries(example)) {
      const problems = secretProblems({ ...production, [name]: value }, loadConfig({ ...production, [name]: value }));
      expect(problems.join("; "), name).toContain(name);
    }
    // Outside production the example file is exactly what local development runs on.
    expect(secretProblems({ ...example, ENVIRONMENT: "development" }, loadConfig({}))).toEqual([]);
  });
});
