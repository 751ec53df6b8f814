import { createRoute, z } from "@hono/zod-openapi";
import type { Config } from "../config";
import { and, eq, sql } from "drizzle-orm";
import { activityDays, batchRuns, campaigns } from "../db/schema";
import { insertWhere } from "../db/insert-where";
import { applyStatements } from "../ledger/executor";
import { checkGuards } from "../ledger/guards";
import { callerNotBanned, firstSight } from "../users/users.guards";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
import { activityGuard } from "../fraud/guard";
import { bearerSecurity, createRouter } from "../lib/router";
import { businessDay } from "../lib/time";
import type { Weights } from "./bot-rules";
import { meanRate } from "./bot-rules";

const MAX_AGE_MS = 10 * 60_000;
const CLOCK_SKEW_MS = 60_000;
/** How long after a business day ends its activity may still arrive (events up to 10 minutes old, clocks 1 minute off). */
export const ACTIVITY_WINDOW_MS = MAX_AGE_MS + CLOCK_SKEW_MS;

const EventSchema = z
  .object({
    id: z.string().min(1).max(64).regex(/^[\x21-\x7e]+$/).optional(),
    type: z.enum(["view", "like", "comment"]),
    campaignId: z.string().min(1).max(64).optional().openapi({ description: "A campaign id; one that names no active campaign is 422 `unknown_campaign`." }),
    at: z.iso.datetime({ offset: true }).optional().openapi({ description: "When it happened; within the last 10 minutes, default now." }),
    count: z.number().int().min(1).max(1000).default(1),
  })
  .strict();

const ActivityBody = z
  .object({ events: z.array(EventSchema).min(1).max(500) })
  .strict()
  .openapi("ActivityBatch", { example: { events: [{ id: "e1", type: "view", count: 3 }, { id: "e2", type: "like", campaignId: "01JCAMPAIGN0000000000000000" }] } });

export const weightsOf = (config: Config): Weights => ({ view: config.ACTIVITY_WEIGHT_VIEW, like: config.ACTIVITY_WEIGHT_LIKE, comment: config.ACTIVITY_WEIGHT_COMMENT });

