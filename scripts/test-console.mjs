#!/usr/bin/env node
// The admin console in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
// starts the service the way `npm start` does (fresh local state), prepares a fraud alert, a pending
// KYC submission and a held payout through the API (the payout row is written into the local D1, as
// the daily batch would), then signs in, runs the ledger check (ok, then FAILED on a balance skewed in
// the local D1, then ok again), reviews the alert, verifies the KYC, releases the payout and freezes a
// user in the browser — and checks every outcome through the API.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { signToken } from "./dev-token.mjs";
import { ensureDevVars } from "./dev-vars.mjs";
import { request, startLocalService } from "./local-service.mjs";

const service = startLocalService({
  name: "console",
  port: Number(process.env.CONSOLE_TEST_PORT ?? 8787 + 40),
  simPort: Number(process.env.CONSOLE_TEST_SIM_PORT ?? 8790 + 40),
  extraVars: ["RAPID_TRANSACTIONS_PER_MINUTE:1"],
});
const { api, simUrl, persist } = service;
const secret = ensureDevVars().JWT_SECRET;
const PNG_1X1 = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==", "base64");
const PNG_2X1 = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAADklEQVR4nGP4z8DwH4QBEfcD/ePF9e8AAAAASUVORK5CYII=", "base64");
const executablePath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const shutdown = () => service.stop();

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

const waitReady = () => service.ready();

/** Writes into the running service's local D1 (what the daily batch would have written). */
function d1(sql) {
  const r = spawnSync(process.execPath, ["node_modules/wrangler/bin/wrangler.js", "d1", "execute", "DB", "--local", "--persist-to", persist, "--command", sql], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`d1 execute failed: ${r.stderr || r.stdout}`);
}

async function prepare() {
  const stamp = Date.now();
  const admin = signToken(`console-admin-${stamp}`, "admin", secret, 1);
  const user = (name) => ({ id: `${name}-${stamp}`, token: signToken(`${name}-${stamp}`, "user", secret, 1) });
  const [rapid, friend, kyc, worker, advertiser] = [user("rapid"), user("friend"), user("kyc"), user("worker"), user("adv")];
  for (const u of [rapid, friend, kyc, worker, advertiser]) await request("GET", `${api}/api/wallet/balance`, { token: u.token });

  // An alert: two transfers in a minute with RAPID_TRANSACTIONS_PER_MINUTE=1.
  expect((await request("POST", `${api}/api/admin/adjustments`, { token: admin, body: { userId: rapid.id, asset: "COIN", amount: 100, reason: "console test" } })).status === 201, "funding");
  for (let i = 0; i < 2; i++) await request("POST", `${api}/api/wallet/transfer`, { token: rapid.token, body: { toUserId: friend.id, amount: 1 } });
  const alerts = await request("GET", `${api}/api/fraud/alerts?userId=${rapid.id}`, { token: admin });
  const alert = alerts.json.items.find((a) => a.alertType === "rapid_transactions");
  expect(alert, `no alert: ${alerts.text}`);

  // A pending KYC submission with two photos.
  const form = new FormData();
  form.set("idType", "ktp");
  form.set("idNumber", "3171234567890123");
  // Real 1×1 and 2×1 PNGs, so the browser can decode and size what the console shows.
  form.set("idPhoto", new File([PNG_1X1], "id.png", { type: "image/png" }));
  form.set("selfiePhoto", new File([PNG_2X1], "me.png", { type: "image/png" }));
  expect((await request("POST", `${api}/api/wallet/kyc/submit`, { token: kyc.token, form })).status === 201, "kyc submit");

  // A held payout from a funded campaign.
  const campaign = await request("POST", `${api}/api/campaigns`, { token: advertiser.token, body: { name: "console" } });
  const deposit = await request("POST", `${api}/api/campaigns/${campaign.json.id}/deposit`, { token: advertiser.token, body: { amount: 50_000 } });
  await request("POST", `${simUrl}/_sim/midtrans/${deposit.json.orderId}/notify`, { body: { transaction_status: "settlement" } });
  const payoutId = `PO-CONSOLE-${stamp}`;
  d1(`insert into payouts (id, day, user_id, campaign_id, advertiser_id, units, amount_idr, fee_idr, status, created_at) values ('${payoutId}', '2026-01-05', '${worker.id}', '${campaign.json.id}', '${advertiser.id}', 40, 200, 20, 'held', ${Date.now()})`);
  return { admin, alert, kyc, worker, rapid, payoutId };
}

