import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createDb } from "../src/db/client";
import { payLine, type PayoutTerms } from "../src/jobs/batch-payouts";
import { call, d1Intercept, expectLedgerOk, midtransNotification, newUser, postMidtransWebhook } from "./helpers";

const balance = async (id: string) => (await env.DB.prepare("select balance from accounts where id = ?").bind(id).first<{ balance: number }>())?.balance ?? 0;

async function fundedCampaign(prefix: string, amount: number) {
  const advertiser = await newUser(prefix);
  const id = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "Race" } })).json.id as string;
  const deposit = await call("POST", `/api/campaigns/${id}/deposit`, { token: advertiser.token, body: { amount } });
  expect(deposit.status, deposit.text).toBe(201);
  expect((await postMidtransWebhook(await midtransNotification(deposit.json.orderId, { transaction_status: "settlement" }))).json.outcome).toBe("credited");
  return { advertiser, id, orderId: deposit.json.orderId as string };
}

const terms = (day: string, userId: string, campaignId: string, advertiserId: string, amountIdr: number): PayoutTerms => ({
  id: `po_${day}_${userId}_${campaignId}`,
  day,
  userId,
  campaignId,
  advertiserId,
  units: amountIdr / 5,
  amountIdr,
  feeIdr: amountIdr / 10,
  cappedIdr: 0,
});

describe("a campaign deposit charged back while its budget is paid out", () => {
  it("a payout committing between the chargeback's budget read and its batch: the budget gives back what it holds, only the paid-out part is debt, and it pays nobody after", async () => {
    const { advertiser, id, orderId } = await fundedCampaign("adv-cb-race", 50_000);
    const earner = await newUser("earner-cb");
    const notification = await midtransNotification(orderId, { transaction_status: "chargeback" });
    // The daily batch pays one line (Rp 1,000 + Rp 100 fee) from the budget right before the chargeback's batch commits.
    const db = d1Intercept(/batch_guards[\s\S]*reversed_amount/, async () => {
      expect(await payLine(createDb(env.DB), terms("2026-01-05", earner.id, id, advertiser.id, 1_000), Date.now())).toBe("paid");
    });
    const res = await call("POST", "/api/payment/midtrans/webhook", { body: notification, db });
    expect(res.status, res.text).toBe(200);
    expect(res.json.outcome).toBe("reversed");
    // Rp 50,000 went back to the card; the budget had paid Rp 1,100 of it. The advertiser owes Rp 1,100 and
    // the budget holds nothing more (it was all the charged-back deposit's money).
    const budget = await balance(`cmp:${id}:IDR`);
    const debt = await balance(`debt:${advertiser.id}:IDR`);
    await expectLedgerOk();
    expect({ budget, debt }).toEqual({ budget: 0, debt: -1_100 });
    // ... so the next day's line from this campaign, whose only deposit was charged back, pays nobody.
    expect(await payLine(createDb(env.DB), terms("2026-01-06", earner.id, id, advertiser.id, 40_000), Date.now())).toBe("insufficient_budget");
    await expectLedgerOk();
  });

  it("a second deposit credited between the chargeback's budget read and its batch settles the debt in the chargeback's own batch", async () => {
    const { advertiser, id, orderId } = await fundedCampaign("adv-cb-race3", 50_000);
    const earner = await newUser("earner-cb3");
    // The whole budget is paid out (Rp 45,000 + Rp 4,500 fee), then the deposit is charged back.
    expect(await payLine(createDb(env.DB), terms("2026-01-05", earner.id, id, advertiser.id, 45_000), Date.now())).toBe("paid");
    const chargeback = await midtransNotification(orderId, { transaction_status: "chargeback" });
    const second = await call("POST", `/api/campaigns/${id}/deposit`, { token: advertiser.token, body: { amount: 50_000 } });
    const settlement = await midtransNotification(second.json.orderId, { transaction_status: "settlement" });
    // The advertiser's next deposit settles while the chargeback is being applied.
    const db = d1Intercept(/batch_guards[\s\S]*reversed_amount/, async () => {
      expect((await postMidtransWebhook(settlement)).json.outcome).toBe("credited");
    });
    expect((await call("POST", "/api/payment/midtrans/webhook", { body: chargeback, db })).json.outcome).toBe("reversed");
    const budget = await balance(`cmp:${id}:IDR`);
    const debt = await balance(`debt:${advertiser.id}:IDR`);
    await expectLedgerOk();
    // README: "their next campaign deposit settles that debt first and funds the campaign with the rest".
    // Received 100,000, refunded 50,000, paid out 49,500: 500 left in the budget and no debt.
    expect({ budget, debt }).toEqual({ budget: 500, debt: 0 });
  });
});
