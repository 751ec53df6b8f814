import { env, runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { issueMonthlyInvoices, runMonthlyBilling, usageFor } from "../src/billing/billing.service";
import { businessMonth, monthRange, previousMonth, usageCost, type UsagePlan } from "../src/billing/usage-pricing";
import { loadConfig, type Config } from "../src/config";
import { createDb } from "../src/db/client";
import { ApiError } from "../src/lib/errors";
import { adjust, adminToken, call, d1FailingOnce, expectLedgerOk, expectProblem, newUser, tokenFor, uniqueId } from "./helpers";

const defaultTiers = [
  { minUnits: 100_000, discountBps: 1000 },
  { minUnits: 1_000_000, discountBps: 2000 },
];
const plan = (overrides: Partial<UsagePlan> = {}): UsagePlan => ({ creditLimitUnits: 1_000_000, unitPriceIdr: 10, overagePriceIdr: 15, tiers: defaultTiers, ...overrides });

describe("usageCost", () => {
  it("prices the spec example: 150,000 units with a 100,000 credit limit is Rp 1,650,000", () => {
    expect(usageCost(150_000, plan({ creditLimitUnits: 100_000 }))).toEqual({
      units: 150_000,
      creditLimitUnits: 100_000,
      includedUnits: 100_000,
      overageUnits: 50_000,
      tier: { minUnits: 100_000, discountBps: 1000 },
      unitPriceIdr: 10,
      overagePriceIdr: 15,
      includedCostIdr: 1_000_000,
      discountIdr: 100_000,
      overageCostIdr: 750_000,
      totalIdr: 1_650_000,
    });
  });

  it.each([
    [0, null, 0],
    [99_999, null, 999_990],
    [100_000, 1000, 900_000],
    [999_999, 1000, 8_999_991],
    [1_000_000, 2000, 8_000_000],
  ])("at %i units (limit above them) the tier is %s bps and the total Rp %i", (units, bps, total) => {
    const cost = usageCost(units, plan({ creditLimitUnits: 10_000_000 }));
    expect(cost.tier?.discountBps ?? null).toBe(bps);
    expect(cost.overageUnits).toBe(0);
    expect(cost.totalIdr).toBe(total);
  });

  it("never discounts overage, while the tier is chosen by the whole month's units", () => {
    const cost = usageCost(2_000_000, plan());
    expect(cost).toMatchObject({ includedUnits: 1_000_000, overageUnits: 1_000_000, tier: { discountBps: 2000 }, discountIdr: 2_000_000, overageCostIdr: 15_000_000, totalIdr: 23_000_000 });
    // With no credit at all, everything is overage and nothing is discounted.
    expect(usageCost(200_000, plan({ creditLimitUnits: 0 }))).toMatchObject({ includedUnits: 0, discountIdr: 0, totalIdr: 3_000_000 });
  });

  it("takes the highest reached tier of a custom, unsorted list", () => {
    const tiers = [
      { minUnits: 50, discountBps: 5000 },
      { minUnits: 0, discountBps: 0 },
      { minUnits: 10, discountBps: 2500 },
    ];
    expect(usageCost(30, plan({ tiers })).tier).toEqual({ minUnits: 10, discountBps: 2500 });
    expect(usageCost(50, plan({ tiers })).totalIdr).toBe(250);
    expect(usageCost(5, plan({ tiers })).tier).toEqual({ minUnits: 0, discountBps: 0 });
    expect(usageCost(5, plan({ tiers: [] })).tier).toBeNull();
    expect(usageCost(40, plan({ tiers: [{ minUnits: 1, discountBps: 10_000 }] })).totalIdr).toBe(0);
  });

  it("the discount is floor(included × bps / 10000): the rounding stays with the platform (SPEC §3)", () => {
    const cost = usageCost(7, plan({ unitPriceIdr: 3, tiers: [{ minUnits: 1, discountBps: 1000 }] }));
    // 7 × 3 = 21; 10 % of 21 = 2.1 → 2; 21 − 2 = 19
    expect(cost).toMatchObject({ includedCostIdr: 21, discountIdr: 2, totalIdr: 19 });
  });

  it("stays exact past 2^53 in the intermediate product", () => {
    const cost = usageCost(999_999_999_999, plan({ creditLimitUnits: 1_000_000_000_000 }));
    expect(cost.totalIdr).toBe(7_999_999_999_992);
  });

  it("refuses negative or fractional inputs", () => {
    expect(() => usageCost(-1, plan())).toThrow(RangeError);
    expect(() => usageCost(1.5, plan())).toThrow(RangeError);
    expect(() => usageCost(1, plan({ tiers: [{ minUnits: 0, discountBps: 10_001 }] }))).toThrow(RangeError);
  });

  it("total is always included cost − discount + overage cost, in whole rupiah", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.array(fc.record({ minUnits: fc.integer({ min: 0, max: 10_000_000 }), discountBps: fc.integer({ min: 0, max: 10_000 }) }), { maxLength: 4 }),
        (units, creditLimitUnits, unitPriceIdr, overagePriceIdr, tiers) => {
          const c = usageCost(units, { creditLimitUnits, unitPriceIdr, overagePriceIdr, tiers });
          expect(c.totalIdr).toBe(c.includedCostIdr - c.discountIdr + c.overageCostIdr);
          expect(c.includedUnits + c.overageUnits).toBe(units);
          expect(c.discountIdr).toBeGreaterThanOrEqual(0);
          expect(c.discountIdr).toBeLessThanOrEqual(c.includedCostIdr);
          for (const n of [c.totalIdr, c.discountIdr]) expect(Number.isSafeInteger(n)).toBe(true);
        },
      ),
    );
  });
});

