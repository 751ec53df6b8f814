import { OpenAPIHono } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import type { MiddlewareHandler } from "hono";
import { sql } from "drizzle-orm";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { adminRouter } from "./admin/admin.routes";
import { ConfigError } from "./config";
import { loadRuntimeConfig } from "./secrets";
import { createDb, meteredD1, type D1Stats } from "./db/client";
import { recordGatewayCalls } from "./metrics/gateway-latency";
import { withGatewayCalls, type GatewayCall } from "./lib/telemetry";
import type { AppEnv } from "./env";
import { banOutranksRefusal, callerGate, firstSeen, requireAuth, requireRole } from "./lib/auth";
import { renderDocs } from "./lib/docs";
import { ApiError, problemResponse } from "./lib/errors";
import { createRouter } from "./lib/router";
import { rateLimited } from "./lib/rate-limit";
import { walletRouter } from "./wallet/wallet.routes";
import { paymentRouter } from "./payments/payments.routes";
import { campaignsRouter } from "./campaigns/campaigns.routes";
import { adminPackagesRouter } from "./admin/packages.routes";
import { kycAdminRouter, kycUserRouter } from "./kyc/kyc.routes";
import { adminWithdrawalsRouter, withdrawRouter } from "./payouts/payouts.routes";
import { activityRouter } from "./activity/activity.routes";
import { adminPayoutsRouter, myPayoutsRouter } from "./payouts/daily-payouts.routes";
import { adminBatchesRouter } from "./admin/batches.routes";
import { adminBillingRouter, billingRouter } from "./billing/billing.routes";
import { valueMovingGuard } from "./fraud/guard";
import { addHeaders, securityHeaders } from "./lib/security-headers";
import { fraudRouter } from "./fraud/fraud.routes";
import { adminContentRouter, contentRouter } from "./content/content.routes";
import { creatorRouter } from "./creator/creator.routes";
import { adminGiftsRouter, liveRouter, usersRouter } from "./live/live.routes";
import { adminBusinessRouter, marketplaceRouter } from "./marketplace/marketplace.routes";
import { publishReliably, type Outbox } from "./realtime/outbox";
import { realtimeRouter } from "./realtime/realtime.routes";
import { adminOperationsRouter } from "./admin/operations.routes";
import { consoleRouter } from "./console/console.routes";

/**
 * Routes that decide about the caller inside their own D1 batch (first sight, banned/frozen guards) and
 * so skip the caller gate's extra round trip. Every other member route loads the caller and refuses a
 * banned one first. Balance and history stay open to banned users (SPEC §3).
 */
const DECIDES_IN_BATCH: [method: string, path: RegExp][] = [
  ["POST", /^\/api\/wallet\/(transfer|withdraw|deposit)$/],
  ["GET", /^\/api\/wallet\/(balance|transactions)$/],
  ["POST", /^\/api\/payment\/(midtrans|xendit)\/create$/],
  ["POST", /^\/api\/campaigns\/[^/]+\/deposit$/],
  ["POST", /^\/api\/activity$/],
  ["POST", /^\/api\/content\/[^/]+\/unlock$/],
  ["POST", /^\/api\/live\/[^/]+\/(gift|boost)$/],
  ["POST", /^\/api\/marketplace\/orders$/],
  ["POST", /^\/api\/marketplace\/orders\/[^/]+\/confirm$/],
  ["POST", /^\/api\/marketplace\/orders\/[^/]+\/refund$/],
];
/**
 * Routes whose rate limit is counted before the caller is loaded, so a request it refuses costs D1 nothing;
 * the caller gate runs once the limiter admits the request.
 */
