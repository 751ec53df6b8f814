import { createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import { kycSubmissions } from "../db/schema";
import { USER_ID_PATTERN } from "../lib/auth";
import { errorResponses, problemFor } from "../lib/errors";
import { decodeCursor, pageSchema, paginationQuery, toPage } from "../lib/pagination";
import { bearerSecurity, createRouter } from "../lib/router";
import { kycStatusView, latestSubmission, queueItemView, reviewKyc, submitKyc, viewPhoto } from "./kyc.service";

/** An admin's KYC decision, as the API and the console both take it. */
export const KycReview = z
  .object({
    decision: z.enum(["verified", "rejected"]),
    reason: z.string().trim().min(1).max(500).optional(),
    submissionId: z.string().regex(/^[0-9A-Z]{26}$/).optional().openapi({ description: "The submission the decision is about (its `id` in the queue): refused with 409 when another one is pending now." }),
  })
  .strict();

const fileField = z.custom<File>((v) => v instanceof File, "a JPEG or PNG file").openapi({ type: "string", format: "binary" });

const KycStatusSchema = z
  .object({
    status: z.enum(["none", "pending", "verified", "rejected"]),
    submittedAt: z.string().nullable(),
    reviewedAt: z.string().nullable(),
    reason: z.string().optional(),
  })
  .openapi("KycStatus");

const QueueItemSchema = z
  .object({
    id: z.string(),
    userId: z.string(),
    idType: z.enum(["ktp", "passport", "sim"]),
    idNumberLast4: z.string(),
    status: z.enum(["pending", "verified", "rejected"]),
    reason: z.string().nullable(),
    submittedAt: z.string(),
    reviewedAt: z.string().nullable(),
    reviewedBy: z.string().nullable(),
    photosDeleted: z.boolean(),
  })
  .openapi("KycSubmission");

const UserParam = z.object({ userId: z.string().regex(USER_ID_PATTERN) });

export const kycUserRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/submit",
      tags: ["kyc"],
      summary: "Submit KYC documents (multipart; JPEG/PNG by magic bytes, each ≤ KYC_MAX_PHOTO_BYTES)",
      description:
        "Photos are encrypted with AES-256-GCM before they are stored in R2 and are never served back to their owner. One pending submission per " +
        "user (409 otherwise, also for concurrent submits); at most KYC_SUBMITS_PER_HOUR (5) attempts per hour (429); the whole body at most KYC_MAX_BODY_BYTES (11 MB).",
      security: bearerSecurity,
      request: {
        body: {
          required: true,
          content: {
            "multipart/form-data": {
              schema: z.object({ idType: z.enum(["ktp", "passport", "sim"]), idNumber: z.string().min(1).max(32), idPhoto: fileField, selfiePhoto: fileField }),
            },
          },
        },
      },
      responses: {
        201: { description: "Submitted; status is pending", content: { "application/json": { schema: KycStatusSchema } } },
        ...errorResponses,
        409: problemFor("A submission is pending review, or the account is already verified."),
        415: problemFor("A photo is not a JPEG or PNG."),
      },
    }),
    async (c) => {
      const form = c.req.valid("form");
      return c.json(await submitKyc(c.var.db, c.env.KYC_BUCKET, c.env, c.var.config, c.var.user.id, form), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/status",
      tags: ["kyc"],
      summary: "The caller's KYC status",
      security: bearerSecurity,
      responses: { 200: { description: "Status", content: { "application/json": { schema: KycStatusSchema } } }, ...errorResponses },
    }),
    async (c) => c.json(kycStatusView(await latestSubmission(c.var.db, c.var.user.id)), 200),
  );

export const kycAdminRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      tags: ["admin", "kyc"],
      summary: "KYC submissions by status (default pending), newest first",
      security: bearerSecurity,
      request: { query: z.object({ status: z.enum(["pending", "verified", "rejected"]).default("pending"), ...paginationQuery }) },
      responses: { 200: { description: "A page of submissions", content: { "application/json": { schema: pageSchema(QueueItemSchema) } } }, ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const before = decodeCursor(q.cursor);
      const rows = await c.var.db
        .select()
        .from(kycSubmissions)
        .where(and(eq(kycSubmissions.status, q.status), before ? lt(kycSubmissions.id, before) : undefined))
        .orderBy(desc(kycSubmissions.id))
        .limit(q.limit + 1);
      return c.json(toPage(rows, q.limit, queueItemView), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{userId}/photo/{kind}",
      tags: ["admin", "kyc"],
      summary: "The decrypted ID or selfie photo (every view is audited)",
      security: bearerSecurity,
      request: { params: UserParam.extend({ kind: z.enum(["id", "selfie"]) }) },
      responses: {
        200: { description: "The image", content: { "image/jpeg": { schema: z.string().openapi({ format: "binary" }) }, "image/png": { schema: z.string().openapi({ format: "binary" }) } } },
        ...errorResponses,
        403: problemFor("Not an admin, a banned admin, or an admin's own photos (`forbidden`, `account_banned`)."),
        404: problemFor("No stored photo."),
      },
    }),
    async (c) => {
      const { userId, kind } = c.req.valid("param");
      const photo = await viewPhoto(c.var.db, c.env.KYC_BUCKET, c.env, c.var.user.id, userId, kind);
      return c.body(photo.bytes, 200, { "content-type": photo.contentType, "cache-control": "no-store" });
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{userId}/review",
      tags: ["admin", "kyc"],
      summary: "Verify or reject a pending submission (audited)",
      security: bearerSecurity,
      request: {
        params: UserParam,
        body: { required: true, content: { "application/json": { schema: KycReview.openapi({ example: { decision: "rejected", reason: "The ID photo is blurred." } }) } } },
      },
      responses: { 200: { description: "The reviewed submission", content: { "application/json": { schema: QueueItemSchema } } }, ...errorResponses, 404: problemFor("Nothing pending for this user."), 403: problemFor("Not an admin, a banned admin, or an admin's own submission (`forbidden`, `account_banned`)."), 409: problemFor("Reviewed concurrently, or `submissionId` is not the pending submission (`conflict`).") },
    }),
    async (c) => {
      const { userId } = c.req.valid("param");
      const { decision, reason, submissionId } = c.req.valid("json");
      return c.json(await reviewKyc(c.var.db, c.var.user.id, userId, decision, reason, submissionId), 200);
    },
  );