describe("billing months", () => {
  it("gives a month's first and last business day", () => {
    expect(monthRange("2026-11")).toEqual({ from: "2026-11-01", to: "2026-11-30" });
    expect(monthRange("2026-12")).toEqual({ from: "2026-12-01", to: "2026-12-31" });
    expect(monthRange("2026-02").to).toBe("2026-02-28");
    expect(monthRange("2028-02").to).toBe("2028-02-29");
    expect(() => monthRange("2026-13")).toThrow(RangeError);
  });

  it("finds the WIB month that just ended, across the year end", () => {
    // 2026-12-31T17:30Z is 2027-01-01 00:30 WIB, when the monthly job runs.
    expect(businessMonth(Date.parse("2026-12-31T17:30:00Z"), "+07:00")).toBe("2027-01");
    expect(previousMonth(Date.parse("2026-12-31T17:30:00Z"), "+07:00")).toBe("2026-12");
    // 23:59 WIB on 31 December is still December.
    expect(previousMonth(Date.parse("2026-12-31T16:59:00Z"), "+07:00")).toBe("2026-11");
    expect(previousMonth(Date.parse("2026-11-30T17:30:00Z"), "+07:00")).toBe("2026-11");
    expect(previousMonth(Date.parse("2027-01-01T03:00:00Z"), "-05:00")).toBe("2026-11");
  });
});

const db = () => createDb(env.DB);
const baseConfig = (): Config => loadConfig(env);

