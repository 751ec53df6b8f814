import { createRoute, z } from "@hono/zod-openapi";
import { withdrawMethods } from "../db/schema";
import { errorResponses, problemFor } from "../lib/errors";
import { idempotencyScope, idempotent } from "../lib/idempotency";
import { MAX_AMOUNT } from "../lib/money";
import { deviceFingerprint } from "../lib/request";
import { bearerSecurity, createRouter } from "../lib/router";
import { requestWithdrawal, type WithdrawResponse } from "./withdrawals.service";

const WithdrawMethodSchema = z
  .object({
    bankName: z.string().regex(/^[a-z][a-z0-9_]{1,29}$/, "an Iris bank code such as bca, bni, mandiri, bri"),
    accountNumber: z.string().regex(/^\d{5,20}$/, "5–20 digits"),
    accountName: z.string().trim().min(2).max(100).regex(/^[\p{L} .,'-]+$/u, "letters, spaces and . , ' -"),
  })
  .strict()
  .openapi("WithdrawMethod");

const WithdrawResponseSchema = z
  .object({
    withdrawalId: z.string(),
    grossIdr: z.number().int(),
    platformFeeIdr: z.number().int(),
    taxIdr: z.number().int(),
    netIdr: z.number().int(),
    status: z.literal("pending"),
  })
  .openapi("WithdrawalAccepted");

/** Mounted under /api/wallet. */
export const withdrawRouter = createRouter()
  .openapi(
    createRoute({
      method: "put",
      path: "/withdraw-method",
      tags: ["wallet", "payouts"],
      summary: "Set the bank account withdrawals are paid to",
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: WithdrawMethodSchema } } } },
      responses: { 200: { description: "Saved", content: { "application/json": { schema: WithdrawMethodSchema } } }, ...errorResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const now = Date.now();
      await c.var.db
        .insert(withdrawMethods)
        .values({ userId: c.var.user.id, ...body, updatedAt: now })
        .onConflictDoUpdate({ target: withdrawMethods.userId, set: { ...body, updatedAt: now } });
      return c.json(body, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/withdraw",
      tags: ["wallet", "payouts"],
      summary: "Withdraw coins or rupiah to the bank (KYC verified)",
      description:
        "Coins convert at COIN_VALUE_IDR. From the gross G: platform fee floor(G × WITHDRAW_PLATFORM_FEE_BPS / 10000), PPh tax " +
        "floor(G × WITHDRAW_PPH_BPS / 10000), net = G − fee − tax (1,000 coins → 100,000 / 10,000 / 2,000 / 88,000). Minimum G: " +
        "WITHDRAW_MIN_GROSS_IDR. The amount is held at once and an Iris payout of the net is created; the Iris notification posts or voids the hold.",
      security: bearerSecurity,
      request: {
        body: { required: true, content: { "application/json": { schema: z.object({ asset: z.enum(["COIN", "IDR"]), amount: z.number().int().min(1).max(MAX_AMOUNT) }).strict() } } },
      },
      responses: {
        202: { description: "Held and sent to Iris", content: { "application/json": { schema: WithdrawResponseSchema } } },
        ...errorResponses,
        409: problemFor("Idempotency-Key reused with another body."),
        422: problemFor("`insufficient_funds`, `below_minimum` or `withdraw_method_required`."),
        502: problemFor("Iris failed; the hold was released (`gateway_error`)."),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const scope = await idempotencyScope(c, body);
      const outcome = await idempotent<{ status: 202; body: WithdrawResponse }>(c, scope, (record) =>
        requestWithdrawal(c.var.db, c.var.config, c.env, c.var.user, body, { deviceFingerprint: deviceFingerprint(c), scope, record }),
      );
      return c.json(outcome.body, outcome.status);
    },
  );
