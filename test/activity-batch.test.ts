import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { createDb } from "../src/db/client";
import { campaignAccountId, systemAccountId } from "../src/ledger/accounts";
import { applyPlan } from "../src/ledger/executor";
import { movePlan } from "../src/ledger/plan";
import { newId } from "../src/lib/ids";
import { dayStart, previousBusinessDay, addDays, businessDay } from "../src/lib/time";
import worker from "../src/index";
import { DAILY_BATCH_CRON } from "../src/jobs/crons";
import { handleBatchMessage } from "../src/jobs/daily-batch";
import { campaignsById, capLines, earnedLine, payLine } from "../src/jobs/batch-payouts";
import { adjust, adminToken, balanceOf, call, d1Stats, expectLedgerOk, expectProblem, newUser, verifiedUser } from "./helpers";

const config = loadConfig({});

async function fundCampaign(campaignId: string, amount: number) {
  const now = Date.now();
  await applyPlan(
    createDb(env.DB),
    movePlan({ tx: { id: newId(now), type: "adjustment", asset: "IDR", amount, userId: null }, from: systemAccountId("adjustments", "IDR"), to: campaignAccountId(campaignId), audit: { actorId: "test", action: "fund", subjectType: "campaign", subjectId: campaignId }, now }),
  );
}

/** Activity on a past day goes straight into the user's real Durable Object (the API only takes the last 10 minutes). */
async function seedDay(userId: string, day: string, perMinute: { minutes: number; count: number; campaignId?: string; type?: "view" | "like" | "comment" }[]) {
  const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(userId));
  const start = dayStart(day, "+07:00") + 3_600_000;
  const events = perMinute.flatMap((p, block) =>
    Array.from({ length: p.minutes }, (_, m) => ({ type: p.type ?? ("view" as const), campaignId: p.campaignId, count: p.count, at: start + (block * 100 + m) * 60_000 })),
  );
  const result = await stub.record(events, { tzOffset: "+07:00", retentionDays: 7, now: start + 86_400_000, maxCampaignsPerDay: 50 });
  if (result.refused !== undefined) throw new Error(`seeding refused: ${result.refused}`);
  for (const d of result.newDays) await env.DB.prepare("insert or ignore into activity_days (day, user_id, created_at) values (?, ?, ?)").bind(d, userId, Date.now()).run();
}