async function seedPayout(advertiserId: string, day: string, units: number, status = "paid", campaignId = "cmp-a") {
  await env.DB.prepare(
    "insert into payouts (id, day, user_id, campaign_id, advertiser_id, units, amount_idr, fee_idr, status, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  )
    .bind(uniqueId("po"), day, uniqueId("creator"), campaignId, advertiserId, units, units * 5, Math.floor(units / 2), status, Date.now())
    .run();
}

const idrBalance = async (userId: string) => (await env.DB.prepare("select balance from accounts where id = ?").bind(`usr:${userId}:IDR`).first<number>("balance")) ?? 0;
const invoiceOf = (userId: string, month: string) => env.DB.prepare("select * from usage_invoices where advertiser_id = ? and month = ?").bind(userId, month).first<Record<string, any>>();
const feeDebits = async (userId: string) =>
  (await env.DB.prepare("select * from transactions where user_id = ? and type = 'fee'").bind(userId).all<Record<string, any>>()).results;

describe("monthly usage invoices", () => {
  it("bills only paid payouts on the month's days, at the exact price", async () => {
    const month = "2024-06";
    const adv = await newUser("adv");
    await adjust(adv.id, 2_000_000, "IDR");
    await seedPayout(adv.id, "2024-06-01", 60_000, "paid", "cmp-a");
    await seedPayout(adv.id, "2024-06-30", 40_000, "paid", "cmp-a");
    await seedPayout(adv.id, "2024-06-15", 50_000, "paid", "cmp-b");
    for (const status of ["held", "rejected", "insufficient_budget"]) await seedPayout(adv.id, "2024-06-10", 1_000_000, status);
    await seedPayout(adv.id, "2024-05-31", 1_000_000);
    await seedPayout(adv.id, "2024-07-01", 1_000_000);

    const config = { ...baseConfig(), USAGE_CREDIT_LIMIT_UNITS: 100_000 };
    // May's invoice claims May's payout (the wallet cannot cover it: it stays unpaid, claimed); June's never bills it again.
    expect(await issueMonthlyInvoices(db(), config, "2024-05", Date.now())).toMatchObject({ invoices: 1, unpaid: 1 });
    const usage = await usageFor(db(), adv.id, month, config);
    expect(usage).toMatchObject({
      month,
      units: 150_000,
      byCampaign: [
        { campaignId: "cmp-a", units: 100_000 },
        { campaignId: "cmp-b", units: 50_000 },
      ],
      cost: { includedUnits: 100_000, overageUnits: 50_000, totalIdr: 1_650_000 },
    });

    const run = await issueMonthlyInvoices(db(), config, month, Date.now());
    expect(run).toEqual({ month, invoices: 1, paid: 1, unpaid: 0, failed: 0, totalIdr: 1_650_000, chargedIdr: 1_650_000 });
    expect(await idrBalance(adv.id)).toBe(350_000);
    const invoice = await invoiceOf(adv.id, month);
    expect(invoice).toMatchObject({ status: "paid", units: 150_000, amount_idr: 1_650_000 });
    const [debit] = await feeDebits(adv.id);
    expect(debit).toMatchObject({ id: invoice!.transaction_id, amount: 1_650_000, asset: "IDR", status: "completed", balance_before: 2_000_000, balance_after: 350_000 });
    expect(JSON.parse(debit!.metadata)).toEqual({ month, units: 150_000, invoiceId: invoice!.id });
    await expectLedgerOk();
  });

  it("debits once however often and however concurrently the job runs", async () => {
    const month = "2025-02";
    const adv = await newUser("adv");
    await adjust(adv.id, 2_000_000, "IDR");
    await seedPayout(adv.id, "2025-02-28", 120_000);
    const config = baseConfig();
    const runs = await Promise.all([1, 2, 3].map(() => issueMonthlyInvoices(db(), config, month, Date.now())));
    runs.push(await issueMonthlyInvoices(db(), config, month, Date.now()));
    // 120,000 × Rp 10 − 10%. (A run also catches up other advertisers' unbilled payouts of earlier months.)
    for (const run of runs) expect(run.paid).toBeGreaterThanOrEqual(1);
    expect(await invoiceOf(adv.id, month)).toMatchObject({ status: "paid", units: 120_000, amount_idr: 1_080_000 });
    expect(await idrBalance(adv.id)).toBe(920_000);
    expect(await feeDebits(adv.id)).toHaveLength(1);
    await expectLedgerOk();
  });

  it("leaves an invoice unpaid when the wallet cannot cover it, and charges it on a later run", async () => {
    const month = "2025-03";
    const adv = await newUser("adv");
    await adjust(adv.id, 5_000, "IDR");
    await seedPayout(adv.id, "2025-03-05", 1_000);
    await seedPayout(adv.id, "2025-03-06", 500, "held");
    const config = baseConfig();

    expect(await issueMonthlyInvoices(db(), config, month, Date.now())).toEqual({ month, invoices: 1, paid: 0, unpaid: 1, failed: 0, totalIdr: 10_000, chargedIdr: 0 });
    expect(await invoiceOf(adv.id, month)).toMatchObject({ status: "unpaid", amount_idr: 10_000, transaction_id: null });
    expect(await idrBalance(adv.id)).toBe(5_000);
    expect(await feeDebits(adv.id)).toHaveLength(0);

    // Still short: stays unpaid, one row.
    expect(await issueMonthlyInvoices(db(), config, month, Date.now())).toMatchObject({ unpaid: 1, chargedIdr: 0 });

    // An admin releases the held payout, and the advertiser tops up.
    await env.DB.prepare("update payouts set status = 'paid', decided_at = ? where advertiser_id = ? and status = 'held'").bind(Date.now() + 1, adv.id).run();
    await adjust(adv.id, 20_000, "IDR");
    expect(await issueMonthlyInvoices(db(), config, month, Date.now())).toEqual({ month, invoices: 1, paid: 1, unpaid: 0, failed: 0, totalIdr: 15_000, chargedIdr: 15_000 });
    const invoice = await invoiceOf(adv.id, month);
    expect(invoice).toMatchObject({ status: "paid", units: 1_500, amount_idr: 15_000, transaction_id: expect.any(String) });
    expect(await idrBalance(adv.id)).toBe(10_000);

    expect(await issueMonthlyInvoices(db(), config, month, Date.now())).toMatchObject({ paid: 1, chargedIdr: 0 });
    expect(await idrBalance(adv.id)).toBe(10_000);
    expect(await feeDebits(adv.id)).toHaveLength(1);
    await expectLedgerOk();
  });

  it("one advertiser whose charge fails does not stop the others: it is alerted, counted as failed, and a rerun charges it", async () => {
    const month = "2025-06";
    const [a, b] = [await newUser("adv"), await newUser("adv")];
    for (const adv of [a, b]) {
      await adjust(adv.id, 50_000, "IDR");
      await seedPayout(adv.id, "2025-06-10", 1_000);
    }
    const flaky = createDb(d1FailingOnce(/insert into "usage_invoices"/));
    expect(await issueMonthlyInvoices(flaky, baseConfig(), month, Date.now())).toMatchObject({ invoices: 1, paid: 1, failed: 1, chargedIdr: 10_000 });
    const invoiced = await Promise.all([invoiceOf(a.id, month), invoiceOf(b.id, month)]);
    expect(invoiced.filter((i) => i?.status === "paid")).toHaveLength(1);
    const failedOne = invoiced[0] ? b : a;
    const alert = await env.DB.prepare("select severity from fraud_alerts where alert_type = 'invoice_failed' and user_id = ?").bind(failedOne.id).first();
    expect(alert).toEqual({ severity: "high" });
    expect(await issueMonthlyInvoices(db(), baseConfig(), month, Date.now())).toMatchObject({ invoices: 2, paid: 2, failed: 0, chargedIdr: 10_000 });
    for (const adv of [a, b]) expect(await idrBalance(adv.id)).toBe(40_000);
    await expectLedgerOk();
  });

  it("the monthly cron deferred by an unfinished daily batch raises one alert for the month", async () => {
    // 2025-10-31T17:30Z is 1 November 00:30 WIB; the batch of 31 October has not finished.
    for (let i = 0; i < 2; i++) expect(await runMonthlyBilling(env, Date.parse("2025-10-31T17:30:00Z"))).toBeNull();
    const alerts = await env.DB.prepare("select severity, json_extract(details, '$.month') as month from fraud_alerts where alert_type = 'billing_deferred'").all();
    expect(alerts.results.filter((r: any) => r.month === "2025-10")).toEqual([{ severity: "high", month: "2025-10" }]);
  });

  it("issues nothing for a month without billable units or without cost", async () => {
    const adv = await newUser("adv");
    await adjust(adv.id, 1_000, "IDR");
    await seedPayout(adv.id, "2025-04-10", 50_000, "held");
    await seedPayout(adv.id, "2025-04-11", 50_000, "rejected");
    expect(await issueMonthlyInvoices(db(), baseConfig(), "2025-04", Date.now())).toEqual({ month: "2025-04", invoices: 0, paid: 0, unpaid: 0, failed: 0, totalIdr: 0, chargedIdr: 0 });
    await seedPayout(adv.id, "2025-05-10", 50_000);
    const free = { ...baseConfig(), USAGE_UNIT_PRICE_IDR: 0, USAGE_OVERAGE_PRICE_IDR: 0 };
    expect(await issueMonthlyInvoices(db(), free, "2025-05", Date.now())).toMatchObject({ invoices: 0 });
    expect(await invoiceOf(adv.id, "2025-04")).toBeNull();
    expect(await invoiceOf(adv.id, "2025-05")).toBeNull();
    expect(await idrBalance(adv.id)).toBe(1_000);
  });

  it("the monthly cron bills the WIB month that just ended", async () => {
    const adv = await newUser("adv");
    await adjust(adv.id, 50_000, "IDR");
    await seedPayout(adv.id, "2025-08-31", 4_000);
    await env.DB.prepare("insert or replace into batch_runs (day, status, started_at, finished_at) values ('2025-08-31', 'done', 0, 1)").run();
    // The advertiser has a socket open: the charge is announced like any other movement.
    await env.DB.prepare("insert or replace into realtime_presence (user_id, connected, last_seen) values (?, 1, ?)").bind(adv.id, Date.now()).run();
    // 2025-08-31T17:30Z is 1 September 00:30 WIB.
    expect(await runMonthlyBilling(env, Date.parse("2025-08-31T17:30:00Z"))).toMatchObject({ month: "2025-08", paid: 1, chargedIdr: 40_000 });
    expect(await idrBalance(adv.id)).toBe(10_000);
    // (Numbered by the advertiser's object; an event of 2025 is then past the replay window and not kept.)
    const announced = () =>
      runInDurableObject(env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(adv.id)), (_, state) => {
        const tables = state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name = 'realtime_seq'").one().n;
        return tables === 0 ? 0 : state.storage.sql.exec<{ last: number }>("SELECT last FROM realtime_seq").one().last;
      });
    for (let i = 0; i < 100 && (await announced()) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await announced()).toBe(1);
  });

  it("refuses a month that has not ended in WIB", async () => {
    const config = baseConfig();
    // 2024-01-31T17:00Z is already 1 February 00:00 WIB, so January has ended.
    const now = Date.parse("2024-01-31T16:59:00Z");
    const error = await issueMonthlyInvoices(db(), config, "2024-01", now).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe("conflict");
    await expect(issueMonthlyInvoices(db(), config, "2024-02", now)).rejects.toThrow(ApiError);
    await expect(issueMonthlyInvoices(db(), config, "2024-01", Date.parse("2024-01-31T17:00:00Z"))).resolves.toMatchObject({ month: "2024-01", invoices: 0 });
  });
});

