import { createRoute, z } from "@hono/zod-openapi";
import { ApiError, errorResponses, problemFor } from "../lib/errors";
import { bearerSecurity, createRouter } from "../lib/router";
import { decodeCursor, encodeCursor, pageSchema, paginationQuery } from "../lib/pagination";
import { USER_ID_PATTERN } from "../lib/auth";
import { wholeQuery } from "../lib/query";
import { auditLog, type UsageInvoiceRow } from "../db/schema";
import { issueMonthlyInvoices, lastBatchFinished, listInvoices, usageFor, usagePlan } from "./billing.service";
import { businessMonth, MONTH_PATTERN, previousMonth, usageCost } from "./usage-pricing";

const MAX_UNITS = 1_000_000_000_000;

const Month = z.string().regex(MONTH_PATTERN, "a month YYYY-MM (01–12)");

const UsageCostSchema = z
  .object({
    units: z.number().int(),
    creditLimitUnits: z.number().int(),
    includedUnits: z.number().int().openapi({ description: "Units up to the credit limit, priced at unitPriceIdr less the tier discount." }),
    overageUnits: z.number().int().openapi({ description: "Units above the credit limit, priced at overagePriceIdr, never discounted." }),
    tier: z.object({ minUnits: z.number().int(), discountBps: z.number().int() }).nullable().openapi({ description: "The highest volume tier the total reaches." }),
    unitPriceIdr: z.number().int(),
    overagePriceIdr: z.number().int(),
    includedCostIdr: z.number().int().openapi({ description: "includedUnits × unitPriceIdr, before the discount." }),
    discountIdr: z.number().int(),
    overageCostIdr: z.number().int(),
    totalIdr: z.number().int().openapi({ description: "includedCostIdr − discountIdr + overageCostIdr." }),
  })
  .openapi("UsageCost");

const UsageSchema = z
  .object({
    month: z.string(),
    units: z.number().int(),
    byCampaign: z.array(z.object({ campaignId: z.string(), units: z.number().int() })),
    cost: UsageCostSchema,
  })
  .openapi("Usage");

const InvoiceRunSchema = z
  .object({
    month: z.string(),
    invoices: z.number().int(),
    paid: z.number().int(),
    unpaid: z.number().int(),
    failed: z.number().int().openapi({ description: "Advertisers whose invoice could not be issued this run (each alerted as `invoice_failed`); run the month again." }),
    totalIdr: z.number().int().openapi({ description: "Sum of the month's invoices, paid and unpaid." }),
    chargedIdr: z.number().int().openapi({ description: "What this run debited; 0 when nothing was left to charge." }),
  })
  .openapi("UsageInvoiceRun");

const InvoiceSchema = z
  .object({
    id: z.string(),
    advertiserId: z.string(),
    month: z.string(),
    units: z.number().int(),
    amountIdr: z.number().int(),
    breakdown: z.record(z.string(), z.unknown()).openapi({ description: "The UsageCost and units per campaign the amount was computed from." }),
    status: z.enum(["paid", "unpaid"]),
    transactionId: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("UsageInvoice");

const invoiceView = (row: UsageInvoiceRow) => ({ ...row, createdAt: new Date(row.createdAt).toISOString(), updatedAt: new Date(row.updatedAt).toISOString() });

const billedUnits =
  "Billed units are the weighted units of the advertiser's payouts with status `paid` on business days (WIB) up to the month's end that no other invoice billed. " +
  "A held payout counts once an admin releases it (it becomes `paid`); released after its month was invoiced, it is billed by the next month's invoice. " +
  "Held, rejected, insufficient_budget and campaign_suspended payouts are not billed, since no creator was paid for them.";

export const billingRouter = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/quote",
      tags: ["billing"],
      summary: "Price a number of usage units (SPEC §8.1)",
      description: "Units up to the credit limit cost USAGE_UNIT_PRICE_IDR less the discount of the highest USAGE_TIERS tier the total reaches; units above it cost USAGE_OVERAGE_PRICE_IDR.",
      security: bearerSecurity,
      request: {
        query: z.object({
          units: wholeQuery(0, MAX_UNITS, "Units to price, 0–10^12."),
          creditLimit: wholeQuery(0, MAX_UNITS, "Credit limit in units; default USAGE_CREDIT_LIMIT_UNITS.").optional(),
        }),
      },
      responses: { 200: { description: "The price breakdown", content: { "application/json": { schema: UsageCostSchema } } }, ...errorResponses },
    }),
    async (c) => {
      const { units, creditLimit } = c.req.valid("query");
      try {
        return c.json(usageCost(units, usagePlan(c.var.config, creditLimit)), 200);
      } catch (error) {
        if (error instanceof RangeError) throw new ApiError("validation_failed", "The price of these units is too large to compute exactly.", { errors: [{ path: "query.units", message: "too large to price exactly" }] });
        throw error;
      }
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/usage",
      tags: ["billing"],
      summary: "The caller's usage and its price for a month, as an advertiser",
      description:
        billedUnits +
        " Usage shows what the month's invoice bills: once it is paid, its own figures; before, the month's own days and, once the previous month has had its invoice run, every earlier payout no invoice billed yet (released after its month's run).",
      security: bearerSecurity,
      request: { query: z.object({ month: Month.optional().openapi({ description: "YYYY-MM; default the current WIB month." }) }) },
      responses: { 200: { description: "Usage and price", content: { "application/json": { schema: UsageSchema } } }, ...errorResponses },
    }),
    async (c) => {
      const { config, db, user } = c.var;
      const month = c.req.valid("query").month ?? businessMonth(Date.now(), config.BUSINESS_TZ_OFFSET);
      return c.json(await usageFor(db, user.id, month, config), 200);
    },
  );