async function runAndWait(day: string) {
  const token = await adminToken();
  const started = await call("POST", `/api/admin/batches/${day}/run`, { token });
  expect(started.status, started.text).toBe(202);
  // Who started it is on record: the run moves money and can ban.
  expect(await env.DB.prepare("select actor_id from audit_log where action = 'batch.run' and subject_id = ? order by id desc").bind(day).first()).toEqual({ actor_id: "admin-root" });
  for (let i = 0; i < 200; i++) {
    const progress = await call("GET", `/api/admin/batches/${day}`, { token });
    if (progress.json.status === "done") return progress.json;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("batch did not finish");
}

const idrOf = async (accountId: string) => (await env.DB.prepare("select balance from accounts where id = ?").bind(accountId).first<{ balance: number }>())!.balance;

describe("POST /api/activity", () => {
  it("counts events per minute, ignores repeated ids and shows today's rate", async () => {
    const user = await newUser("act");
    const events = [{ id: "e1", type: "view" }, { id: "e2", type: "like", count: 3 }, { id: "e1", type: "view" }, { type: "comment" }];
    const res = await call("POST", "/api/activity", { token: user.token, body: { events } });
    expect(res.status, res.text).toBe(202);
    expect(res.json).toEqual({ accepted: 3, duplicates: 1 });
    const again = await call("POST", "/api/activity", { token: user.token, body: { events: [{ id: "e2", type: "like", count: 3 }] } });
    expect(again.json).toEqual({ accepted: 0, duplicates: 1 });
    const me = await call("GET", "/api/activity/me", { token: user.token });
    expect(me.json.activeMinutes).toBeGreaterThanOrEqual(1);
    expect(me.json.minutes.reduce((a: number, m: any) => a + m.rate, 0)).toBe(5);
    const day = businessDay(Date.now(), "+07:00");
    const known = await env.DB.prepare("select count(*) as n from activity_days where day = ? and user_id = ?").bind(day, user.id).first<{ n: number }>();
    expect(known?.n).toBe(1);
  });

  it("activity links devices too: accounts that only earn, reporting from one fingerprint, raise suspicious_device; a known device costs no extra round trip", async () => {
    const fp = `farm-${Date.now().toString(36)}`;
    const headers = { "x-device-fingerprint": fp, "user-agent": "farm/1" };
    for (let i = 0; i < 5; i++) {
      const earner = await newUser("farm");
      const d1 = d1Stats();
      const res = await call("POST", "/api/activity", { token: earner.token, headers, body: { events: [{ id: `f${i}`, type: "view" }] }, d1 });
      expect(res.status, res.text).toBe(202);
      expect(d1.roundTrips).toBe(1);
      if (i === 0) {
        const again = d1Stats();
        await call("POST", "/api/activity", { token: earner.token, headers, body: { events: [{ id: "g0", type: "view" }] }, d1: again });
        expect(again).toMatchObject({ roundTrips: 1, statements: d1.statements - 2 });
      }
    }
    // A report refused before its batch (out of the time window, or an invalid body) still records the device once.
    for (const body of [{ events: [{ id: "old", type: "view", at: new Date(Date.now() - 3_600_000).toISOString() }] }, { events: [] }]) {
      const late = await newUser("farm-late");
      expect((await call("POST", "/api/activity", { token: late.token, headers, body })).status).toBe(400);
      expect((await call("POST", "/api/activity", { token: late.token, headers, body: { events: [{ id: "ok", type: "view" }] } })).status).toBe(202);
      const pair = await env.DB.prepare("select count(*) as n from device_accounts where fingerprint = ? and user_id = ?").bind(fp, late.id).first<{ n: number }>();
      expect(pair!.n).toBe(1);
    }
    const seen = await env.DB.prepare("select count(*) as n from device_accounts where fingerprint = ?").bind(fp).first<{ n: number }>();
    expect(seen!.n).toBe(7);
    const alerts = await env.DB.prepare("select count(*) as n from fraud_alerts where device_fingerprint = ? and alert_type = 'suspicious_device'").bind(fp).first<{ n: number }>();
    expect(alerts!.n).toBe(4); // the 4th account on and every one after it
  });

  it("refuses hostile input", async () => {
    const user = await newUser("act");
    const old = new Date(Date.now() - 11 * 60_000).toISOString();
    for (const body of [
      { events: [] },
      { events: Array.from({ length: 501 }, () => ({ type: "view" })) },
      { events: [{ type: "scroll" }] },
      { events: [{ type: "view", count: 0 }] },
      { events: [{ type: "view", count: 1001 }] },
      { events: [{ type: "view", count: 1.5 }] },
      { events: [{ type: "view", at: old }] },
      { events: [{ type: "view", at: new Date(Date.now() + 5 * 60_000).toISOString() }] },
      { events: [{ type: "view", id: "a".repeat(65) }] },
      { events: "lots" },
    ]) {
      expectProblem(await call("POST", "/api/activity", { token: user.token, body }), 400, "validation_failed");
    }
    // A campaign id that names no campaign, however it is spelled, is 422 unknown_campaign (SPEC §8), listed.
    for (const campaignId of ["x' OR 1=1", "summer-sale"]) {
      const res = await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view", campaignId }] } });
      expectProblem(res, 422, "unknown_campaign");
      expect(JSON.stringify(res.json.errors)).toContain(JSON.stringify(campaignId).slice(1, -1));
    }
    expectProblem(await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view", campaignId: "c".repeat(65) }] } }), 400, "validation_failed");
    expect((await call("GET", "/api/activity/me", { token: user.token })).json.activeMinutes).toBe(0);
  });
});

describe("daily batch", () => {
  it("pays level C from campaign budgets with the fee on top, holds B, bans A; a rerun changes nothing", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -1);
    const advertiser = await newUser("adv");
    const rich = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "rich", rateFeeIdr: 7 } })).json.id;
    const poor = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "poor" } })).json.id;
    await fundCampaign(rich, 1000);
    await fundCampaign(poor, 20);
    const normal = await newUser("norm");
    const busy = await newUser("busy");
    const bot = await newUser("bot");
    // normal: 10 minutes × 3 views (R̄ 3): 20 units for `rich`, 10 for `poor` → C
    await seedDay(normal.id, day, [{ minutes: 5, count: 4, campaignId: rich }, { minutes: 5, count: 2, campaignId: poor }]);
    // busy: R̄ exactly 8 = μ + 2σ with the fallback μ 4, σ 2 (fewer than 30 users) → B
    await seedDay(busy.id, day, [{ minutes: 4, count: 8, campaignId: rich }]);
    // bot: R̄ 50 → A
    await seedDay(bot.id, day, [{ minutes: 20, count: 50, campaignId: rich }]);

    const progress = await runAndWait(day);
    expect(progress).toMatchObject({ activeUsers: 3, collected: 3, classified: 3, levels: { A: 1, B: 1, C: 1 } });
    expect(progress.params).toMatchObject({ mu: 4, sigma: 2, source: "fallback_small_population" });
    expect(progress.payouts).toMatchObject({ paid: { count: 1, amountIdr: 140, feeIdr: 14 }, insufficient_budget: { count: 1 }, held: { count: 1, amountIdr: 224 } });

    expect((await balanceOf(normal.token)).idrBalance).toBe(140);
    expect(await idrOf(campaignAccountId(rich))).toBe(1000 - 154);
    expect(await idrOf(campaignAccountId(poor))).toBe(20);
    expect((await balanceOf(busy.token)).idrBalance).toBe(0);
    const banned = await call("POST", "/api/wallet/transfer", { token: bot.token, body: { toUserId: normal.id, amount: 1 } });
    expectProblem(banned, 403, "account_banned");
    const alerts = await env.DB.prepare("select alert_type, severity from fraud_alerts where user_id in (?, ?)").bind(busy.id, bot.id).all();
    expect(alerts.results).toEqual(expect.arrayContaining([{ alert_type: "bot_level_B", severity: "high" }, { alert_type: "bot_level_A", severity: "critical" }]));

    const classes = await call("GET", `/api/admin/bot-classifications?date=${day}&level=B`, { token: await adminToken() });
    expect(classes.json.items.map((i: any) => i.userId)).toContain(busy.id);
    expect(classes.json.items.find((i: any) => i.userId === busy.id)).toMatchObject({ rbar: 8, z: 2, level: "B", action: "held" });

    // A rerun (and the cron for the same day) pays nobody twice, and bans nobody again.
    const botRow = () => env.DB.prepare("select status, updated_at from users where id = ?").bind(bot.id).first<{ status: string; updated_at: number }>();
    const bans = async () => (await env.DB.prepare("select count(*) as n from audit_log where subject_id = ? and action = 'fraud.action_level_4'").bind(bot.id).first<{ n: number }>())!.n;
    const bannedBefore = await botRow();
    expect(await bans()).toBe(1);
    const again = await runAndWait(day);
    expect(await botRow()).toEqual(bannedBefore);
    expect(await bans()).toBe(1);
    expect(again.payouts).toEqual(progress.payouts);
    expect(again.runs).toBe(2);
    expect((await balanceOf(normal.token)).idrBalance).toBe(140);
    expect(await idrOf(campaignAccountId(rich))).toBe(846);

    // The held payout: a user sees it; an admin releases it once (payout + 10% from the budget).
    const mine = await call("GET", "/api/payouts", { token: busy.token });
    const held = mine.json.items.find((p: any) => p.kind === "payout" && p.status === "held");
    expect(held).toMatchObject({ amountIdr: 224, feeIdr: 22, units: 32 });
    const token = await adminToken();
    // Admins list held payouts across days (SPEC §7: date and status are filters).
    const allHeld = await call("GET", "/api/admin/payouts?status=held&limit=100", { token });
    expect(allHeld.status, allHeld.text).toBe(200);
    expect(allHeld.json.items.map((p: any) => p.id)).toContain(held.id);
    const [r1, r2] = await Promise.all([call("POST", `/api/admin/payouts/${held.id}/release`, { token }), call("POST", `/api/admin/payouts/${held.id}/release`, { token })]);
    expect([r1.status, r2.status].sort()).toEqual([200, 409]);
    expect((await balanceOf(busy.token)).idrBalance).toBe(224);
    expect(await idrOf(campaignAccountId(rich))).toBe(846 - 246);
    expectProblem(await call("POST", `/api/admin/payouts/${held.id}/reject`, { token }), 409, "conflict");
    expectProblem(await call("POST", `/api/admin/payouts/po_nothing/release`, { token }), 404, "not_found");
    expectProblem(await call("POST", `/api/admin/batches/${businessDay(Date.now(), "+07:00")}/run`, { token }), 409, "conflict");
    expectProblem(await call("GET", `/api/admin/batches/2020-02-30`, { token }), 400, "validation_failed");
    await expectLedgerOk();
  });

  it("the cron derives its day from the scheduled time and runs through the queue, and checks the ledger", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -3);
    const user = await newUser("cron");
    await seedDay(user.id, day, [{ minutes: 3, count: 2 }]);
    const scheduledTime = dayStart(addDays(day, 1), "+07:00") + 5 * 60_000;
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: DAILY_BATCH_CRON, scheduledTime }), env, ctx);
    await waitOnExecutionContext(ctx);
    // The same cron checks the ledger and keeps the report.
    expect(await env.DB.prepare("SELECT ok FROM ledger_checks WHERE checked_at = ?").bind(scheduledTime).first()).toEqual({ ok: 1 });
    const token = await adminToken();
    for (let i = 0; i < 200; i++) {
      const p = await call("GET", `/api/admin/batches/${day}`, { token });
      if (p.json.status === "done") {
        expect(p.json.collected).toBeGreaterThanOrEqual(1);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("cron batch did not finish");
  });

  it("GET /__scheduled fires a cron at a chosen time in development, and is an ordinary unknown path otherwise", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -4);
    const user = await newUser("cron-dev");
    await seedDay(user.id, day, [{ minutes: 2, count: 1 }]);
    const scheduledTime = dayStart(addDays(day, 1), "+07:00") + 15 * 60_000;
    const url = `http://localhost/__scheduled?cron=${encodeURIComponent(DAILY_BATCH_CRON)}&time=${scheduledTime}`;
    const elsewhere = await worker.fetch(new Request(url), { ...env, ENVIRONMENT: "production" }, createExecutionContext());
    expect(elsewhere.status).not.toBe(200);
    const token = await adminToken();
    expect((await call("GET", `/api/admin/batches/${day}`, { token })).status).toBe(404);
    const ctx = createExecutionContext();
    const fired = await worker.fetch(new Request(url), env, ctx);
    expect(fired.status).toBe(200);
    await waitOnExecutionContext(ctx);
    expect((await call("GET", `/api/admin/batches/${day}`, { token })).status).toBe(200);
    expect((await worker.fetch(new Request("http://localhost/__scheduled?time=-5"), env, createExecutionContext())).status).toBe(400);
  });
});