describe("hardening 8: billing catches up", () => {
  it("a held payout released after its month was invoiced is billed in the next month's invoice, never lost and never twice", async () => {
    const adv = await newUser("adv");
    await adjust(adv.id, 1_000_000, "IDR");
    await seedPayout(adv.id, "2023-03-10", 1_000);
    await seedPayout(adv.id, "2023-03-31", 500, "held");
    await seedPayout(adv.id, "2023-04-02", 2_000);
    const config = baseConfig();
    expect(await issueMonthlyInvoices(db(), config, "2023-03", Date.now())).toMatchObject({ invoices: 1, paid: 1, totalIdr: 10_000 });
    // March's held payout is released in April, after March was invoiced.
    await env.DB.prepare("update payouts set status = 'paid', decided_at = ? where advertiser_id = ? and status = 'held'").bind(Date.now() + 1, adv.id).run();
    expect(await issueMonthlyInvoices(db(), config, "2023-03", Date.now())).toMatchObject({ paid: 1, chargedIdr: 0 });
    expect(await issueMonthlyInvoices(db(), config, "2023-04", Date.now())).toMatchObject({ invoices: 1, paid: 1, totalIdr: 25_000, chargedIdr: 25_000 });
    expect(await invoiceOf(adv.id, "2023-04")).toMatchObject({ units: 2_500 });
    expect(await idrBalance(adv.id)).toBe(1_000_000 - 10_000 - 25_000);
    expect(await issueMonthlyInvoices(db(), config, "2023-05", Date.now())).toMatchObject({ invoices: 0 });
    const unbilled = await env.DB.prepare("select count(*) as n from payouts where advertiser_id = ? and invoice_id is null").bind(adv.id).first<{ n: number }>();
    expect(unbilled?.n).toBe(0);
    await expectLedgerOk();
  });

  it("the admin run refuses a month whose last batch has not finished; the monthly cron never bills such a month", async () => {
    const adv = await newUser("adv");
    await adjust(adv.id, 100_000, "IDR");
    await seedPayout(adv.id, "2023-06-15", 1_000);
    const admin = await adminToken();
    expectProblem(await call("POST", "/api/admin/billing/invoices/2023-06/run", { token: admin }), 409, "conflict");
    await env.DB.prepare("insert or replace into batch_runs (day, status, started_at) values ('2023-06-30', 'paying', 0)").run();
    expectProblem(await call("POST", "/api/admin/billing/invoices/2023-06/run", { token: admin }), 409, "conflict");
    // 2023-06-30T17:30Z is 1 July 00:30 WIB: June just ended, its last batch has not finished.
    expect(await runMonthlyBilling(env, Date.parse("2023-06-30T17:30:00Z"))).toBeNull();
    await env.DB.prepare("delete from batch_runs where day = '2023-06-30'").run();
    expect(await runMonthlyBilling(env, Date.parse("2023-06-30T17:30:00Z"))).toBeNull();
    expect(await invoiceOf(adv.id, "2023-06")).toBeNull();
    await env.DB.prepare("insert or replace into batch_runs (day, status, started_at, finished_at) values ('2023-06-30', 'done', 0, 1)").run();
    expect((await call("POST", "/api/admin/billing/invoices/2023-06/run", { token: admin })).json).toMatchObject({ paid: 1 });
  });
});

