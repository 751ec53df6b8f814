import { createApp } from "./app";
import { loadConfig } from "./config";
import { createDb } from "./db/client";
import { purgeRejectedPhotos } from "./kyc/kyc.service";
import { purgeIdempotencyKeys } from "./lib/idempotency";
import { reconcileWithdrawals } from "./payouts/withdrawals.service";

const app = createApp();

/** Every 15 minutes: housekeeping that keeps nothing held or stored longer than it should be. */
async function housekeeping(env: Env, scheduledTime: number) {
  const config = loadConfig(env);
  const db = createDb(env.DB);
  await purgeIdempotencyKeys(db, scheduledTime - config.IDEMPOTENCY_TTL_HOURS * 3_600_000);
  await reconcileWithdrawals(db, config, env, scheduledTime);
  await purgeRejectedPhotos(db, env.KYC_BUCKET, config, scheduledTime);
}

export default {
  fetch: app.fetch,
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(housekeeping(env, controller.scheduledTime));
  },
} satisfies ExportedHandler<Env>;
