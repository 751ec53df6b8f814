import { readFileSync } from "node:fs";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
import { TEST_KEYS } from "./test/keys.ts";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest(({ inject }) => {
        const sim = inject("simUrl");
        return {
          wrangler: { configPath: "./wrangler.toml" },
          miniflare: {
            bindings: {
              ...TEST_KEYS,
              TEST_MIGRATIONS: migrations,
              // Read by the config test, which checks production refuses every value in it.
              DEV_VARS_EXAMPLE: readFileSync("./.dev.vars.example", "utf8"),
              SIM_URL: sim,
              MIDTRANS_SNAP_BASE_URL: `${sim}/snap/v1`,
              MIDTRANS_API_BASE_URL: sim,
              MIDTRANS_IRIS_BASE_URL: `${sim}/iris/api/v1`,
              XENDIT_API_BASE_URL: sim,
              GATEWAY_TIMEOUT_MS: "1500",
              // The race tests fire hundreds of requests per user on purpose; the rate-limit and
              // velocity tests set the spec's values per request (call(..., { vars })).
              RATE_LIMIT_PER_MINUTE: "1000000",
              // Small fan-out steps, so the queue tests chain several (150 users, 250 buyers).
              QUEUE_FANOUT_PAGE: "120",
              RAPID_TRANSACTIONS_PER_MINUTE: "1000000",
            },
          },
        };
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      globalSetup: ["./test/global-setup.ts"],
      setupFiles: ["./test/setup.ts"],
      testTimeout: 60_000,
      hookTimeout: 60_000,
    },
  };
});