describe("admin invoice list", () => {
  it("pages by advertiser ({ items, nextCursor }, limit 1–100): every invoice once", async () => {
    const month = "2023-02";
    const ids = Array.from({ length: 7 }, (_, i) => `adv-page-${i}`);
    for (const a of ids) {
      await env.DB.prepare("insert or ignore into usage_invoices (id, advertiser_id, month, units, amount_idr, breakdown, status, created_at, updated_at) values (?, ?, ?, 1, 10, '{}', 'unpaid', 0, 0)").bind(`inv-${month}-${a}`, a, month).run();
    }
    const admin = await adminToken();
    const seen: string[] = [];
    let cursor: string | null = "";
    for (let pages = 0; cursor !== null && pages < 5; pages++) {
      const res = await call("GET", `/api/admin/billing/invoices?month=${month}&limit=3${cursor ? `&cursor=${cursor}` : ""}`, { token: admin });
      expect(res.status, res.text).toBe(200);
      expect(res.json.items.length).toBeLessThanOrEqual(3);
      seen.push(...res.json.items.map((i: any) => i.advertiserId));
      cursor = res.json.nextCursor;
    }
    expect(seen).toEqual(ids);
    expectProblem(await call("GET", `/api/admin/billing/invoices?month=${month}&limit=101`, { token: admin }), 400, "validation_failed");
    expectProblem(await call("GET", `/api/admin/billing/invoices?month=${month}&cursor=%27%20or%201=1`, { token: admin }), 400, "validation_failed");
  });
});

