#!/usr/bin/env node
// End-to-end: starts the service the way `npm start` does (wrangler dev + gateway simulator, fresh
// local state), then drives real flows over HTTP exactly as a client and the gateways would.
import { signToken } from "./dev-token.mjs";
import { ensureDevVars } from "./dev-vars.mjs";
import { request, startLocalService } from "./local-service.mjs";

const service = startLocalService({ name: "e2e", port: Number(process.env.E2E_PORT ?? 8777), simPort: Number(process.env.E2E_SIM_PORT ?? 8778) });
const { api, simUrl } = service;
const secret = ensureDevVars().JWT_SECRET;
const shutdown = () => service.stop();
const waitReady = () => service.ready();

const DAILY_CRON = "15 17 * * *";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A verified user with a bank account, holding `packageId`'s coins bought through the simulator. */
async function fundedCreator(prefix, packageId) {
  const user = `${prefix}-${Date.now()}`;
  const token = signToken(user, "user", secret, 1);
  const admin = signToken("e2e-admin", "admin", secret, 1);
  const order = await request("POST", `${api}/api/payment/midtrans/create`, { token, body: { packageId } });
  await request("POST", `${simUrl}/_sim/midtrans/${order.json.orderId}/notify`, { body: { transaction_status: "settlement" } });
  const form = new FormData();
  form.set("idType", "ktp");
  form.set("idNumber", "3171234567890123");
  form.set("idPhoto", new File([Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4])], "id.jpg"));
  form.set("selfiePhoto", new File([Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9])], "me.png"));
  const kyc = await fetch(`${api}/api/wallet/kyc/submit`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
  expect(kyc.status === 201, `kyc submit ${kyc.status}`);
  expect((await request("POST", `${api}/api/admin/kyc/${user}/review`, { token: admin, body: { decision: "verified" } })).status === 200, "review");
  const method = await request("PUT", `${api}/api/wallet/withdraw-method`, { token, body: { bankName: "bca", accountNumber: "8800123456", accountName: "Dewi Lestari" } });
  expect(method.status === 200, `method ${method.text}`);
  return { user, token, admin, orderId: order.json.orderId };
}

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name}`);
  } catch (error) {
    results.push([name, false]);
    console.log(`FAIL ${name}\n     ${error.message}`);
    if (process.env.E2E_LOG) console.log(service.log().slice(-4000));
  }
}
function expect(cond, message) {
  if (!cond) throw new Error(message);
}

const scenarios = {
  async "live and marketplace: a viewer tops up, gifts a Rose and boosts the stream (featured), then orders with a referral code and confirms; seller and affiliate are paid"() {
    const stamp = Date.now();
    const viewerId = `e2e-viewer-${stamp}`;
    const viewer = signToken(viewerId, "user", secret, 1);
    const streamerId = `e2e-streamer-${stamp}`;
    const streamer = signToken(streamerId, "user", secret, 1);
    const affiliate = signToken(`e2e-affiliate-${stamp}`, "user", secret, 1);
    for (const t of [streamer, affiliate]) await request("GET", `${api}/api/wallet/balance`, { token: t });
    const order = await request("POST", `${api}/api/payment/midtrans/create`, { token: viewer, body: { packageId: "pkg_1000" } });
    const paid = await request("POST", `${simUrl}/_sim/midtrans/${order.json.orderId}/notify`, { body: { transaction_status: "settlement" } });
    expect(paid.json?.delivered?.body?.outcome === "credited", `top-up: ${paid.text}`);
    const stream = `e2e-stream-${stamp}`;
    const gift = await request("POST", `${api}/api/live/${stream}/gift`, { token: viewer, body: { giftId: "rose", streamerId }, headers: { "idempotency-key": `g-${stamp}` } });
    expect(gift.status === 201 && gift.json.transaction.amount === 50, `gift: ${gift.status} ${gift.text}`);
    const quote = await request("GET", `${api}/api/live/boost-price?level=basic`, { token: viewer });
    const boost = await request("POST", `${api}/api/live/${stream}/boost`, { token: viewer, body: { level: "basic", maxPrice: quote.json.price } });
    expect(boost.status === 201 && boost.json.price === quote.json.price, `boost: ${boost.status} ${boost.text}`);
    const featured = await request("GET", `${api}/api/live/featured`, { token: viewer });
    expect(featured.json.items.some((f) => f.streamId === stream && f.streamerId === streamerId), `featured: ${featured.text}`);
    const streamerBalance = await request("GET", `${api}/api/wallet/balance`, { token: streamer });
    expect(streamerBalance.json.balance === 35, `streamer: ${streamerBalance.text}`);

    const code = await request("POST", `${api}/api/marketplace/referral-codes`, { token: affiliate });
    const placed = await request("POST", `${api}/api/marketplace/orders`, { token: viewer, body: { sellerId: streamerId, productId: "poster", amount: 400, referralCode: code.json.code } });
    expect(placed.status === 201 && placed.json.order.status === "escrow", `order: ${placed.status} ${placed.text}`);
    const confirmed = await request("POST", `${api}/api/marketplace/orders/${placed.json.order.id}/confirm`, { token: viewer });
    expect(confirmed.json?.status === "released", `confirm: ${confirmed.text}`);
    const seller = await request("GET", `${api}/api/wallet/balance`, { token: streamer });
    const aff = await request("GET", `${api}/api/wallet/balance`, { token: affiliate });
    // 400: seller 320 (85 % − 5 % affiliate), affiliate 20, platform 48, processing 12.
    expect(seller.json.balance === 35 + 320 && aff.json.balance === 20, `seller ${seller.text} affiliate ${aff.text}`);
    const viewerBalance = await request("GET", `${api}/api/wallet/balance`, { token: viewer });
    expect(viewerBalance.json.balance === 1150 - 50 - boost.json.price - 400, `viewer: ${viewerBalance.text}`);
  },

  async "premium content: a creator prices it, a buyer tops up through the simulator and unlocks, the creator sees revenue, an admin removes it, the buyer gets the creator's share back"() {
    const stamp = Date.now();
    const creator = signToken(`e2e-carol-${stamp}`, "user", secret, 1);
    const buyerId = `e2e-bob-${stamp}`;
    const buyer = signToken(buyerId, "user", secret, 1);
    const admin = signToken("e2e-admin", "admin", secret, 1);
    const content = `e2e-video-${stamp}`;
    const priced = await request("PUT", `${api}/api/content/${content}/premium`, { token: creator, body: { price: 300 } });
    expect(priced.status === 200 && priced.json.price === 300, `price: ${priced.status} ${priced.text}`);
    const order = await request("POST", `${api}/api/payment/midtrans/create`, { token: buyer, body: { packageId: "pkg_500" } });
    const paid = await request("POST", `${simUrl}/_sim/midtrans/${order.json.orderId}/notify`, { body: { transaction_status: "settlement" } });
    expect(paid.json?.delivered?.body?.outcome === "credited", `top-up: ${paid.text}`);
    const unlock = await request("POST", `${api}/api/content/${content}/unlock`, { token: buyer, headers: { "idempotency-key": `u-${stamp}` } });
    expect(unlock.status === 201 && unlock.json.transaction.balanceAfter === 250, `unlock: ${unlock.status} ${unlock.text}`);
    const again = await request("POST", `${api}/api/content/${content}/unlock`, { token: buyer });
    expect(again.status === 409 && again.json.code === "already_unlocked", `second unlock: ${again.status} ${again.text}`);
    const access = await request("GET", `${api}/api/content/${content}/access`, { token: buyer });
    expect(access.json.access === true, `access ${access.text}`);
    const revenue = await request("GET", `${api}/api/content/${content}/revenue`, { token: creator });
    expect(JSON.stringify(revenue.json.revenue) === JSON.stringify({ total: 300, creator: 210, platform: 75, processing: 15 }), `revenue ${revenue.text}`);
    const removed = await request("POST", `${api}/api/content/${content}/refund`, { token: admin, body: { reason: "admin_removed" } });
    expect(removed.status === 202, `remove: ${removed.status} ${removed.text}`);
    let progress;
    for (let i = 0; i < 100; i++) {
      progress = await request("GET", `${api}/api/admin/content/${content}/refunds`, { token: admin });
      if (progress.json?.status === "done") break;
      await sleep(100);
    }
    expect(progress.json?.status === "done" && progress.json.refunded === 1, `refund run: ${progress.text}`);
    const balance = await request("GET", `${api}/api/wallet/balance`, { token: buyer });
    expect(balance.json.balance === 250 + 210, `buyer after the partial refund: ${balance.text}`);
    const after = await request("GET", `${api}/api/content/${content}/revenue`, { token: creator });
    expect(after.json.revenue.creator === 0 && after.json.revenue.platform === 75 && after.json.refunds.total === 210, `revenue after removal ${after.text}`);
    const gone = await request("GET", `${api}/api/content/${content}/access`, { token: buyer });
    expect(gone.json.access === false, `access after removal ${gone.text}`);
  },

  async "buy a coin package; notifications replayed 5 times out of order with a pending one credit once"() {
    const user = `e2e-buyer-${Date.now()}`;
    const token = signToken(user, "user", secret, 1);
    const order = await request("POST", `${api}/api/payment/midtrans/create`, { token, body: { packageId: "pkg_500" } });
    expect(order.status === 201, `create: ${order.status} ${order.text}`);
    const { orderId } = order.json;
    const pending = await request("POST", `${simUrl}/_sim/midtrans/${orderId}/notify`, { body: { transaction_status: "pending" } });
    expect(pending.json?.delivered?.status === 200, `pending: ${pending.text}`);
    const settled = await request("POST", `${simUrl}/_sim/midtrans/${orderId}/notify`, { body: { transaction_status: "settlement" } });
    expect(settled.json?.delivered?.body?.outcome === "credited", `settlement: ${settled.text}`);
    // index 0 is the pending notification, 1 the settlement: replay them out of order.
    for (const index of [1, 0, 1, 1, 0]) {
      const replay = await request("POST", `${simUrl}/_sim/midtrans/${orderId}/replay`, { body: { index } });
      expect(replay.json?.delivered?.status === 200, `replay ${index}: ${replay.text}`);
      expect(["duplicate", "ignored"].includes(replay.json.delivered.body.outcome), `replay ${index} outcome ${replay.json.delivered.body.outcome}`);
    }
    const balance = await request("GET", `${api}/api/wallet/balance`, { token });
    expect(balance.json.balance === 550 && balance.json.totalDeposited === 550, `balance ${balance.text}`);
    const history = await request("GET", `${api}/api/wallet/transactions?type=deposit`, { token });
    expect(history.json.items.length === 1, `deposits in history: ${history.json.items.length}`);
  },

  async "a forged notification is refused and changes nothing"() {
    const user = `e2e-forger-${Date.now()}`;
    const token = signToken(user, "user", secret, 1);
    const order = await request("POST", `${api}/api/payment/midtrans/create`, { token, body: { packageId: "pkg_100" } });
    const forged = await request("POST", `${simUrl}/_sim/midtrans/${order.json.orderId}/notify`, { body: { transaction_status: "settlement", signature_key: "f".repeat(128) } });
    expect(forged.json?.delivered?.status === 401, `forged: ${forged.text}`);
    const balance = await request("GET", `${api}/api/wallet/balance`, { token });
    expect(balance.json.balance === 0, `balance ${balance.text}`);
  },

  async "verify KYC, withdraw 1,000 coins, the simulator completes the Iris payout: balances and totalWithdrawn right"() {
    const { user, token } = await fundedCreator("e2e-creator", "pkg_5000");
    const wd = await request("POST", `${api}/api/wallet/withdraw`, { token, body: { asset: "COIN", amount: 1000 }, headers: { "idempotency-key": `wd-${user}` } });
    expect(wd.status === 202 && wd.json.netIdr === 88_000, `withdraw ${wd.status} ${wd.text}`);
    const held = await request("GET", `${api}/api/wallet/balance`, { token });
    expect(held.json.balance === 6000 && held.json.lockedBalance === 1000, `held ${held.text}`);
    const state = await request("GET", `${simUrl}/_sim/state`);
    const payout = state.json.payouts.find((p) => String(p.notes).includes(wd.json.withdrawalId));
    expect(payout && Number(payout.amount) === 88_000, `payout at Iris: ${JSON.stringify(payout)}`);
    const done = await request("POST", `${simUrl}/_sim/iris/${payout.reference_no}/notify`, { body: { status: "completed" } });
    expect(done.json?.delivered?.body?.outcome === "completed", `iris: ${done.text}`);
    const again = await request("POST", `${simUrl}/_sim/iris/${payout.reference_no}/notify`, { body: { status: "completed" } });
    expect(again.json?.delivered?.body?.outcome === "duplicate", `iris again: ${again.text}`);
    const after = await request("GET", `${api}/api/wallet/balance`, { token });
    expect(after.json.balance === 5000 && after.json.lockedBalance === 0 && after.json.totalWithdrawn === 100_000, `after ${after.text}`);
  },

  async "activity is counted in the user's Durable Object; the 11th value-moving request in a minute is rate limited"() {
    const user = `e2e-active-${Date.now()}`;
    const token = signToken(user, "user", secret, 1);
    const events = Array.from({ length: 5 }, (_, i) => ({ id: `ev-${i}`, type: i % 2 ? "like" : "view", count: 2 }));
    const posted = await request("POST", `${api}/api/activity`, { token, body: { events: [...events, events[0]] } });
    expect(posted.status === 202 && posted.json.accepted === 5 && posted.json.duplicates === 1, `activity ${posted.text}`);
    const me = await request("GET", `${api}/api/activity/me`, { token });
    expect(me.json.currentRatePerMin + 0 >= 0 && me.json.minutes.reduce((a, m) => a + m.rate, 0) === 10, `me ${me.text}`);
    const statuses = [];
    for (let i = 0; i < 11; i++) statuses.push((await request("POST", `${api}/api/wallet/transfer`, { token, body: { toUserId: "nobody-e2e", amount: 1 } })).status);
    expect(statuses.slice(0, 10).every((s) => s === 404) && statuses[10] === 429, `statuses ${statuses}`);
  },

  async "the daily batch cron runs for the day before its scheduled time"() {
    const scheduled = Date.now();
    const res = await fetch(`${api}/__scheduled?cron=${encodeURIComponent(DAILY_CRON)}&time=${scheduled}`);
    expect(res.ok, `scheduled ${res.status}`);
    const day = new Date(scheduled + 7 * 3_600_000 - 86_400_000).toISOString().slice(0, 10);
    const admin = signToken("e2e-admin", "admin", secret, 1);
    let progress;
    for (let i = 0; i < 40; i++) {
      progress = await request("GET", `${api}/api/admin/batches/${day}`, { token: admin });
      if (progress.json?.status === "done") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(progress.json?.status === "done", `batch ${progress.text}`);
  },

  async "Iris answers after our deadline: 202 unconfirmed, the coins stay held, no second payout; Iris' notification settles one, an admin resolves the other"() {
    const { user, token, admin } = await fundedCreator("e2e-late", "pkg_5000");
    await request("POST", `${simUrl}/_sim/faults`, { body: { target: "iris", mode: "late", count: 2, delayMs: 15_000 } });
    const first = await request("POST", `${api}/api/wallet/withdraw`, { token, body: { asset: "COIN", amount: 2000 }, headers: { "idempotency-key": `late-1-${user}` } });
    expect(first.status === 202 && first.json.unconfirmed === true, `first ${first.status} ${first.text}`);
    const second = await request("POST", `${api}/api/wallet/withdraw`, { token, body: { asset: "COIN", amount: 2000 }, headers: { "idempotency-key": `late-2-${user}` } });
    expect(second.status === 202 && second.json.unconfirmed === true, `second ${second.status} ${second.text}`);
    // 6,000 coins, 4,000 held: a third withdrawal of the same coins is refused.
    const third = await request("POST", `${api}/api/wallet/withdraw`, { token, body: { asset: "COIN", amount: 2500 } });
    expect(third.status === 422 && third.json.code === "insufficient_funds", `third ${third.status} ${third.text}`);
    const replay = await request("POST", `${api}/api/wallet/withdraw`, { token, body: { asset: "COIN", amount: 2000 }, headers: { "idempotency-key": `late-1-${user}` } });
    expect(replay.status === 202 && replay.json.withdrawalId === first.json.withdrawalId, `replay ${replay.text}`);
    const state = (await request("GET", `${simUrl}/_sim/state`)).json;
    const atIris = (id) => state.payouts.filter((p) => p.notes === `Withdrawal ${id}`);
    expect(atIris(first.json.withdrawalId).length === 1 && atIris(second.json.withdrawalId).length === 1, "one payout each at Iris");
    const done = await request("POST", `${simUrl}/_sim/iris/${atIris(first.json.withdrawalId)[0].reference_no}/notify`, { body: { status: "completed" } });
    expect(done.json?.delivered?.body?.outcome === "completed", `iris notify ${done.text}`);
    const resolved = await request("POST", `${api}/api/admin/withdrawals/${second.json.withdrawalId}/resolve`, { token: admin, body: { outcome: "failed", reason: "e2e: Iris dashboard shows it rejected" } });
    expect(resolved.status === 200 && resolved.json.status === "failed", `resolve ${resolved.text}`);
    const again = await request("POST", `${api}/api/admin/withdrawals/${second.json.withdrawalId}/resolve`, { token: admin, body: { outcome: "failed", reason: "twice" } });
    expect(again.status === 409, `resolve twice ${again.status}`);
    const balance = await request("GET", `${api}/api/wallet/balance`, { token });
    expect(balance.json.balance === 4000 && balance.json.lockedBalance === 0 && balance.json.totalWithdrawn === 200_000, `balance ${balance.text}`);
  },

  async "a partial refund takes back only its share, then a full refund the rest"() {
    const user = `e2e-refund-${Date.now()}`;
    const token = signToken(user, "user", secret, 1);
    const order = await request("POST", `${api}/api/payment/midtrans/create`, { token, body: { packageId: "pkg_1000" } });
    const { orderId } = order.json;
    await request("POST", `${simUrl}/_sim/midtrans/${orderId}/notify`, { body: { transaction_status: "settlement" } });
    const partial = await request("POST", `${simUrl}/_sim/midtrans/${orderId}/notify`, { body: { transaction_status: "partial_refund", refund_amount: 10_000 } });
    expect(partial.json?.delivered?.body?.outcome === "reversed", `partial ${partial.text}`);
    let balance = await request("GET", `${api}/api/wallet/balance`, { token });
    expect(balance.json.balance === 1014, `after partial ${balance.text}`);
    const replay = await request("POST", `${simUrl}/_sim/midtrans/${orderId}/replay`, { body: {} });
    expect(replay.json?.delivered?.body?.outcome === "duplicate", `replay ${replay.text}`);
    const full = await request("POST", `${simUrl}/_sim/midtrans/${orderId}/notify`, { body: { transaction_status: "refund" } });
    expect(full.json?.delivered?.body?.outcome === "reversed", `full ${full.text}`);
    balance = await request("GET", `${api}/api/wallet/balance`, { token });
    expect(balance.json.balance === 0, `after full ${balance.text}`);
  },

  async "a user flooding activity with random campaign ids is refused; the day's batch still pays everyone else"() {
    const admin = signToken("e2e-admin", "admin", secret, 1);
    const advertiser = `e2e-adv-${Date.now()}`;
    const advToken = signToken(advertiser, "user", secret, 1);
    const campaign = await request("POST", `${api}/api/campaigns`, { token: advToken, body: { name: "e2e campaign", rateFeeIdr: 5 } });
    expect(campaign.status === 201, `campaign ${campaign.text}`);
    const deposit = await request("POST", `${api}/api/campaigns/${campaign.json.id}/deposit`, { token: advToken, body: { amount: 100_000 } });
    await request("POST", `${simUrl}/_sim/midtrans/${deposit.json.orderId}/notify`, { body: { transaction_status: "settlement" } });
    const flooder = signToken(`e2e-flood-${Date.now()}`, "user", secret, 1);
    const random = () => Array.from({ length: 26 }, () => "0123456789ABCDEFGHJKMNPQRSTVWXYZ"[Math.floor(Math.random() * 32)]).join("");
    for (let r = 0; r < 5; r++) {
      const flood = await request("POST", `${api}/api/activity`, { token: flooder, body: { events: Array.from({ length: 50 }, () => ({ type: "view", campaignId: random() })) } });
      expect(flood.status === 422 && flood.json.code === "unknown_campaign", `flood ${flood.status} ${flood.text.slice(0, 200)}`);
    }
    const workers = Array.from({ length: 3 }, (_, i) => ({ id: `e2e-worker-${i}-${Date.now()}` }));
    for (const w of workers) {
      w.token = signToken(w.id, "user", secret, 1);
      const ok = await request("POST", `${api}/api/activity`, { token: w.token, body: { events: [{ type: "view", count: 3, campaignId: campaign.json.id }, { type: "like", count: 1, campaignId: campaign.json.id }] } });
      expect(ok.status === 202, `activity ${ok.text}`);
    }
    // The cron at 00:15 WIB tomorrow runs the business day of now (the day comes from the scheduled time).
    const wib = 7 * 3_600_000;
    const tomorrow = Math.floor((Date.now() + wib) / 86_400_000) * 86_400_000 + 86_400_000 - wib;
    const day = new Date(tomorrow - 86_400_000 + wib).toISOString().slice(0, 10);
    const fired = await fetch(`${api}/__scheduled?cron=${encodeURIComponent(DAILY_CRON)}&time=${tomorrow + 15 * 60_000}`);
    expect(fired.ok, `scheduled ${fired.status}`);
    let progress;
    for (let i = 0; i < 120; i++) {
      progress = await request("GET", `${api}/api/admin/batches/${day}`, { token: admin });
      if (progress.json?.status === "done") break;
      await sleep(500);
    }
    expect(progress.json?.status === "done", `batch ${progress.text}`);
    for (const w of workers) {
      const balance = await request("GET", `${api}/api/wallet/balance`, { token: w.token });
      expect(balance.json.idrBalance === 20, `worker paid ${balance.text}`);
    }
    // The day is closed now: late activity for it is refused rather than silently unpaid.
    const late = await request("POST", `${api}/api/activity`, { token: workers[0].token, body: { events: [{ type: "view" }] } });
    expect(late.status === 422 && late.json.code === "day_closed", `late ${late.status} ${late.text}`);
  },

  async "the ledger reconciles"() {
    const admin = signToken("e2e-admin", "admin", secret, 1);
    const check = await request("GET", `${api}/api/admin/ledger/check`, { token: admin });
    expect(check.json?.ok === true, `ledger: ${check.text}`);
  },
};

process.on("SIGINT", () => {
  shutdown();
  process.exit(130);
});
try {
  await waitReady();
  for (const [name, fn] of Object.entries(scenarios)) await check(name, fn);
} catch (error) {
  console.log(`FAIL e2e setup\n     ${error.message}`);
  results.push(["setup", false]);
} finally {
  shutdown();
}
const failed = results.filter(([, ok]) => !ok).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
