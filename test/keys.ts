/** Secrets used only by the test suite; the simulator in global-setup signs with the same ones. */
export const TEST_KEYS = {
  JWT_SECRET: "test-only-jwt-secret-0123456789abcdef",
  MIDTRANS_SERVER_KEY: "test-midtrans-server-key",
  MIDTRANS_IRIS_API_KEY: "test-iris-api-key",
  MIDTRANS_IRIS_MERCHANT_KEY: "test-iris-merchant-key",
  XENDIT_SECRET_KEY: "test-xendit-secret",
  XENDIT_CALLBACK_TOKEN: "test-xendit-callback-token",
  KYC_ENCRYPTION_KEY: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
};
