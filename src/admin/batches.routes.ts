import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt } from "drizzle-orm";
import { auditLog, batchRuns, dailyActivity } from "../db/schema";
import { batchProgress, startBatch } from "../jobs/daily-batch";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
import { pageLimit } from "../lib/query";
import { bearerSecurity, createRouter } from "../lib/router";
import { addDays, dayStart, isRealDay } from "../lib/time";
import { ACTIVITY_WINDOW_MS } from "../activity/activity.routes";

const DateParam = z.object({ date: z.string().refine(isRealDay, "a date YYYY-MM-DD") });
const ProgressSchema = z.record(z.string(), z.unknown()).openapi("BatchProgress");

export const adminBatchesRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/batches/{date}",
      tags: ["admin", "batch"],
      summary: "Progress and totals of a day's classification and payout batch",
      security: bearerSecurity,
      request: { params: DateParam },
      responses: { 200: { description: "Progress", content: { "application/json": { schema: ProgressSchema } } }, ...errorResponses, 404: problemFor("No run for that day.") },
    }),
    async (c) => c.json(await batchProgress(c.var.db, c.req.valid("param").date), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/batches/{date}/run",
      tags: ["admin", "batch"],
      summary: "Start or resume the batch of a finished business day (safe to repeat: nobody is paid twice)",
      description:
        "Allowed once the day has ended and its activity can no longer arrive (events may be reported up to 10 minutes late, plus 1 minute of clock skew). " +
        "Resuming keeps μ and σ once they were computed and touches only what is undecided; a run marked `failed` by the dead-letter queue resumes here.",
      security: bearerSecurity,
      request: { params: DateParam },
      responses: { 202: { description: "Started", content: { "application/json": { schema: ProgressSchema } } }, ...errorResponses, 409: problemFor("The day (and its late-activity window) has not ended yet (`conflict`).") },
    }),
    async (c) => {
      const { date } = c.req.valid("param");
      const now = Date.now();
      if (now < dayStart(addDays(date, 1), c.var.config.BUSINESS_TZ_OFFSET) + ACTIVITY_WINDOW_MS) throw new ApiError("conflict", "Only a business day that has ended, and whose late activity can no longer arrive, can be run.");
      // Who started it is on record: the run pays and can ban (its own entries name the batch, not the admin).
      await c.var.db.insert(auditLog).values({ actorId: c.var.user.id, action: "batch.run", subjectType: "batch_day", subjectId: date, details: {}, createdAt: now });
      return c.json(await startBatch({ db: c.var.db, config: c.var.config, env: c.env }, date, now), 202);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bot-classifications",
      tags: ["admin", "batch"],
      summary: "R̄, volume and regularity with their z, the level, what decided it and the action, per user for a day, with the μ and σ used",
      description:
        "SPEC §8 levels from R̄ (A: z ≥ BOT_K_A, B: z ≥ BOT_K_B), plus two signals judged with the same robust statistics of the day's population: volume (active minutes and active hours; its z is the smaller) and regularity (rate dispersion and cadence; its z is the larger). A signal past its B threshold (BOT_VOLUME_K_B, BOT_REGULARITY_K_B) raises the level to at least B; A needs R̄ or both signals past their A thresholds.",
      security: bearerSecurity,
      request: {
        query: z.object({
          date: z.string().refine(isRealDay, "a date YYYY-MM-DD"),
          level: z.enum(["A", "B", "C"]).optional(),
          limit: pageLimit(20),
          cursor: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional().openapi({ description: "The last userId of the previous page." }),
        }),
      },
      responses: {
        200: {
          description: "Classifications",
          content: {
            "application/json": {
              schema: z
                .object({
                  date: z.string(),
                  params: z.object({
                    mode: z.string().nullable(),
                    mu: z.number().nullable(),
                    sigma: z.number().nullable(),
                    source: z.string().nullable(),
                    signals: z
                      .record(z.string(), z.object({ mu: z.number(), sigma: z.number(), source: z.string() }))
                      .nullable()
                      .openapi({ description: "μ, σ and source per volume/regularity column (activeMinutes, activeHours, rateDispersion, cadence)." }),
                  }),
                  items: z.array(
                    z.object({
                      userId: z.string(),
                      rbar: z.number(),
                      rbarSe: z.number().openapi({ description: "Standard error of R̄: the larger of the per-minute one (sample SD of the rates over √active minutes) and the cluster-robust one over the day's sessions (runs of active minutes with at most 5 idle between them). z = (R̄ − μ) / √(σ² + min(rbarSe, cap)²) with cap = BOT_RBAR_SE_MAX_SIGMA·σ·√min(1, BOT_RBAR_SE_FULL_MINUTES / activeMinutes) (2 and 30 by default; BOT_RBAR_SE_MAX_SIGMA=0: SPEC §8 to the letter): a steady pace is judged exactly as SPEC §8 says, a short bursty day is not banned for its sampling noise, no amount of self-made noise lifts the thresholds by more than √5, and on a long day by much less." }),
                      z: z.number().nullable().openapi({ description: "z of R̄." }),
                      level: z.string().nullable(),
                      action: z.string().nullable(),
                      decidedBy: z.enum(["rbar", "volume", "regularity", "volume+regularity"]).nullable().openapi({ description: "What set the level (null for C)." }),
                      activeMinutes: z.number(),
                      weightedUnits: z.number(),
                      activeHours: z.number(),
                      rateDispersion: z.number().nullable().openapi({ description: "ln(variance/v₀ + 0.05) of the per-minute rates (v₀: what a person acting at random at that pace shows) plus a short-day allowance; low = steady. Null under BOT_REGULARITY_MIN_MINUTES." }),
                      cadence: z.number().nullable().openapi({ description: "Share of gaps between active minutes equal to the most common gap when that gap is ≥ 2 minutes; else 0." }),
                      signalZ: z
                        .record(z.string(), z.number().nullable())
                        .nullable()
                        .openapi({ description: "z of volume (the smaller of its columns' z), regularity (the larger of its columns' z) and of each column." }),
                    }),
                  ),
                  nextCursor: z.string().nullable(),
                })
                .openapi("BotClassifications"),
            },
          },
        },
        ...errorResponses,
        404: problemFor("No run for that day."),
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const db = c.var.db;
      const run = await db.query.batchRuns.findFirst({ where: eq(batchRuns.day, q.date) });
      if (!run) throw new ApiError("not_found", "No batch has run for that day.");
      // Ordered by user id (not newest first): a day's classifications are one set, listed stably.
      const rows = await db
        .select()
        .from(dailyActivity)
        .where(and(eq(dailyActivity.day, q.date), q.level ? eq(dailyActivity.level, q.level) : undefined, q.cursor ? gt(dailyActivity.userId, q.cursor) : undefined))
        .orderBy(asc(dailyActivity.userId))
        .limit(q.limit + 1);
      const page = rows.slice(0, q.limit);
      return c.json(
        {
          date: q.date,
          params: { mode: run.mode, mu: run.mu, sigma: run.sigma, source: run.paramsSource, signals: run.signalParams },
          items: page.map((r) => ({
            userId: r.userId,
            rbar: r.rbar,
            rbarSe: r.rbarSe,
            z: r.z,
            level: r.level,
            action: r.action,
            decidedBy: r.decidedBy,
            activeMinutes: r.activeMinutes,
            weightedUnits: r.weightedUnits,
            activeHours: r.activeHours,
            rateDispersion: r.rateDispersion,
            cadence: r.cadence,
            signalZ: r.signalZ,
          })),
          nextCursor: rows.length > q.limit ? page.at(-1)!.userId : null,
        },
        200,
      );
    },
  );