describe("GET /api/payouts", () => {
  it("pages through every payout and withdrawal of the caller, newest first, each once (SPEC §3 pagination)", async () => {
    const user = await verifiedUser("many-payouts");
    const now = Date.now();
    // 105 payouts, many sharing a creation time (one batch writes a day's lines at once), and two withdrawals.
    await env.DB.batch(
      Array.from({ length: 105 }, (_, i) =>
        env.DB.prepare("insert into payouts (id, day, user_id, campaign_id, advertiser_id, units, amount_idr, fee_idr, capped_idr, status, created_at) values (?, ?, ?, 'cmp-x', 'adv-x', 1, 5, 0, 0, 'rejected', ?)")
          .bind(`po_${user.id}_${String(i).padStart(3, "0")}`, addDays("2024-01-01", i), user.id, now - 1000 * Math.floor(i / 10)),
      ),
    );
    await adjust(user.id, 2000);
    for (const key of ["w1", "w2"]) expect((await call("POST", "/api/wallet/withdraw", { token: user.token, body: { asset: "COIN", amount: 500 }, headers: { "idempotency-key": `${key}-${user.id}` } })).status).toBe(202);
    const seen: { kind: string; id: string; createdAt: string }[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await call("GET", `/api/payouts?limit=20${cursor ? `&cursor=${cursor}` : ""}`, { token: user.token });
      expect(page.status, page.text).toBe(200);
      expect(page.json.items.length).toBeLessThanOrEqual(20);
      seen.push(...page.json.items);
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(107);
    expect(new Set(seen.map((i) => `${i.kind}:${i.id}`)).size).toBe(107);
    expect(seen.slice(0, 2).map((i) => i.kind)).toEqual(["withdrawal", "withdrawal"]);
    const times = seen.map((i) => Date.parse(i.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expectProblem(await call("GET", "/api/payouts?cursor=bm9wZQ", { token: user.token }), 400, "validation_failed");
    expectProblem(await call("GET", "/api/payouts?limit=101", { token: user.token }), 400, "validation_failed");
  });
});

describe("daily batch at chunk size", () => {
  it("pays full queue chunks of 100 users (every query stays under D1's 100 bound parameters)", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -5);
    const advertiser = await newUser("adv");
    const campaign = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "wide" } })).json.id;
    await fundCampaign(campaign, 10_000_000);
    const now = Date.now();
    const ids = Array.from({ length: 150 }, (_, i) => `chunk-${now}-${String(i).padStart(3, "0")}`);
    // (The users' accounts come with them: migration 0010's trigger.)
    const stmts = ids.flatMap((id, i) => [
      env.DB.prepare("insert into users (id, status, kyc_status, verification_required, created_at, updated_at) values (?, 'active', 'none', 0, ?, ?)").bind(id, now, now),
      env.DB.prepare("insert into activity_days (day, user_id, created_at) values (?, ?, ?)").bind(day, id, now),
      // R̄ 3 or 4 with 10 active minutes: all level C under the fallback μ 4, σ 2 is not used here (150 ≥ 30): robust μ 3.5.
      env.DB.prepare("insert into daily_activity (day, user_id, active_minutes, weighted_units, rbar, campaign_units) values (?, ?, 10, ?, ?, ?)").bind(day, id, 30 + 10 * (i % 2), 3 + (i % 2), JSON.stringify({ [campaign]: 30 + 10 * (i % 2) })),
    ]);
    for (let i = 0; i < stmts.length; i += 48) await env.DB.batch(stmts.slice(i, i + 48));
    const progress = await runAndWait(day);
    // Fan-out steps of 120 users (QUEUE_FANOUT_PAGE in the tests): 100 + 20, then 30.
    expect(progress).toMatchObject({ activeUsers: 150, collected: 150, classified: 150, queueMessages: 3 });
    const expected = ids.reduce((sum, _, i) => sum + (30 + 10 * (i % 2)) * 5, 0);
    expect(progress.payouts.paid).toMatchObject({ count: 150, amountIdr: expected });
    await expectLedgerOk();
  });
});