// These go through the Worker and pass once billingRouter is mounted at /api/billing and
// adminBillingRouter at /api/admin/billing (see src/app.ts).
describe("billing routes", () => {
  it("quotes a price for any authenticated user and refuses bad numbers", async () => {
    const user = await newUser();
    const res = await call("GET", "/api/billing/quote?units=150000&creditLimit=100000", { token: user.token });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ includedUnits: 100_000, overageUnits: 50_000, discountIdr: 100_000, totalIdr: 1_650_000 });
    const defaults = await call("GET", "/api/billing/quote?units=1000000", { token: user.token });
    expect(defaults.json).toMatchObject({ creditLimitUnits: 1_000_000, tier: { discountBps: 2000 }, totalIdr: 8_000_000 });
    for (const query of ["units=abc", "units=-1", "units=1.5", "units=1e3", "units=", "units=1000000000001", "units=5&creditLimit=x", ""]) {
      expectProblem(await call("GET", `/api/billing/quote?${query}`, { token: user.token }), 400, "validation_failed");
    }
    expectProblem(await call("GET", "/api/billing/quote?units=1"), 401, "unauthorized");
  });

  it("shows the caller's usage for a month, the current WIB month by default", async () => {
    const adv = await newUser("adv");
    await seedPayout(adv.id, "2025-06-30", 2_000, "paid", "cmp-x");
    await seedPayout(adv.id, "2025-06-29", 9_000, "insufficient_budget", "cmp-x");
    const res = await call("GET", "/api/billing/usage?month=2025-06", { token: adv.token });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ month: "2025-06", units: 2_000, byCampaign: [{ campaignId: "cmp-x", units: 2_000 }], cost: { totalIdr: 20_000 } });
    const current = businessMonth(Date.now(), "+07:00");
    const fresh = await newUser("adv");
    await seedPayout(fresh.id, `${current}-01`, 7);
    expect((await call("GET", "/api/billing/usage", { token: fresh.token })).json).toMatchObject({ month: current, units: 7, cost: { totalIdr: 70 } });
    for (const month of ["2025-13", "2025-00", "2025-6", "June", "2025-06-01"]) {
      expectProblem(await call("GET", `/api/billing/usage?month=${month}`, { token: adv.token }), 400, "validation_failed");
    }
  });

  it("usage agrees with what the invoices bill: a payout released after its month was invoiced counts in the next month", async () => {
    // Months of its own: whether a month has had its run is read from the invoices of every advertiser.
    const adv = await newUser("adv");
    await adjust(adv.id, 100_000, "IDR");
    await seedPayout(adv.id, "2021-07-10", 1_000);
    await seedPayout(adv.id, "2021-07-31", 500, "held");
    expect(await issueMonthlyInvoices(db(), baseConfig(), "2021-07", Date.now())).toMatchObject({ paid: 1, chargedIdr: 10_000 });
    await env.DB.prepare("update payouts set status = 'paid', decided_at = ? where advertiser_id = ? and status = 'held'").bind(Date.now() + 1, adv.id).run();
    const usage = async (month: string) => (await call("GET", `/api/billing/usage?month=${month}`, { token: adv.token })).json;
    expect(await usage("2021-07")).toMatchObject({ units: 1_000, cost: { totalIdr: 10_000 } });
    expect(await usage("2021-08")).toMatchObject({ units: 500, byCampaign: [{ campaignId: "cmp-a", units: 500 }], cost: { totalIdr: 5_000 } });
    // A month not invoiced yet keeps its own payouts: they are not also shown as the later months' usage.
    await seedPayout(adv.id, "2021-09-10", 2_000);
    expect(await usage("2021-09")).toMatchObject({ units: 2_000 });
    expect(await usage("2021-10")).toMatchObject({ units: 0 });
  });

  it("lets admins run and list a month's invoices, only once the month has ended", async () => {
    const month = "2025-07";
    const adv = await newUser("adv");
    await adjust(adv.id, 100_000, "IDR");
    await seedPayout(adv.id, "2025-07-20", 3_000);
    await env.DB.prepare("insert or replace into batch_runs (day, status, started_at, finished_at) values ('2025-07-31', 'done', 0, 1)").run();
    const admin = await adminToken();
    expectProblem(await call("POST", `/api/admin/billing/invoices/${month}/run`, { token: adv.token }), 403, "forbidden");
    expectProblem(await call("POST", `/api/admin/billing/invoices/${businessMonth(Date.now(), "+07:00")}/run`, { token: admin }), 409, "conflict");
    expectProblem(await call("POST", "/api/admin/billing/invoices/2025-13/run", { token: admin }), 400, "validation_failed");

    const run = await call("POST", `/api/admin/billing/invoices/${month}/run`, { token: admin });
    expect(run.status, run.text).toBe(200);
    expect(await env.DB.prepare("select actor_id from audit_log where action = 'billing.invoice_run' and subject_id = ? order by id desc").bind(month).first()).toEqual({ actor_id: "admin-root" });
    expect(run.json).toMatchObject({ month, paid: expect.any(Number) });
    expect((await call("POST", `/api/admin/billing/invoices/${month}/run`, { token: admin })).json).toMatchObject({ chargedIdr: 0 });

    const list = await call("GET", `/api/admin/billing/invoices?month=${month}`, { token: admin });
    expect(list.status, list.text).toBe(200);
    const mine = list.json.items.filter((i: any) => i.advertiserId === adv.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ advertiserId: adv.id, month, units: 3_000, amountIdr: 30_000, status: "paid", breakdown: { totalIdr: 30_000 } });
    expect((await call("GET", `/api/admin/billing/invoices?month=${month}&status=paid`, { token: admin })).json.items.map((i: any) => i.advertiserId)).toContain(adv.id);
    await expectLedgerOk();
  });

  it("documents the routes in the OpenAPI description", async () => {
    const res = await call("GET", "/openapi.json");
    expect(Object.keys(res.json.paths)).toEqual(expect.arrayContaining(["/api/billing/quote", "/api/billing/usage", "/api/admin/billing/invoices/{month}/run", "/api/admin/billing/invoices"]));
    expect(res.json.components.schemas.UsageCost).toBeDefined();
  });
});