const LIMITED_FIRST: [method: string, path: RegExp, limiter: MiddlewareHandler<AppEnv>][] = [
  // A creator deleting premium content refunds its buyers: value-moving.
  ["DELETE", /^\/api\/content\/[^/]+$/, valueMovingGuard],
  // A seller's refund moves escrowed coins; an admin's (the same route) is an admin operation, not counted.
  ["POST", /^\/api\/marketplace\/orders\/[^/]+\/refund$/, (c, next) => (c.var.user.role === "admin" ? next() : valueMovingGuard(c, next))],
  ["POST", /^\/api\/wallet\/kyc\/submit$/, rateLimited("kyc", (config) => config.KYC_SUBMITS_PER_HOUR, 3_600_000, "KYC submissions")],
  ["PUT", /^\/api\/wallet\/withdraw-method$/, rateLimited("withdraw_method", (config) => config.WITHDRAW_METHOD_CHANGES_PER_DAY, 86_400_000, "bank account changes")],
  ["POST", /^\/api\/campaigns$/, rateLimited("campaign", (config) => config.CAMPAIGNS_PER_HOUR, 3_600_000, "campaigns")],
];
const memberGate = createMiddleware<AppEnv>(async (c, next) => {
  const matches = ([method, path]: [string, RegExp, ...unknown[]]) => method === c.req.method && path.test(c.req.path);
  const limiter = LIMITED_FIRST.find(matches)?.[2];
  const rest = DECIDES_IN_BATCH.some(matches) ? async () => void (await next(), await banOutranksRefusal(c)) : async () => void (await callerGate(c, next));
  return limiter ? limiter(c, rest) : rest();
});

const openApiInfo = {
  title: "Creator platform money service",
  version: "0.1.0",
  description:
    "Wallet, ledger and payments API. Amounts are integers: COIN in whole coins, IDR in whole rupiah. " +
    "Value-moving POSTs accept an Idempotency-Key header. Errors are RFC 9457 problem+json with a stable `code`.",
};

