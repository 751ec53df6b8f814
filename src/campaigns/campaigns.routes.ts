import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { accounts, campaigns, type CampaignRow } from "../db/schema";
import type { AuthUser } from "../env";
import { campaignAccountId } from "../ledger/accounts";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
import { newId } from "../lib/ids";
import { MAX_AMOUNT } from "../lib/money";
import { bearerSecurity, createRouter } from "../lib/router";
import { deviceFingerprint } from "../lib/request";
import { openOrder } from "../payments/orders.service";
import { orderResponses } from "../payments/payments.routes";

const CampaignSchema = z
  .object({
    id: z.string(),
    ownerId: z.string(),
    name: z.string(),
    rateFeeIdr: z.number().int().nullable().openapi({ description: "Rupiah per valid weighted unit; null uses RATE_FEE_IDR." }),
    status: z.enum(["active", "paused", "ended"]),
    budgetIdr: z.number().int(),
    createdAt: z.string(),
  })
  .openapi("Campaign");

const CreateCampaignSchema = z
  .object({ name: z.string().trim().min(1).max(120), rateFeeIdr: z.number().int().min(1).max(1_000_000).optional().openapi({ description: "Rupiah per valid weighted unit, at most RATE_FEE_MAX_IDR (100)." }) })
  .strict()
  .openapi("CreateCampaignRequest", { example: { name: "Ramadan promo", rateFeeIdr: 5 } });

const IdParam = z.object({ id: z.string().regex(/^[0-9A-Z]{26}$/, "a campaign id") });

const view = (row: CampaignRow, budgetIdr: number) => ({ ...row, budgetIdr, createdAt: new Date(row.createdAt).toISOString() });

/** The caller's own campaign (admins see any); someone else's is reported as not found. */
async function ownedCampaign(db: Db, id: string, user: AuthUser) {
  const [rows, budget] = await db.batch([
    db.select().from(campaigns).where(eq(campaigns.id, id)),
    db.select({ balance: accounts.balance }).from(accounts).where(eq(accounts.id, campaignAccountId(id))),
  ]);
  const row = rows[0];
  if (!row || (row.ownerId !== user.id && user.role !== "admin")) throw new ApiError("not_found", "No such campaign.");
  return { row, budgetIdr: budget[0]?.balance ?? 0 };
}

export const campaignsRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["campaigns"],
      summary: "Create an advertiser campaign with an empty IDR budget",
      description: "At most CAMPAIGNS_PER_HOUR (20) campaigns per hour per user (429).",
      security: bearerSecurity,
      request: { body: { required: true, content: { "application/json": { schema: CreateCampaignSchema } } } },
      responses: { 201: { description: "The campaign", content: { "application/json": { schema: CampaignSchema } } }, ...errorResponses },
    }),
    async (c) => {
      const body = c.req.valid("json");
      const { db, config } = c.var;
      if (body.rateFeeIdr !== undefined && body.rateFeeIdr > config.RATE_FEE_MAX_IDR) {
        throw new ApiError("validation_failed", `rateFeeIdr may not exceed Rp ${config.RATE_FEE_MAX_IDR}.`, { errors: [{ path: "json.rateFeeIdr", message: `at most ${config.RATE_FEE_MAX_IDR}` }] });
      }
      const now = Date.now();
      const id = newId(now);
      const [[row]] = await db.batch([
        db.insert(campaigns).values({ id, ownerId: c.var.user.id, name: body.name, rateFeeIdr: body.rateFeeIdr ?? null, createdAt: now }).returning(),
        db.insert(accounts).values({ id: campaignAccountId(id), kind: "campaign_budget", ownerId: c.var.user.id, asset: "IDR", createdAt: now }),
      ]);
      return c.json(view(row!, 0), 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      tags: ["campaigns"],
      summary: "A campaign and its remaining budget (owner or admin)",
      security: bearerSecurity,
      request: { params: IdParam },
      responses: { 200: { description: "The campaign", content: { "application/json": { schema: CampaignSchema } } }, ...errorResponses, 404: problemFor("No such campaign of yours.") },
    }),
    async (c) => {
      const { row, budgetIdr } = await ownedCampaign(c.var.db, c.req.valid("param").id, c.var.user);
      return c.json(view(row, budgetIdr), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/deposit",
      tags: ["campaigns"],
      summary: "Fund a campaign's budget through Midtrans Snap (IDR, minimum CAMPAIGN_MIN_DEPOSIT_IDR)",
      security: bearerSecurity,
      request: {
        params: IdParam,
        body: { required: true, content: { "application/json": { schema: z.object({ amount: z.number().int().min(1).max(MAX_AMOUNT) }).strict().openapi({ example: { amount: 50000 } }) } } },
      },
      responses: orderResponses,
    }),
    async (c) => {
      const { amount } = c.req.valid("json");
      const { config, db, user } = c.var;
      if (amount < config.CAMPAIGN_MIN_DEPOSIT_IDR) {
        throw new ApiError("validation_failed", `The minimum deposit is Rp ${config.CAMPAIGN_MIN_DEPOSIT_IDR}.`, { errors: [{ path: "json.amount", message: `at least ${config.CAMPAIGN_MIN_DEPOSIT_IDR}` }] });
      }
      return c.json(await openOrder(db, config, c.env, { userId: user.id, gateway: "midtrans", subject: { kind: "campaign_deposit", campaignId: c.req.valid("param").id, amountIdr: amount }, deviceFingerprint: deviceFingerprint(c) }), 201);
    },
  );