describe("usage shows what the month's invoice will bill", () => {
  const payout = (advertiserId: string, day: string, units: number) =>
    env.DB.prepare(
      "insert into payouts (id, day, user_id, campaign_id, advertiser_id, units, amount_idr, fee_idr, capped_idr, status, created_at) values (?, ?, 'promoter-x', 'cmp-usage', ?, ?, ?, 0, 0, 'paid', ?)",
    )
      .bind(`po_usage_${advertiserId}_${day}`, day, advertiserId, units, units * 5, Date.now())
      .run();
  const usage = async (advertiserId: string, month: string) => (await call("GET", `/api/billing/usage?month=${month}`, { token: await tokenFor(advertiserId) })).json.units;

  const config = loadConfig(env);

  it("payouts of earlier, already invoiced months released late count in the month that bills them; the month before only once it was invoiced", async () => {
    const adv = uniqueId("adv-usage");
    // Two months back (invoiced long ago for everyone; this advertiser had nothing then): June's invoice bills it.
    await payout(adv, "2023-04-10", 100);
    // The month before has had its run (this advertiser's payout was held then: it got no invoice).
    await env.DB.prepare("insert or ignore into invoice_runs (month, ran_at) values ('2023-05', 0)").run();
    await payout(adv, "2023-05-20", 10);
    await payout(adv, "2023-06-03", 1);
    expect(await usage(adv, "2023-06")).toBe(111);
    const run = await issueMonthlyInvoices(createDb(env.DB), config, "2023-06", Date.parse("2023-07-01T06:00:00Z"));
    const inv = await env.DB.prepare("select units from usage_invoices where advertiser_id = ? and month = '2023-06'").bind(adv).first<{ units: number }>();
    expect(inv?.units, JSON.stringify(run)).toBe(111);
  });

  it("a run that issued no invoice still counts as the month's run: what it left unbilled shows in the next month", async () => {
    const adv = uniqueId("adv-usage-empty");
    await payout(adv, "2019-01-20", 10);
    await env.DB.prepare("update payouts set status = 'held' where id = ?").bind(`po_usage_${adv}_2019-01-20`).run();
    const january = await issueMonthlyInvoices(createDb(env.DB), config, "2019-01", Date.parse("2019-02-01T06:00:00Z"));
    expect(january.invoices).toBe(0);
    await env.DB.prepare("update payouts set status = 'paid' where id = ?").bind(`po_usage_${adv}_2019-01-20`).run();
    expect(await usage(adv, "2019-02")).toBe(10);
    await issueMonthlyInvoices(createDb(env.DB), config, "2019-02", Date.parse("2019-03-01T06:00:00Z"));
    const inv = await env.DB.prepare("select units from usage_invoices where advertiser_id = ? and month = '2019-02'").bind(adv).first<{ units: number }>();
    expect(inv?.units).toBe(10);
  });

  it("a month before that nobody was invoiced for yet is still its own month's usage, not the next one's", async () => {
    const adv = uniqueId("adv-usage-open");
    await payout(adv, "2022-08-20", 10);
    await payout(adv, "2022-09-02", 1);
    expect(await usage(adv, "2022-09")).toBe(1);
    expect(await usage(adv, "2022-08")).toBe(10);
  });
});

