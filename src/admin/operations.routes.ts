import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, problemFor } from "../lib/errors";
import { bearerSecurity, createRouter } from "../lib/router";
import { DAY_PATTERN, isRealDay } from "../lib/time";
import { METRICS_MAX_DAYS, metricsReport, rollupDay } from "../metrics/metrics.service";
import { setUserStatus, userOverview } from "../users/users.service";
import { UserIdSchema } from "../wallet/wallet.schemas";

/** A freeze or unfreeze, as the API and the console both take it. */
export const UserStatusChange = z.object({ status: z.enum(["active", "frozen"]), reason: z.string().trim().min(3).max(500) }).strict();

const Day = z.string().regex(DAY_PATTERN, "a business day, YYYY-MM-DD").refine(isRealDay, "not a calendar day");
const Percentiles = z.object({ p50: z.number().nullable(), p95: z.number().nullable() });

const DayFigures = z.object({
  date: z.string(),
  computed: z.boolean().openapi({ description: "false: no rollup was written for the day yet (figures are 0)." }),
  activeUsers: z.number().int(),
  dailyActivePayers: z.number().int(),
  revenueIdr: z.number().int(),
  arpuIdr: z.number(),
  arppuIdr: z.number(),
  newUsers: z.number().int(),
  newPayers: z.number().int(),
  paymentSuccessRate: z.number(),
  gatewayLatencyMs: Percentiles,
  flaggedTransactions: z.number().int(),
  chargebacks: z.number().int(),
  freezes: z.number().int(),
  bans: z.number().int(),
});

const METRICS_DEFINITIONS =
  "Business days (WIB). An **active user** had a ledger movement (as initiator or counterparty), an activity event or an earning that day; " +
  "a **payer** had a settled deposit (coin package or campaign deposit) that day; **revenue** is the rupiah of deposits settled that day (gross of " +
  "later refunds); **ARPU** = revenue / active users, **ARPPU** = revenue / payers (rupiah, 2 decimals); **new users** were first seen that day, " +
  "**new payers** had their first settled deposit that day; **conversion** = users first seen in the period whose first deposit settled in the period / " +
  "users first seen in the period; **payment success** = orders paid / orders that reached a final state that day (paid, or failed and never paid); **gateway latency** " +
  "covers every Snap, status, Iris and Xendit call (nearest-rank percentiles of a histogram with 1 ms buckets up to 100 ms, 10 ms up to 1 s, 100 ms up to " +
  "10 s, then 1 s); **flagged transactions** are fraud alerts about what users did (not the platform's own operational alerts: jobs, gateways, billing, the ledger check); **chargebacks** are orders the gateway first reported charged back (in part or whole, before or after the credit) that day, each order once; " +
  "**freezes**/**bans** are alerts whose action was a freeze/ban, by the day it was decided (a later review that keeps the action does not count it again). Rates are fractions 0–1: chargeback rate = chargebacks / " +
  "paid orders, freeze rate = freezes / active users; bans per week = bans × 7 / days. **Creator earnings** are per earner over the period (content, " +
  "gifts, marketplace at 1 coin = COIN_VALUE_IDR rupiah, activity payouts in rupiah, net of claw-backs), nearest-rank percentiles over earners with a " +
  "positive total. Totals count distinct users over the period. Past days come from the rollup the daily cron writes (rerunnable: " +
  "POST /api/admin/metrics/{date}/rollup); today's rollup is computed when the range includes it, and a past day's rollup written while it was still today (before its cron ran) is completed first, so `computed: true` always means the whole day. No request scans the ledger: each rollup reads one day's rows by range.";

/** Mounted at /api/admin. */
export const adminOperationsRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/metrics",
      tags: ["admin"],
      summary: "Operating metrics by business day and over the period (SPEC §14)",
      description: `${METRICS_DEFINITIONS} A range is at most ${METRICS_MAX_DAYS} days (else 400).`,
      security: bearerSecurity,
      request: { query: z.object({ from: Day, to: Day }) },
      responses: {
        200: {
          description: "Metrics",
          content: {
            "application/json": {
              schema: z
                .object({
                  from: z.string(),
                  to: z.string(),
                  days: z.array(DayFigures),
                  totals: z.object({
                    activeUsers: z.number().int(),
                    payers: z.number().int(),
                    revenueIdr: z.number().int(),
                    arpuIdr: z.number(),
                    arppuIdr: z.number(),
                    conversionRate: z.number(),
                    paymentSuccessRate: z.number(),
                    gatewayLatencyMs: Percentiles,
                    flaggedTransactions: z.number().int(),
                    chargebackRate: z.number(),
                    freezeRate: z.number(),
                    bansPerWeek: z.number(),
                    creatorEarnings: z.object({ creators: z.number().int(), p50: z.number().nullable(), p90: z.number().nullable(), p99: z.number().nullable(), max: z.number().nullable() }),
                  }),
                })
                .openapi("Metrics"),
            },
          },
        },
        ...errorResponses,
      },
    }),
    async (c) => c.json(await metricsReport(c.var.db, c.env, c.var.config, c.req.valid("query"), Date.now()), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/metrics/{date}/rollup",
      tags: ["admin"],
      summary: `(Re)compute one business day's metrics rollup (the daily cron does it for the day that ended)`,
      security: bearerSecurity,
      request: { params: z.object({ date: Day }) },
      responses: {
        200: { description: "Written", content: { "application/json": { schema: z.object({ date: z.string(), computed: z.literal(true) }) } } },
        ...errorResponses,
        409: problemFor("The day has not begun yet in business time (`conflict`); today's rollup is live (recomputed on every read)."),
      },
    }),
    async (c) => {
      const { date } = c.req.valid("param");
      await rollupDay(c.var.db, c.env, c.var.config, date, Date.now());
      return c.json({ date, computed: true as const }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/users/{id}",
      tags: ["admin"],
      summary: "A user: status, KYC, balances and debt, devices, recent transactions",
      security: bearerSecurity,
      request: { params: z.object({ id: UserIdSchema }) },
      responses: { 200: { description: "The user", content: { "application/json": { schema: z.record(z.string(), z.unknown()).openapi("AdminUser") } } }, ...errorResponses, 404: problemFor("No such user.") },
    }),
    async (c) => c.json(await userOverview(c.var.db, c.req.valid("param").id), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/users/{id}/status",
      tags: ["admin"],
      summary: "Freeze a user (no money out) or unfreeze them (audited); a ban is permanent (409)",
      security: bearerSecurity,
      request: {
        params: z.object({ id: UserIdSchema }),
        body: { required: true, content: { "application/json": { schema: UserStatusChange.openapi({ example: { status: "frozen", reason: "chargeback investigation" } }) } } },
      },
      responses: { 200: { description: "The user", content: { "application/json": { schema: z.object({ id: z.string(), status: z.string() }) } } }, ...errorResponses, 404: problemFor("No such user."), 409: problemFor("Banned (`conflict`).") },
    }),
    async (c) => {
      const { status, reason } = c.req.valid("json");
      const row = await setUserStatus(c.var.db, c.var.user.id, c.req.valid("param").id, status, reason, Date.now());
      return c.json({ id: row.id, status: row.status }, 200);
    },
  );