/** Writes minutes with chosen timestamps straight into the user's real Durable Object. */
async function seedMinutes(userId: string, day: string, minutes: { minute: number; count: number; campaignId?: string }[]) {
  const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(userId));
  const start = dayStart(day, "+07:00");
  const events = minutes.map((m) => ({ type: "view" as const, campaignId: m.campaignId, count: m.count, at: start + m.minute * 60_000 }));
  for (let i = 0; i < events.length; i += 500) {
    const result = await stub.record(events.slice(i, i + 500), { tzOffset: "+07:00", retentionDays: 7, now: start + 86_400_000, maxCampaignsPerDay: 50 });
    if (result.refused !== undefined) throw new Error(`seeding refused: ${result.refused}`);
  }
  await env.DB.prepare("insert or ignore into activity_days (day, user_id, created_at) values (?, ?, ?)").bind(day, userId, Date.now()).run();
}

describe("volume, regularity and the daily cap (issue #15)", () => {
  it("a pacing bot at a normal rate for 16 hours among 40 people ends held with a high alert naming the signal, not paid; the people are paid", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -7);
    const advertiser = await newUser("adv15");
    const campaign = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "pacing" } })).json.id;
    await fundCampaign(campaign, 1_000_000);
    const people = [];
    for (let i = 0; i < 40; i++) {
      const person = await newUser(`person${i}`);
      // Three sessions a day (morning, lunch, evening) of 8–20 minutes, each person with their own pace and bursts.
      const base = 3 + (i % 4);
      const length = 8 + ((i * 7) % 13);
      const minutes = [8 + (i % 4), 13, 20 + (i % 3)].flatMap((hour, s) =>
        Array.from({ length }, (_, m) => ({ minute: hour * 60 + s * 7 + m, count: Math.max(1, base + ((m * 3 + i) % 5) - 2), campaignId: campaign })),
      );
      await seedMinutes(person.id, day, minutes);
      people.push(person);
    }
    // The bot: 4 views every minute from 06:00 to 22:00 — R̄ 4, the people's median pace.
    const bot = await newUser("pacer");
    await seedMinutes(bot.id, day, Array.from({ length: 960 }, (_, m) => ({ minute: 360 + m, count: 4, campaignId: campaign })));

    const progress = await runAndWait(day);
    expect(progress).toMatchObject({ activeUsers: 41, classified: 41, levels: { B: 1, C: 40 } });
    expect(progress.params.source).toBe("robust");
    const token = await adminToken();
    const listed = await call("GET", `/api/admin/bot-classifications?date=${day}&level=B`, { token });
    expect(listed.status, listed.text).toBe(200);
    const row = listed.json.items[0];
    expect(row).toMatchObject({ userId: bot.id, level: "B", action: "held", decidedBy: "volume", rbar: 4, activeMinutes: 960, activeHours: 16, cadence: 0 });
    expect(Math.abs(row.z)).toBeLessThan(2); // R̄ alone would have paid it
    expect(row.signalZ.volume).toBeGreaterThanOrEqual(config.BOT_VOLUME_K_B);
    expect(row.signalZ.volume).toBeLessThan(config.BOT_VOLUME_K_A);
    expect(row.signalZ.regularity).toBeGreaterThanOrEqual(config.BOT_REGULARITY_K_A);
    expect(Object.keys(listed.json.params.signals).sort()).toEqual(["activeHours", "activeMinutes", "cadence", "rateDispersion"]);

    const payouts = await env.DB.prepare("select status, amount_idr from payouts where user_id = ?").bind(bot.id).all<{ status: string; amount_idr: number }>();
    expect(payouts.results).toEqual([{ status: "held", amount_idr: 960 * 4 * config.RATE_FEE_IDR }]);
    expect((await balanceOf(bot.token)).idrBalance).toBe(0);
    const alert = await env.DB.prepare("select alert_type, severity, details from fraud_alerts where user_id = ?").bind(bot.id).first<{ alert_type: string; severity: string; details: string }>();
    expect(alert).toMatchObject({ alert_type: "bot_level_B", severity: "high" });
    expect(JSON.parse(alert!.details)).toMatchObject({ decidedBy: "volume", activeHours: 16 });
    for (const person of people.slice(0, 5)) expect((await balanceOf(person.token)).idrBalance).toBeGreaterThan(0);
    await expectLedgerOk();
  });

  it("R̄ with its standard error: a short bursty day past μ + 3σ by chance is paid, the same R̄ at a steady pace is banned", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -8);
    const advertiser = await newUser("adv15se");
    const campaign = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "se" } })).json.id;
    await fundCampaign(campaign, 1_000_000);
    // 32 people, 20 minutes each at a steady 3, 4 or 5 a minute: robust μ 4, σ 1.4826, so A starts at R̄ 8.45.
    for (let i = 0; i < 32; i++) {
      const person = await newUser(`se${i}`);
      await seedMinutes(person.id, day, Array.from({ length: 20 }, (_, m) => ({ minute: 600 + 30 * (i % 5) + m, count: 3 + (i % 3), campaignId: campaign })));
    }
    // Both R̄ 9 over 12 minutes: one alternates 2 and 16 (sample SD 7.31, SE 2.11), the other does 9 every minute.
    const bursty = await newUser("se-bursty");
    await seedMinutes(bursty.id, day, Array.from({ length: 12 }, (_, m) => ({ minute: 1200 + m, count: m % 2 === 0 ? 2 : 16, campaignId: campaign })));
    const steady = await newUser("se-steady");
    await seedMinutes(steady.id, day, Array.from({ length: 12 }, (_, m) => ({ minute: 1200 + m, count: 9, campaignId: campaign })));

    const progress = await runAndWait(day);
    expect(progress).toMatchObject({ activeUsers: 34, classified: 34, levels: { A: 1, C: 33 } });
    expect(progress.params).toMatchObject({ source: "robust", mu: 4 });
    const listed = await call("GET", `/api/admin/bot-classifications?date=${day}`, { token: await adminToken() });
    const row = (id: string) => listed.json.items.find((r: any) => r.userId === id);
    const se = Math.sqrt((12 * 49) / 11 / 12);
    expect(row(bursty.id)).toMatchObject({ rbar: 9, level: "C", action: "paid", decidedBy: null });
    expect(row(bursty.id).rbarSe).toBeCloseTo(se, 9);
    expect(row(bursty.id).z).toBeCloseTo(5 / Math.hypot(progress.params.sigma, se), 9);
    expect(row(steady.id)).toMatchObject({ rbar: 9, rbarSe: 0, level: "A", action: "banned", decidedBy: "rbar" });
    expect(row(steady.id).z).toBeCloseTo(5 / progress.params.sigma, 9);
    expect((await balanceOf(bursty.token)).idrBalance).toBe(108 * 5);
    expect((await balanceOf(steady.token)).idrBalance).toBe(0);
    await expectLedgerOk();
  });

  it("PAYOUT_DAILY_CAP_IDR: a user is paid at most the cap a day, shared over campaigns; the rest is recorded capped and never paid later", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -6);
    const advertiser = await newUser("adv-cap");
    const [x, y, z] = await Promise.all(["x", "y", "z"].map(async (name) => (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name, rateFeeIdr: 100 } })).json.id));
    for (const c of [x, y, z]) await fundCampaign(c, 200_000);
    const pace = [1, 7, 2, 6, 4, 4];
    const user = await newUser("earner");
    // 198 minutes at a human-like uneven pace (1, 7, 2, 6, 4, 4: R̄ 4): 600 units for x, 192 for y, nothing for z.
    await seedMinutes(user.id, day, Array.from({ length: 198 }, (_, m) => ({ minute: 600 + m, count: pace[m % 6]!, campaignId: m < 150 ? x : y })));
    // A second user far below the cap on z: paid in full.
    const small = await newUser("small");
    await seedMinutes(small.id, day, Array.from({ length: 10 }, (_, m) => ({ minute: 700 + m * 3, count: 3, campaignId: z })));

    // A whale: 1,200 units on x (Rp 120,000) and 1 unit on w at Rp 1 — w's share of the cap rounds to nothing
    // and loses the last rupiah to x's larger remainder, so w's line is recorded `capped`, nothing moved.
    const w = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "w", rateFeeIdr: 1 } })).json.id;
    await fundCampaign(w, 1_000);
    const whale = await newUser("whale");
    await seedMinutes(whale.id, day, [
      ...Array.from({ length: 300 }, (_, m) => ({ minute: 480 + m, count: pace[m % 6]!, campaignId: x })),
      { minute: 800, count: 1, campaignId: w },
    ]);

    const progress = await runAndWait(day);
    expect(progress.levels).toEqual({ C: 3 });
    // 79,200 earned, 50,000 paid: x 37,879 (largest remainder) + y 12,121; fees on what is paid.
    const rows = await env.DB.prepare("select campaign_id, status, units, amount_idr, fee_idr, capped_idr from payouts where user_id = ? order by amount_idr desc").bind(user.id).all();
    expect(rows.results).toEqual([
      { campaign_id: x, status: "paid", units: 378, amount_idr: 37_879, fee_idr: 3_787, capped_idr: 22_121 },
      { campaign_id: y, status: "paid", units: 121, amount_idr: 12_121, fee_idr: 1_212, capped_idr: 7_079 },
    ]);
    expect((await balanceOf(user.token)).idrBalance).toBe(50_000);
    expect(await idrOf(campaignAccountId(x))).toBe(200_000 - 37_879 - 3_787 - 50_000 - 5_000);
    expect(await idrOf(campaignAccountId(y))).toBe(200_000 - 12_121 - 1_212);
    expect((await balanceOf(small.token)).idrBalance).toBe(10 * 3 * 100);
    const whaleRows = await env.DB.prepare("select campaign_id, status, units, amount_idr, fee_idr, capped_idr, transaction_id from payouts where user_id = ? order by amount_idr desc").bind(whale.id).all();
    expect(whaleRows.results).toEqual([
      expect.objectContaining({ campaign_id: x, status: "paid", units: 500, amount_idr: 50_000, fee_idr: 5_000, capped_idr: 70_000 }),
      { campaign_id: w, status: "capped", units: 0, amount_idr: 0, fee_idr: 0, capped_idr: 1, transaction_id: null },
    ]);
    expect((await balanceOf(whale.token)).idrBalance).toBe(50_000);
    expect(await idrOf(campaignAccountId(w))).toBe(1_000);
    expectProblem(await call("POST", `/api/admin/payouts/po_${day}_${whale.id}_${w}/release`, { token: await adminToken() }), 409, "conflict");

    // Never paid later: a rerun pays nothing more.
    await runAndWait(day);
    expect((await balanceOf(user.token)).idrBalance).toBe(50_000);
    await expectLedgerOk();
  });
});