export const adminBillingRouter = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/invoices/{month}/run",
      tags: ["admin", "billing"],
      summary: "Issue (or retry) the usage invoices of an ended month",
      description:
        `${billedUnits} Each advertiser's invoice is debited from their IDR wallet at most once; one the wallet cannot cover stays unpaid ` +
        "and is tried again, re-priced, by the next run for that month. Refused (409) until the daily batch of the month's last day has finished. " +
        "The monthly cron runs this at 12:00 WIB on the 1st, and skips a month whose last day has no finished batch.",
      security: bearerSecurity,
      request: { params: z.object({ month: Month }) },
      responses: {
        200: { description: "What the run found and charged", content: { "application/json": { schema: InvoiceRunSchema } } },
        ...errorResponses,
        409: problemFor("The month has not ended yet in WIB, or the batch of its last day has not finished (`conflict`)."),
      },
    }),
    async (c) => {
      const { month } = c.req.valid("param");
      const now = Date.now();
      if (month < businessMonth(now, c.var.config.BUSINESS_TZ_OFFSET) && !(await lastBatchFinished(c.var.db, month))) {
        throw new ApiError("conflict", `The daily batch of ${month}'s last day has not finished; invoices would miss its payouts.`);
      }
      // Who started it is on record: the run charges advertisers (its own entries name billing, not the admin).
      await c.var.db.insert(auditLog).values({ actorId: c.var.user.id, action: "billing.invoice_run", subjectType: "billing_month", subjectId: month, details: {}, createdAt: now });
      return c.json(await issueMonthlyInvoices(c.var.db, c.var.config, month, now), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/invoices",
      tags: ["admin", "billing"],
      summary: "A month's usage invoices, by advertiser",
      security: bearerSecurity,
      request: {
        query: z.object({
          month: Month.optional().openapi({ description: "YYYY-MM; default the last ended WIB month." }),
          status: z.enum(["paid", "unpaid"]).optional(),
          ...paginationQuery,
        }),
      },
      responses: { 200: { description: "Invoices in ascending advertiser id (not newest first: one per advertiser and month)", content: { "application/json": { schema: pageSchema(InvoiceSchema).extend({ month: z.string() }) } } }, ...errorResponses },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const month = q.month ?? previousMonth(Date.now(), c.var.config.BUSINESS_TZ_OFFSET);
      const rows = await listInvoices(c.var.db, month, { status: q.status, after: decodeCursor(q.cursor, USER_ID_PATTERN), limit: q.limit });
      const page = rows.slice(0, q.limit);
      return c.json({ month, items: page.map(invoiceView), nextCursor: rows.length > q.limit ? encodeCursor(page.at(-1)!.advertiserId) : null }, 200);
    },
  );