async function main() {
  expect(existsSync(executablePath), `no Chromium at ${executablePath} (apt-get install -y chromium)`);
  await waitReady();
  const s = await prepare();
  const browser = await chromium.launch({ executablePath, args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
  const results = [];
  const step = async (name, fn) => {
    await fn();
    results.push(name);
    console.log(`ok   ${name}`);
  };
  try {
    const page = await browser.newPage();
    await step("no session: the console redirects to the login page", async () => {
      await page.goto(`${api}/admin/alerts`);
      expect(page.url().endsWith("/admin/login"), `at ${page.url()}`);
    });
    await step("a user token is refused", async () => {
      await page.fill("input[name=token]", signToken("not-an-admin", "user", secret, 1));
      await page.click("button[type=submit]");
      expect(page.url().includes("/admin/login?error="), `at ${page.url()}`);
    });
    await step("an admin signs in: HttpOnly, Secure, SameSite=Strict session; the overview shows charts and the kept ledger check, run now on request", async () => {
      await page.fill("input[name=token]", s.admin);
      await page.click("button[type=submit]");
      await page.waitForURL(`${api}/admin`);
      const cookie = (await page.context().cookies()).find((c) => c.name === "admin_session");
      expect(cookie?.httpOnly && cookie.secure && cookie.sameSite === "Strict", `cookie ${JSON.stringify(cookie)}`);
      expect((await page.locator("svg[role=img]").count()) === 4, "four charts");
      // A fresh service has no kept report (the daily cron has not run): viewing the page scans nothing.
      const before = await page.textContent("#ledger strong");
      expect(before === "not run yet", `ledger before: ${before}`);
      await page.locator("#ledger button[type=submit]").click();
      await page.waitForSelector(".flash.ok");
      const after = await page.textContent("#ledger");
      expect((await page.textContent("#ledger strong")) === "ok" && /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/.test(after), `ledger after: ${after}`);
    });
    await step("a ledger that does not add up: Check now says FAILED and raises the critical alert; once fixed, the next check is ok", async () => {
      // A balance no posting explains (what a bug or a manual edit would leave), written into the local D1.
      const wallet = `usr:${s.worker.id}:COIN`;
      d1(`update accounts set balance = balance + 7 where id = '${wallet}'`);
      try {
        await page.goto(`${api}/admin`);
        await page.locator("#ledger button[type=submit]").click();
        await page.waitForSelector(".flash.err");
        const flash = await page.textContent(".flash.err");
        expect(/FAILED/.test(flash), `flash: ${flash}`);
        expect((await page.textContent("#ledger strong")) === "FAILED", `ledger: ${await page.textContent("#ledger")}`);
        await page.goto(`${api}/admin/alerts?status=open`);
        expect((await page.locator("tr[data-alert]", { hasText: "ledger_check_failed" }).count()) === 1, "one ledger_check_failed alert listed");
        const alerts = (await request("GET", `${api}/api/fraud/alerts`, { token: s.admin })).json.items.filter((a) => a.alertType === "ledger_check_failed");
        expect(alerts.length === 1 && alerts[0].severity === "critical", `alerts ${JSON.stringify(alerts)}`);
      } finally {
        d1(`update accounts set balance = balance - 7 where id = '${wallet}'`);
      }
      await page.goto(`${api}/admin`);
      await page.locator("#ledger button[type=submit]").click();
      await page.waitForSelector(".flash.ok");
      expect((await page.textContent("#ledger strong")) === "ok", `ledger after the fix: ${await page.textContent("#ledger")}`);
    });
    await step("review the alert: resolved, user frozen", async () => {
      await page.goto(`${api}/admin/alerts?status=open`);
      const row = page.locator(`tr[data-alert="${s.alert.id}"]`);
      await row.locator("select[name=status]").selectOption("resolved");
      await row.locator("select[name=action]").selectOption("frozen");
      await row.locator("button[type=submit]").click();
      await page.waitForSelector(".flash.ok");
      const alert = (await request("GET", `${api}/api/fraud/alerts?userId=${s.rapid.id}`, { token: s.admin })).json.items.find((a) => a.id === s.alert.id);
      expect(alert.status === "resolved" && alert.actionTaken === "frozen", `alert ${JSON.stringify(alert)}`);
      const user = await request("GET", `${api}/api/admin/users/${s.rapid.id}`, { token: s.admin });
      expect(user.json.status === "frozen", `user ${user.text}`);
    });
    await step("verify the KYC submission, both photos shown decrypted", async () => {
      await page.goto(`${api}/admin/kyc`);
      const card = page.locator(`[data-kyc="${s.kyc.id}"]`);
      // Decoded by the browser: the images have their real sizes (the stored objects are encrypted).
      for (const [alt, width] of [["ID photo", 1], ["Selfie", 2]]) {
        const img = card.locator(`img[alt="${alt}"]`);
        await img.evaluate((el) => (el.complete ? null : new Promise((r) => el.addEventListener("load", r, { once: true }))));
        const natural = await img.evaluate((el) => el.naturalWidth);
        expect(natural === width, `${alt}: naturalWidth ${natural}, expected ${width}`);
      }
      await card.locator("select[name=decision]").selectOption("verified");
      await card.locator("button[type=submit]").click();
      await page.waitForSelector(".flash.ok");
      const status = await request("GET", `${api}/api/wallet/kyc/status`, { token: s.kyc.token });
      expect(status.json.status === "verified", `kyc ${status.text}`);
    });
    await step("release the held payout: the worker is paid Rp 200 from the campaign", async () => {
      await page.goto(`${api}/admin/payouts`);
      await page.locator(`tr[data-payout="${s.payoutId}"] button:has-text("Release")`).click();
      await page.waitForSelector(".flash.ok");
      const balance = await request("GET", `${api}/api/wallet/balance`, { token: s.worker.token });
      expect(balance.json.idrBalance === 200, `worker ${balance.text}`);
    });
    await step("a user's page: unfreeze with a reason", async () => {
      await page.goto(`${api}/admin/users?id=${s.rapid.id}`);
      expect((await page.textContent(".user-status")) === "frozen", "shows frozen");
      await page.fill("input[name=reason]", "reviewed, legitimate");
      await page.click("button:has-text('Unfreeze')");
      await page.waitForSelector(".flash.ok");
      expect((await request("GET", `${api}/api/admin/users/${s.rapid.id}`, { token: s.admin })).json.status === "active", "unfrozen");
    });
    await step("a form without the CSRF token is refused", async () => {
      // Posted from the signed-in page itself (the session cookie goes along), only the token is missing.
      const status = await page.evaluate(async (url) => (await fetch(url, { method: "POST", body: new URLSearchParams({ status: "frozen", reason: "forged" }) })).status, `${api}/admin/users/${s.rapid.id}/status`);
      expect(status === 403, `status ${status}`);
      expect((await request("GET", `${api}/api/admin/users/${s.rapid.id}`, { token: s.admin })).json.status === "active", "still active");
    });
    await step("sign out ends the session on the server; Back does not bring a page back from the cache", async () => {
      await page.goto(`${api}/admin/users`);
      const session = (await page.context().cookies()).find((c) => c.name === "admin_session");
      await page.click("button:has-text('Sign out')");
      await page.waitForURL(`${api}/admin/login`);
      await page.goBack();
      expect(page.url().endsWith("/admin/login") || (await page.locator("input[name=token]").count()) === 1, `Back showed ${page.url()}`);
      await page.goto(`${api}/admin/payouts`);
      expect(page.url().endsWith("/admin/login"), `at ${page.url()}`);
      // A copy of the cookie kept from before sign-out opens nothing in another browser.
      const other = await browser.newContext();
      await other.addCookies([session]);
      const elsewhere = await other.newPage();
      await elsewhere.goto(`${api}/admin/users`);
      expect(elsewhere.url().endsWith("/admin/login"), `the old cookie opened ${elsewhere.url()}`);
      await other.close();
    });
    await step("the API reference renders every operation from /openapi.json, offline, served by the Worker", async () => {
      const external = [];
      page.on("request", (r) => !r.url().startsWith(api) && !r.url().startsWith("data:") && external.push(r.url()));
      await page.goto(`${api}/docs`);
      await page.waitForSelector(".opblock", { timeout: 30_000 });
      const spec = (await request("GET", `${api}/openapi.json`)).json;
      const operations = Object.values(spec.paths).reduce((n, item) => n + Object.keys(item).length, 0);
      // An operation with two tags is shown under both: count distinct method + path pairs.
      const shown = new Set(
        await page.locator(".opblock").evaluateAll((els) => els.map((el) => `${el.querySelector(".opblock-summary-method")?.textContent} ${el.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`)),
      ).size;
      expect(shown === operations, `${shown} operations shown, ${operations} in the spec`);
      expect(external.length === 0, `requests outside the service: ${external.join(", ")}`);
    });
    const ledger = await request("GET", `${api}/api/admin/ledger/check`, { token: s.admin });
    expect(ledger.json.ok === true, `ledger ${ledger.text}`);
    console.log(`${results.length} passed, 0 failed`);
  } finally {
    await browser.close();
  }
}

main()
  .then(() => {
    shutdown();
    process.exit(0);
  })
  .catch((error) => {
    console.error(`FAIL ${error.message}`);
    shutdown();
    process.exit(1);
  });