export const activityRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["activity"],
      summary: "Report activity events (1–500); counted per minute, type and campaign in the caller's Durable Object",
      description:
        "An event `id` seen before for this user is ignored (counted in `duplicates`). The request is accepted whole or refused whole: a `campaignId` " +
        "that is not an existing, active campaign → 422 `unknown_campaign` (the ids are listed in `errors`); more than ACTIVITY_MAX_CAMPAIGNS_PER_DAY (50) " +
        "distinct campaigns for the user and business day → 422 `too_many_campaigns`; events for a business day whose collection by the daily batch " +
        "has started → 422 `day_closed` (they could never be paid). At most ACTIVITY_REQUESTS_PER_MINUTE (60) reports per minute (429).",
      security: bearerSecurity,
      middleware: [activityGuard] as const,
      request: { body: { required: true, content: { "application/json": { schema: ActivityBody } } } },
      responses: {
        202: { description: "Counted", content: { "application/json": { schema: z.object({ accepted: z.number().int(), duplicates: z.number().int() }) } } },
        ...errorResponses,
        422: problemFor("`unknown_campaign`, `too_many_campaigns` or `day_closed`; nothing of the request was accepted."),
      },
    }),
    async (c) => {
      const now = Date.now();
      const { config, user, db } = c.var;
      const errors: { path: string; message: string }[] = [];
      const events = c.req.valid("json").events.map((e, i) => {
        const at = e.at === undefined ? now : Date.parse(e.at);
        if (at < now - MAX_AGE_MS || at > now + CLOCK_SKEW_MS) errors.push({ path: `json.events.${i}.at`, message: "must be within the last 10 minutes" });
        return { id: e.id, type: e.type, campaignId: e.campaignId, count: e.count, at: Math.min(at, now) };
      });
      if (errors.length > 0) throw new ApiError("validation_failed", "Some events are out of the accepted time window.", { errors });
      const named = [...new Set(events.flatMap((e) => (e.campaignId ? [e.campaignId] : [])))];
      if (named.length > config.ACTIVITY_MAX_CAMPAIGNS_PER_DAY) throw new ApiError("too_many_campaigns", `At most ${config.ACTIVITY_MAX_CAMPAIGNS_PER_DAY} distinct campaigns per business day.`);
      const days = [...new Set(events.map((e) => businessDay(e.at, config.BUSINESS_TZ_OFFSET)))];
      // ONE round trip: the caller (first sight, not banned), which named campaigns are active, and the
      // user's active days for the batch — recorded only when every campaign is valid and the day's
      // batch has not started (a later request would be refused by the user's object anyway).
      // The ids go in as one JSON value (D1 binds at most 100 values a statement; a report may name up to 1,000).
      const isNamed = sql`${campaigns.id} in (select value from json_each(${JSON.stringify(named)}))`;
      const activeSql = named.length === 0 ? sql`0` : sql`(select count(*) from ${campaigns} where ${isNamed} and ${campaigns.status} = 'active')`;
      const [, , active] = await applyStatements(db, [
        firstSight(db, user.id, now),
        checkGuards(db, callerNotBanned(user.id)),
        db.select({ id: campaigns.id }).from(campaigns).where(and(isNamed, eq(campaigns.status, "active"))),
        ...days.map((day) =>
          insertWhere(db, activityDays, { day, userId: user.id, createdAt: now }, sql`where ${activeSql} = ${named.length} and not exists (select 1 from ${batchRuns} where ${batchRuns.day} = ${day})`).onConflictDoNothing(),
        ),
        // A device new for this user (activityGuard): its record and the shared-device rule.
        ...c.var.sidecar.statements,
      ]);
      c.var.sidecar.applied = true;
      const known = new Set((active as { id: string }[]).map((r) => r.id));
      const unknown = named.filter((id) => !known.has(id));
      if (unknown.length > 0) {
        throw new ApiError("unknown_campaign", `${unknown.length} campaign id(s) name no active campaign; nothing was accepted.`, {
          errors: unknown.map((id) => ({ path: `json.events.${events.findIndex((e) => e.campaignId === id)}.campaignId`, message: `no active campaign ${id}` })),
        });
      }
      const stub = c.env.USER_ACTIVITY.get(c.env.USER_ACTIVITY.idFromName(user.id));
      const result = await stub.record(events, { tzOffset: config.BUSINESS_TZ_OFFSET, retentionDays: config.ACTIVITY_RETENTION_DAYS, now, maxCampaignsPerDay: config.ACTIVITY_MAX_CAMPAIGNS_PER_DAY });
      if (result.refused !== undefined) {
        throw result.refused === "day_closed"
          ? new ApiError("day_closed", `The business day ${result.days.join(", ")} is being collected for payouts; its activity can no longer be reported.`)
          : new ApiError("too_many_campaigns", `At most ${config.ACTIVITY_MAX_CAMPAIGNS_PER_DAY} distinct campaigns per business day.`);
      }
      return c.json({ accepted: result.accepted, duplicates: result.duplicates }, 202);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/me",
      tags: ["activity"],
      summary: "Today's active minutes, the current minute's Rate_per_min and R̄ so far",
      security: bearerSecurity,
      responses: {
        200: {
          description: "Today's activity",
          content: {
            "application/json": {
              schema: z
                .object({
                  day: z.string(),
                  minutes: z.array(z.object({ minute: z.string(), rate: z.number() })),
                  currentRatePerMin: z.number(),
                  rbar: z.number(),
                  activeMinutes: z.number().int(),
                })
                .openapi("ActivityToday"),
            },
          },
        },
        ...errorResponses,
      },
    }),
    async (c) => {
      const now = Date.now();
      const day = businessDay(now, c.var.config.BUSINESS_TZ_OFFSET);
      const stub = c.env.USER_ACTIVITY.get(c.env.USER_ACTIVITY.idFromName(c.var.user.id));
      const minutes = await stub.minuteRates(day, weightsOf(c.var.config));
      const current = minutes.find((m) => m.minute === Math.floor(now / 60_000));
      return c.json(
        {
          day,
          minutes: minutes.map((m) => ({ minute: new Date(m.minute * 60_000).toISOString(), rate: m.rate })),
          currentRatePerMin: current?.rate ?? 0,
          rbar: meanRate(minutes.map((m) => m.rate)),
          activeMinutes: minutes.length,
        },
        200,
      );
    },
  );