export function createApp() {
  const app = createRouter();

  app.use("*", securityHeaders);
  app.use("*", async (c, next) => {
    try {
      c.set("config", loadRuntimeConfig(c.env));
    } catch (error) {
      if (error instanceof ConfigError) {
        console.error(error.message);
        throw new ApiError("misconfigured", "The service is misconfigured; see the Worker log.");
      }
      throw error;
    }
    const stats: D1Stats | undefined = c.var.config.D1_METRICS ? { roundTrips: 0, statements: 0, rowsRead: 0, rowsWritten: 0 } : undefined;
    const outbox: Outbox = [];
    const calls: GatewayCall[] = [];
    const db = createDb(stats ? meteredD1(c.env.DB, stats) : c.env.DB, { outbox });
    c.set("db", db);
    try {
      await withGatewayCalls(calls, next);
    } finally {
      // Realtime events of the batches that committed (a refused request may still have committed some, e.g. an alert).
      if (outbox.length > 0) c.executionCtx.waitUntil(publishReliably(c.env, c.var.config, outbox).catch((e) => console.error("realtime events lost", e instanceof Error ? e.message : String(e))));
      // Gateway timings, to their recorder (not D1) after the answer.
      if (calls.length > 0) c.executionCtx.waitUntil(recordGatewayCalls(c.env, calls).catch((e) => console.error("gateway timings lost", e instanceof Error ? e.message : String(e))));
    }
    if (stats) addHeaders(c, [["server-timing", `d1;desc="roundTrips=${stats.roundTrips} statements=${stats.statements} rowsRead=${stats.rowsRead} rowsWritten=${stats.rowsWritten}"`]]);
  });

  // Once per request: a pattern "/x/*" also matches "/x" (registering both ran the gates twice).
  const member = [requireAuth, memberGate] as const;
  app.use("/api/wallet/*", ...member);
  app.use("/api/campaigns/*", ...member);
  app.use("/api/payment/midtrans/create", ...member);
  app.use("/api/payment/xendit/create", ...member);
  app.use("/api/activity/*", ...member);
  app.use("/api/payouts", ...member);
  app.use("/api/billing/*", ...member);
  app.use("/api/content/*", ...member);
  app.use("/api/creator/*", ...member);
  app.use("/api/live/*", ...member);
  app.use("/api/users/*", ...member);
  app.use("/api/marketplace/*", ...member);
  // A ticket opens only what its bearer header would: a banned user's own socket stays theirs (SPEC §3: they may
  // read), and the lobby and the admins' room refuse them at the upgrade. So the ticket records the caller on
  // first sight but does not refuse a ban.
  app.use("/api/realtime/ticket", requireAuth, firstSeen);
  for (const path of ["/api/wallet/transfer", "/api/wallet/withdraw", "/api/wallet/deposit", "/api/payment/midtrans/create", "/api/payment/xendit/create", "/api/campaigns/:id/deposit", "/api/content/:id/unlock", "/api/live/:streamId/gift", "/api/live/:streamId/boost", "/api/marketplace/orders", "/api/marketplace/orders/:id/confirm"]) {
    app.on("POST", path, valueMovingGuard);
  }
  // An admin account that was banned is refused like any other banned account.
  app.use("/api/admin/*", requireAuth, requireRole("admin"), callerGate);
  app.use("/api/fraud/*", requireAuth, requireRole("admin"), callerGate);
  // Registered after authentication: hono's limit starts reading a body without Content-Length at
  // once, and nobody unauthenticated gets a body read. Chunked bodies are counted as they stream.
  app.use("*", async (c, next) => {
    // KYC uploads carry two photos, activity reports up to 500 events; every other body is small JSON.
    const { config } = c.var;
    const maxSize = c.req.path === "/api/wallet/kyc/submit" ? config.KYC_MAX_BODY_BYTES : c.req.path === "/api/activity" ? config.ACTIVITY_MAX_BODY_BYTES : config.MAX_BODY_BYTES;
    return bodyLimit({
      maxSize,
      onError: () => {
        throw new ApiError("payload_too_large", `The body exceeds ${maxSize} bytes.`);
      },
    })(c, next);
  });

  app.route("/api/wallet", walletRouter);
  app.route("/api/wallet", withdrawRouter);
  app.route("/api/wallet/kyc", kycUserRouter);
  app.route("/api/admin/kyc", kycAdminRouter);
  app.route("/api/payment", paymentRouter);
  app.route("/api/campaigns", campaignsRouter);
  app.route("/api/admin", adminRouter);
  app.route("/api/admin/packages", adminPackagesRouter);
  app.route("/api/activity", activityRouter);
  app.route("/api/payouts", myPayoutsRouter);
  app.route("/api/admin/payouts", adminPayoutsRouter);
  app.route("/api/admin/withdrawals", adminWithdrawalsRouter);
  app.route("/api/admin", adminBatchesRouter);
  app.route("/api/billing", billingRouter);
  app.route("/api/admin/billing", adminBillingRouter);
  app.route("/api/fraud", fraudRouter);
  app.route("/api/content", contentRouter);
  app.route("/api/admin/content", adminContentRouter);
  app.route("/api/creator", creatorRouter);
  app.route("/api/live", liveRouter);
  app.route("/api/admin/gifts", adminGiftsRouter);
  app.route("/api/users", usersRouter);
  app.route("/api/marketplace", marketplaceRouter);
  app.route("/api/admin/business-verifications", adminBusinessRouter);
  app.route("/api/realtime", realtimeRouter);
  app.route("/api/admin", adminOperationsRouter);
  app.route("/admin", consoleRouter as never);

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer", bearerFormat: "JWT" });
  app.doc31("/openapi.json", { openapi: "3.1.0", info: openApiInfo });
  app.get("/docs", (c) => c.html(renderDocs(openApiInfo.title)));
  app.get("/", (c) => c.redirect("/docs"));
  // For load balancers and as the benchmarks' floor: /healthz touches no D1, /readyz asks it once.
  app.get("/healthz", (c) => c.json({ ok: true }, 200));
  app.get("/readyz", async (c) => {
    await c.var.db.run(sql`select 1`);
    return c.json({ ok: true }, 200);
  });

  app.notFound(() => problemResponse(new ApiError("not_found", "No such route.")));
  app.onError((error) => {
    if (error instanceof ApiError) return problemResponse(error);
    if (error instanceof HTTPException) {
      const code = error.status === 413 ? "payload_too_large" : error.status === 415 ? "unsupported_media_type" : error.status === 401 ? "unauthorized" : "malformed_request";
      return problemResponse(new ApiError(code, error.status < 500 ? error.message || "The request is malformed." : "The request could not be processed."));
    }
    console.error("unhandled error", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    return problemResponse(new ApiError("internal_error", "Something went wrong on our side. Nothing was charged twice; retry with the same Idempotency-Key."));
  });
  return app;
}

export type App = OpenAPIHono<AppEnv>;
