import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, problemFor } from "../lib/errors";
import { moveOnce } from "../lib/idempotency";
import { decodeCursor, pageSchema, paginationQuery } from "../lib/pagination";
import { bearerSecurity, createRouter, idempotencyHeader } from "../lib/router";
import { BalanceSchema, TransactionSchema, TransferBodySchema, TxTypeSchema } from "./wallet.schemas";
import { getBalance, listTransactions, transfer } from "./wallet.service";
import { buyPackage, orderResponses } from "../payments/payments.routes";
import type { TransactionView } from "./wallet.view";

export const walletRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/balance",
      tags: ["wallet"],
      summary: "The caller's coin and rupiah balances",
      security: bearerSecurity,
      responses: { 200: { description: "Balances", content: { "application/json": { schema: BalanceSchema } } }, ...errorResponses },
    }),
    async (c) => c.json(await getBalance(c.var.db, c.var.user.id, Date.now()), 200),
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/transactions",
      tags: ["wallet"],
      summary: "The caller's transaction history, newest first",
      security: bearerSecurity,
      request: { query: z.object({ ...paginationQuery, type: TxTypeSchema.optional() }) },
      responses: { 200: { description: "A page of transactions", content: { "application/json": { schema: pageSchema(TransactionSchema) } } }, ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await listTransactions(c.var.db, c.var.user.id, { limit: q.limit, before: decodeCursor(q.cursor), type: q.type }), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/transfer",
      tags: ["wallet"],
      summary: "Send coins to another user",
      description:
        "Moves whole coins from the caller to `toUserId` in ONE D1 batch, which also decides at commit time that the caller may move money " +
        "(not banned, frozen or awaiting verification) and that the recipient exists and is not banned. Refused with `self_transfer`, " +
        "`recipient_not_found` (404), `recipient_unavailable` (banned recipient), `insufficient_funds`, `debt_outstanding` (422), `account_frozen`, `limit_exceeded` (403).",
      security: bearerSecurity,
      request: {
        headers: idempotencyHeader,
        body: { required: true, content: { "application/json": { schema: TransferBodySchema } } },
      },
      responses: {
        201: { description: "The completed transfer as the sender sees it", content: { "application/json": { schema: TransactionSchema } } },
        ...errorResponses,
        404: problemFor("The recipient does not exist."),
        409: problemFor("The Idempotency-Key was used with a different body."),
        422: problemFor("`insufficient_funds`, `self_transfer`, `recipient_unavailable` (a recipient who cannot receive), or `debt_outstanding` (the caller has recorded debt)."),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const outcome = await moveOnce<TransactionView>(c, body, (ctx) => transfer(c.var.db, c.var.user.id, body, { config: c.var.config, ...ctx }));
      return c.json(outcome.body, outcome.status);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/deposit",
      tags: ["wallet", "payments"],
      summary: "Buy a coin package through the chosen gateway (same as /api/payment/{gateway}/create)",
      security: bearerSecurity,
      request: {
        body: {
          required: true,
          content: { "application/json": { schema: z.object({ packageId: z.string().min(1).max(64), gateway: z.enum(["midtrans", "xendit"]) }).strict().openapi({ example: { packageId: "pkg_500", gateway: "midtrans" } }) } },
        },
      },
      responses: orderResponses,
    }),
    async (c) => {
      const body = c.req.valid("json");
      return c.json(await buyPackage(c, body.packageId, body.gateway), 201);
    },
  );
