import { createRoute, z } from "@hono/zod-openapi";
import { and, asc, eq, gt } from "drizzle-orm";
import { batchRuns, dailyActivity } from "../db/schema";
import { batchProgress, startBatch } from "../jobs/daily-batch";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
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
      return c.json(await startBatch({ db: c.var.db, config: c.var.config, env: c.env }, date, now), 202);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/bot-classifications",
      tags: ["admin", "batch"],
      summary: "R̄, z, level and action per user for a day, with the μ and σ used",
      security: bearerSecurity,
      request: {
        query: z.object({
          date: z.string().refine(isRealDay, "a date YYYY-MM-DD"),
          level: z.enum(["A", "B", "C"]).optional(),
          limit: z.coerce.number().int().min(1).max(100).default(20),
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
                  params: z.object({ mode: z.string().nullable(), mu: z.number().nullable(), sigma: z.number().nullable(), source: z.string().nullable() }),
                  items: z.array(z.object({ userId: z.string(), rbar: z.number(), z: z.number().nullable(), level: z.string().nullable(), action: z.string().nullable(), activeMinutes: z.number(), weightedUnits: z.number() })),
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
          params: { mode: run.mode, mu: run.mu, sigma: run.sigma, source: run.paramsSource },
          items: page.map((r) => ({ userId: r.userId, rbar: r.rbar, z: r.z, level: r.level, action: r.action, activeMinutes: r.activeMinutes, weightedUnits: r.weightedUnits })),
          nextCursor: rows.length > q.limit ? page.at(-1)!.userId : null,
        },
        200,
      );
    },
  );
