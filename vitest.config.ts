import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

export const TEST_JWT_SECRET = "test-only-jwt-secret-0123456789abcdef";

export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            JWT_SECRET: TEST_JWT_SECRET,
            MIDTRANS_SERVER_KEY: "test-midtrans-server-key",
            MIDTRANS_IRIS_API_KEY: "test-iris-api-key",
            MIDTRANS_IRIS_MERCHANT_KEY: "test-iris-merchant-key",
            XENDIT_SECRET_KEY: "test-xendit-secret",
            XENDIT_CALLBACK_TOKEN: "test-xendit-callback-token",
            KYC_ENCRYPTION_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
          },
        },
      }),
    ],
    test: {
      include: ["test/**/*.test.ts"],
      setupFiles: ["./test/setup.ts"],
      testTimeout: 60_000,
      hookTimeout: 60_000,
    },
  };
});
