import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses } from "../lib/errors";
import { bearerSecurity, createRouter } from "../lib/router";
import { DAY_PATTERN, isRealDay } from "../lib/time";
import { creatorEarnings, EARNINGS_MAX_DAYS } from "./earnings";

const Day = z
  .string()
  .regex(DAY_PATTERN, "a business day, YYYY-MM-DD")
  .refine(isRealDay, "not a calendar day");

const BySource = { content: z.number().int(), gifts: z.number().int(), marketplace: z.number().int(), payouts: z.number().int() };

/** Mounted at /api/creator. */
export const creatorRouter = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/earnings",
    tags: ["content"],
    summary: "The caller's earnings by source and by business day, from the ledger",
    description:
      `Sums the ledger's postings on the caller's wallet and debt account for movements that earned them: content unlocks (net of refunds' claw-backs), live gifts, marketplace sales (coins) and activity payouts (rupiah; \`assets\` names each source's unit). ` +
      `\`from\`/\`to\` are business days (inclusive, default the last 30 days, at most ${EARNINGS_MAX_DAYS}); \`days\` lists only days with earnings.`,
    security: bearerSecurity,
    request: { query: z.object({ from: Day.optional(), to: Day.optional() }) },
    responses: {
      200: {
        description: "Earnings",
        content: {
          "application/json": {
            schema: z
              .object({
                from: z.string(),
                to: z.string(),
                assets: z.object({ content: z.literal("COIN"), gifts: z.literal("COIN"), marketplace: z.literal("COIN"), payouts: z.literal("IDR") }),
                totals: z.object(BySource),
                days: z.array(z.object({ day: z.string(), ...BySource })),
              })
              .openapi("CreatorEarnings"),
          },
        },
      },
      ...errorResponses,
    },
  }),
  async (c) => c.json(await creatorEarnings(c.var.db, c.var.user.id, c.req.valid("query"), Date.now(), c.var.config.BUSINESS_TZ_OFFSET), 200),
);