describe("each month is invoiced at its own tier", () => {
  it("a month whose invoice run was deferred is not swallowed into the next month's invoice (it is billed on its own when run)", async () => {
    const adv = await newUser("adv");
    await adjust(adv.id, 100_000_000, "IDR");
    await seedPayout(adv.id, "2017-03-15", 900_000);
    await seedPayout(adv.id, "2017-04-15", 900_000);
    // March's last batch did not finish in time: the cron defers March.
    expect(await runMonthlyBilling(env, Date.parse("2017-04-01T05:00:00Z"))).toBeNull();
    await env.DB.prepare("insert or replace into batch_runs (day, status, active_users, started_at, finished_at) values ('2017-04-30', 'done', 0, 0, 1)").run();
    expect((await call("GET", "/api/billing/usage?month=2017-04", { token: adv.token })).json.units).toBe(900_000);
    await runMonthlyBilling(env, Date.parse("2017-05-01T05:00:00Z"));
    // April alone: 900,000 × Rp 10 − 10 % — what usage showed.
    expect(await invoiceOf(adv.id, "2017-04")).toMatchObject({ units: 900_000, amount_idr: 8_100_000 });
    // March, run by an admin later, is billed on its own.
    await issueMonthlyInvoices(db(), baseConfig(), "2017-03", Date.parse("2017-05-02T00:00:00Z"));
    expect(await invoiceOf(adv.id, "2017-03")).toMatchObject({ units: 900_000, amount_idr: 8_100_000 });
    await expectLedgerOk();
  });

  it("a payout released after its advertiser's invoice was paid, in a run that stopped before recording itself, is billed by a later month (never lost)", async () => {
    const adv = await newUser("adv");
    await adjust(adv.id, 10_000_000, "IDR");
    await seedPayout(adv.id, "2013-06-10", 1_000);
    await seedPayout(adv.id, "2013-06-20", 500, "held");
    // June's run charges the advertiser, then stops before recording the month's run.
    await expect(issueMonthlyInvoices(createDb(d1FailingOnce(/insert into "invoice_runs"/)), baseConfig(), "2013-06", Date.now())).rejects.toThrow();
    expect(await invoiceOf(adv.id, "2013-06")).toMatchObject({ status: "paid", units: 1_000 });
    await env.DB.prepare("update payouts set status = 'paid', decided_at = ? where advertiser_id = ? and status = 'held'").bind(Date.now() + 1, adv.id).run();
    // June's rerun finds its invoice paid (and records the run after the release); July bills the released payout.
    await issueMonthlyInvoices(db(), baseConfig(), "2013-06", Date.now() + 2);
    await issueMonthlyInvoices(db(), baseConfig(), "2013-07", Date.now() + 3);
    expect(await invoiceOf(adv.id, "2013-07")).toMatchObject({ units: 500 });
    await expectLedgerOk();
  });

  it("an advertiser whose invoice failed in its month's run is billed that month by its rerun, not by the next month's invoice; a payout released after the run is", async () => {
    const adv = await newUser("adv");
    await adjust(adv.id, 100_000_000, "IDR");
    await seedPayout(adv.id, "2016-06-15", 900_000);
    await seedPayout(adv.id, "2016-06-20", 1_000, "held");
    await seedPayout(adv.id, "2016-07-15", 900_000);
    expect(await issueMonthlyInvoices(createDb(d1FailingOnce(/insert into "usage_invoices"/)), baseConfig(), "2016-06", Date.now())).toMatchObject({ failed: 1 });
    // Released after June's run: late, so July's invoice takes it.
    await env.DB.prepare("update payouts set status = 'paid', decided_at = ? where advertiser_id = ? and status = 'held'").bind(Date.now() + 1, adv.id).run();
    expect((await call("GET", "/api/billing/usage?month=2016-07", { token: adv.token })).json.units).toBe(901_000);
    await issueMonthlyInvoices(db(), baseConfig(), "2016-07", Date.now() + 2);
    expect(await invoiceOf(adv.id, "2016-07")).toMatchObject({ units: 901_000 });
    // June, rerun, bills June's own payout at June's tier.
    await issueMonthlyInvoices(db(), baseConfig(), "2016-06", Date.now() + 3);
    expect(await invoiceOf(adv.id, "2016-06")).toMatchObject({ units: 900_000, amount_idr: 8_100_000 });
    await expectLedgerOk();
  });
});