describe("the daily cap across a resumed run", () => {
  it("a rerun after a partial run shares only what is left of the cap over the undecided lines, even when the rates changed in between", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -9);
    const advertiser = await newUser("adv-resume");
    // x pays Rp 100 a unit; y has no rate of its own, so it pays RATE_FEE_IDR (5 on the first run).
    const x = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "x", rateFeeIdr: 100 } })).json.id;
    const y = (await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "y" } })).json.id;
    for (const c of [x, y]) await fundCampaign(c, 200_000);
    const pace = [1, 7, 2, 6, 4, 4];
    const user = await newUser("resumed");
    await seedMinutes(user.id, day, Array.from({ length: 198 }, (_, m) => ({ minute: 600 + m, count: pace[m % 6]!, campaignId: m < 150 ? x : y })));
    const db = createDb(env.DB);
    const first = loadConfig({});
    await handleBatchMessage({ db, env, config: first }, { kind: "collect", day, userIds: [user.id] }, Date.now());
    await env.DB.prepare("insert into batch_runs (day, status, mu, sigma, population, started_at) values (?, 'paying', 4, 2, 1, ?)").bind(day, Date.now()).run();

    // The first run: x 60,000 + y 960 over the cap, shared as x 49,213 and y 787. The group holding x's line
    // committed and the one holding y's did not (a user's lines can straddle two groups; D1 failed between).
    const known = await campaignsById(db, [x, y]);
    const firstTerms = capLines([earnedLine({ day, userId: user.id, campaign: known.get(x)!, units: 600 }, first), earnedLine({ day, userId: user.id, campaign: known.get(y)!, units: 192 }, first)], first.PAYOUT_DAILY_CAP_IDR, first);
    expect(firstTerms.map((t) => t.amountIdr)).toEqual([49_213, 787]);
    expect(await payLine(db, firstTerms[0]!, Date.now())).toBe("paid");

    // Before the run resumes, RATE_FEE_IDR goes up to 100: y alone would now earn 19,200.
    await handleBatchMessage({ db, env, config: loadConfig({ RATE_FEE_IDR: "100" }) }, { kind: "pay", day, userIds: [user.id] }, Date.now());
    const rows = await env.DB.prepare("select campaign_id, status, amount_idr, capped_idr from payouts where user_id = ? order by amount_idr desc").bind(user.id).all();
    expect(rows.results).toEqual([
      { campaign_id: x, status: "paid", amount_idr: 49_213, capped_idr: 60_000 - 49_213 },
      { campaign_id: y, status: "paid", amount_idr: 787, capped_idr: 19_200 - 787 },
    ]);
    expect((await balanceOf(user.token)).idrBalance).toBe(first.PAYOUT_DAILY_CAP_IDR);
    await expectLedgerOk();
  });
});

