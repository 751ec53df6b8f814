import { createRoute, z } from "@hono/zod-openapi";
import { USER_ID_PATTERN } from "../lib/auth";
import { errorResponses, problemFor } from "../lib/errors";
import { pageLimit } from "../lib/query";
import { bearerSecurity, createRouter } from "../lib/router";
import { addToWhitelist, fraudStats, listAlerts, listWhitelist, reviewAlert, revokeWhitelist } from "./fraud.service";
import { decodeCursor, pageSchema, paginationQuery } from "../lib/pagination";

const WhitelistEntrySchema = z
  .object({ id: z.string(), userId: z.string().nullable(), deviceFingerprint: z.string().nullable(), reason: z.string(), expiresAt: z.string().nullable(), createdBy: z.string(), createdAt: z.string() })
  .openapi("WhitelistEntry");

const Severity = z.enum(["low", "medium", "high", "critical"]);
const AlertStatus = z.enum(["open", "investigating", "resolved", "false_positive"]);
const AlertAction = z.enum(["warned", "frozen", "banned", "cleared"]);

const AlertSchema = z
  .object({
    id: z.string(),
    userId: z.string().nullable(),
    alertType: z.string(),
    severity: Severity,
    details: z.record(z.string(), z.unknown()),
    deviceFingerprint: z.string().nullable(),
    status: AlertStatus,
    actionTaken: AlertAction.nullable(),
    reviewedBy: z.string().nullable(),
    reviewedAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("FraudAlert");

export const AlertIdPattern = /^[A-Za-z0-9_-]{1,160}$/;
/** An admin's review of an alert, as the API and the console both take it. */
export const AlertReview = z.object({ alertId: z.string().regex(AlertIdPattern), status: AlertStatus, action: AlertAction }).strict();

/** Mounted at /api/fraud; every route is admin only. */
export const fraudRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/alerts",
      tags: ["fraud"],
      summary: "Fraud alerts, newest first, with filters",
      security: bearerSecurity,
      request: {
        query: z.object({
          userId: z.string().regex(USER_ID_PATTERN).optional(),
          alertType: z.string().regex(/^[a-z_A-Z]{1,60}$/).optional(),
          severity: Severity.optional(),
          status: AlertStatus.optional(),
          limit: pageLimit(20),
          cursor: z.string().regex(AlertIdPattern).optional().openapi({ description: "The id of the last alert of the previous page." }),
        }),
      },
      responses: { 200: { description: "A page of alerts", content: { "application/json": { schema: z.object({ items: z.array(AlertSchema), nextCursor: z.string().nullable() }) } } }, ...errorResponses },
    }),
    async (c) => {
      const { cursor, ...q } = c.req.valid("query");
      // Alert ids are not all ULIDs (rule alerts are; batch and device alerts are deterministic), so the cursor is the raw id.
      const page = await listAlerts(c.var.db, { ...q, before: cursor });
      return c.json({ items: page.items, nextCursor: page.nextCursor === null ? null : page.items.at(-1)!.id }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/review",
      tags: ["fraud"],
      summary: "Review an alert and apply an action to its user (warned, frozen, banned, cleared); audited",
      description:
        "`frozen` blocks money out until a later review `cleared`s it; `cleared` undoes what this alert imposed: it lifts a verification hold, and a freeze only when this alert imposed it and no other freeze stands (another alert's, or an admin's by hand, since the user was last unfrozen by hand); `banned` is permanent. Another review of the alert committed since it was read: 409.",
      security: bearerSecurity,
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: AlertReview.openapi({ example: { alertId: "01JALERT000000000000000000", status: "resolved", action: "frozen" } }),
            },
          },
        },
      },
      responses: { 200: { description: "The reviewed alert", content: { "application/json": { schema: AlertSchema } } }, ...errorResponses, 404: problemFor("No such alert."), 409: problemFor("A ban is permanent (`conflict`), the alert has no user to act on, or another review of it was recorded since it was read.") },
    }),
    async (c) => c.json(await reviewAlert(c.var.db, c.var.user.id, c.req.valid("json")), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/stats",
      tags: ["fraud"],
      summary: "Alert counts by type, severity and status; false-positive rate; freezes; bans per week",
      description:
        "`freezes` and `bansPerWeek` count decisions: an alert reviewed `frozen` or `banned` about a user who already was (through another alert, or a rule) is no second freeze or ban. Weeks are `%Y-W%W` (Monday first) in business time (BUSINESS_TZ_OFFSET).",
      security: bearerSecurity,
      responses: { 200: { description: "Statistics", content: { "application/json": { schema: z.record(z.string(), z.unknown()).openapi("FraudStats") } } }, ...errorResponses },
    }),
    async (c) => c.json(await fraudStats(c.var.db, c.var.config.BUSINESS_TZ_OFFSET), 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/whitelist",
      tags: ["fraud"],
      summary: "Whitelist a user or a device: it skips the fraud rules (never the spending limits or signature checks)",
      description: "A whitelisted user skips every rule; a whitelisted device only the rule about devices (`suspicious_device`), since a fingerprint is a header any client can send.",
      security: bearerSecurity,
      request: {
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z
                .object({
                  userId: z.string().regex(USER_ID_PATTERN).optional(),
                  deviceFingerprint: z.string().regex(/^[\x21-\x7e]{1,128}$/).optional(),
                  reason: z.string().trim().min(3).max(500),
                  expiresAt: z.iso.datetime({ offset: true }).optional(),
                })
                .strict()
                .refine((b) => (b.userId === undefined) !== (b.deviceFingerprint === undefined), "exactly one of userId or deviceFingerprint")
                .openapi({ example: { userId: "tester-1", reason: "QA account", expiresAt: "2026-12-31T23:59:59+07:00" } }),
            },
          },
        },
      },
      responses: {
        201: {
          description: "Whitelisted",
          content: { "application/json": { schema: WhitelistEntrySchema } },
        },
        ...errorResponses,
        404: problemFor("`not_found`: no user with that `userId` (an entry is about an account the service knows)."),
      },
    }),
    async (c) => c.json(await addToWhitelist(c.var.db, c.var.user.id, c.req.valid("json")), 201),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/whitelist",
      tags: ["fraud"],
      summary: "Whitelist entries, newest first (`active=true`: in force now; `false`: ended)",
      security: bearerSecurity,
      request: { query: z.object({ ...paginationQuery, active: z.enum(["true", "false"]).optional() }) },
      responses: { 200: { description: "A page of entries", content: { "application/json": { schema: pageSchema(WhitelistEntrySchema) } } }, ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await listWhitelist(c.var.db, { limit: q.limit, before: decodeCursor(q.cursor), active: q.active === undefined ? undefined : q.active === "true" }, Date.now()), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/whitelist/{id}",
      tags: ["fraud"],
      summary: "End a whitelist entry now: its subject is judged by the rules again (the entry stays listed, ended, for the record; audited)",
      security: bearerSecurity,
      request: { params: z.object({ id: z.string().regex(/^[0-9A-Z]{26}$/) }) },
      responses: {
        200: { description: "Ended", content: { "application/json": { schema: WhitelistEntrySchema } } },
        ...errorResponses,
        404: problemFor("No such entry."),
        409: problemFor("The entry has already ended."),
      },
    }),
    async (c) => c.json(await revokeWhitelist(c.var.db, c.var.user.id, c.req.valid("param").id, Date.now()), 200),
  );
