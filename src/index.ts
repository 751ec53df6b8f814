import { createApp } from "./app";
import { loadConfig } from "./config";
import { createDb } from "./db/client";
import { purgeIdempotencyKeys } from "./lib/idempotency";

const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env, ctx) {
    const config = loadConfig(env);
    const db = createDb(env.DB);
    ctx.waitUntil(purgeIdempotencyKeys(db, controller.scheduledTime - config.IDEMPOTENCY_TTL_HOURS * 3_600_000));
  },
} satisfies ExportedHandler<Env>;