describe("the daily cap and campaigns that pay nothing", () => {
  it("a line of a campaign whose owner is frozen takes no share of the cap: the user's other lines are paid up to it", async () => {
    const day = addDays(previousBusinessDay(Date.now(), "+07:00"), -10);
    const frozen = await newUser("adv-frozen");
    const healthy = await newUser("adv-healthy");
    const s = (await call("POST", "/api/campaigns", { token: frozen.token, body: { name: "s", rateFeeIdr: 100 } })).json.id;
    const h = (await call("POST", "/api/campaigns", { token: healthy.token, body: { name: "h", rateFeeIdr: 100 } })).json.id;
    for (const c of [s, h]) await fundCampaign(c, 200_000);
    const pace = [1, 7, 2, 6, 4, 4];
    const user = await newUser("earner-sh");
    // 150 minutes for s (600 units, Rp 60,000) then 100 for h (400 units, Rp 40,000): Rp 100,000 earned.
    await seedMinutes(user.id, day, Array.from({ length: 250 }, (_, m) => ({ minute: 600 + m, count: pace[m % 6]!, campaignId: m < 150 ? s : h })));
    await env.DB.prepare("update users set status = 'frozen' where id = ?").bind(frozen.id).run();
    await runAndWait(day);
    const rows = await env.DB.prepare("select campaign_id, status, amount_idr, capped_idr from payouts where user_id = ? order by campaign_id = ?").bind(user.id, h).all();
    expect(rows.results).toEqual([
      { campaign_id: s, status: "campaign_suspended", amount_idr: 0, capped_idr: 0 },
      { campaign_id: h, status: "paid", amount_idr: 40_000, capped_idr: 0 },
    ]);
    expect((await balanceOf(user.token)).idrBalance).toBe(40_000);
    expect(await idrOf(campaignAccountId(s))).toBe(200_000);
    await expectLedgerOk();
  });
});
