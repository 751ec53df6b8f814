import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config";

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
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: "25", BOT_PARAMS_MODE: "fixed", MIDTRANS_VERIFY_STATUS: "false" })).toMatchObject({
      RATE_LIMIT_PER_MINUTE: 25,
      BOT_PARAMS_MODE: "fixed",
      MIDTRANS_VERIFY_STATUS: false,
    });
  });

  it("refuses a bad value naming the var", () => {
    expect(() => loadConfig({ RATE_LIMIT_PER_MINUTE: "ten" })).toThrow(/RATE_LIMIT_PER_MINUTE/);
    expect(() => loadConfig({ WITHDRAW_PPH_BPS: "20000" })).toThrow(ConfigError);
    expect(() => loadConfig({ BUSINESS_TZ_OFFSET: "WIB" })).toThrow(/BUSINESS_TZ_OFFSET/);
    expect(() => loadConfig({ CONTENT_CREATOR_BPS: "9000" })).toThrow(/CONTENT_\*_BPS/);
    expect(() => loadConfig({ MIDTRANS_SNAP_BASE_URL: "not a url" })).toThrow(/MIDTRANS_SNAP_BASE_URL/);
  });
});
