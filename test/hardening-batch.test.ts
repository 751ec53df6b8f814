import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { createDb } from "../src/db/client";
import { campaignAccountId, systemAccountId, userAccountId } from "../src/ledger/accounts";
import { applyPlan } from "../src/ledger/executor";
import { movePlan } from "../src/ledger/plan";
import { newId } from "../src/lib/ids";
import { addDays, businessDay, dayStart, previousBusinessDay } from "../src/lib/time";
import { handleDeadLetter } from "../src/jobs/daily-batch";
import { sendBatches } from "../src/jobs/fanout";
import { handleDeadQueueMessage } from "../src/jobs/queue";
import { payLine, termsOfRow } from "../src/jobs/batch-payouts";
import type { PayoutRow } from "../src/db/schema";
import { adminToken, balanceOf, call, d1Before, expectLedgerOk, expectProblem, newUser, setUserStatus } from "./helpers";

const config = loadConfig(env);
const db = () => createDb(env.DB);
const tz = "+07:00";

async function fundCampaign(campaignId: string, amount: number) {
  const now = Date.now();
  await applyPlan(db(), movePlan({ tx: { id: newId(now), type: "adjustment", asset: "IDR", amount, userId: null }, from: systemAccountId("adjustments", "IDR"), to: campaignAccountId(campaignId), audit: { actorId: "test", action: "fund", subjectType: "campaign", subjectId: campaignId }, now }));
}

async function campaign(token: string, rateFeeIdr?: number) {
  const res = await call("POST", "/api/campaigns", { token, body: { name: "c", ...(rateFeeIdr ? { rateFeeIdr } : {}) } });
  expect(res.status, res.text).toBe(201);
  return res.json.id as string;
}

/** Activity on a past day straight into the user's real Durable Object (the API only takes the last 10 minutes). */
async function seedDay(userId: string, day: string, blocks: { minutes: number; count: number; campaignId?: string }[]) {
  const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(userId));
  const start = dayStart(day, tz) + 3_600_000;
  const events = blocks.flatMap((b, i) => Array.from({ length: b.minutes }, (_, m) => ({ type: "view" as const, campaignId: b.campaignId, count: b.count, at: start + (i * 100 + m) * 60_000 })));
  const result = await stub.record(events, { tzOffset: tz, retentionDays: 7, now: start + 86_400_000, maxCampaignsPerDay: 50 });
  if (result.refused !== undefined) throw new Error(result.refused);
  await env.DB.prepare("insert or ignore into activity_days (day, user_id, created_at) values (?, ?, ?)").bind(day, userId, Date.now()).run();
}

async function runAndWait(day: string) {
  const token = await adminToken();
  const started = await call("POST", `/api/admin/batches/${day}/run`, { token });
  expect(started.status, started.text).toBe(202);
  for (let i = 0; i < 300; i++) {
    const progress = await call("GET", `/api/admin/batches/${day}`, { token });
    if (progress.json.status === "done") return progress.json;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("batch did not finish");
}

const payoutsOf = (userId: string) => env.DB.prepare("select * from payouts where user_id = ? order by id").bind(userId).all<PayoutRow & Record<string, any>>();

describe("hardening 3: held payouts change state only inside the batch that moves the money", () => {
  it("release and reject race to exactly one winner; a rejected payout is never paid, by a rerun or anything else; the held terms are what a release pays", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -2);
    const advertiser = await newUser("adv");
    const cmp = await campaign(advertiser.token, 7);
    await fundCampaign(cmp, 1_000_000);
    // Fewer than 30 users: the fallback μ 4, σ 2 apply; R̄ 8 = μ + 2σ is level B.
    const held = await Promise.all(Array.from({ length: 6 }, () => newUser("held")));
    for (const u of held) await seedDay(u.id, day, [{ minutes: 4, count: 8, campaignId: cmp }]);
    const first = await runAndWait(day);
    expect(first.payouts.held).toMatchObject({ count: 6, amountIdr: 6 * 32 * 7 });

    // The campaign's rate changes after the payouts were held: a release pays what was held.
    await env.DB.prepare("update campaigns set rate_fee_idr = 50 where id = ?").bind(cmp).run();
    const token = await adminToken();
    const outcomes: string[] = [];
    for (const u of held) {
      const [p] = (await payoutsOf(u.id)).results;
      const headers = { "idempotency-key": `reject-${p!.id}` };
      const [r1, r2] = await Promise.all([call("POST", `/api/admin/payouts/${p!.id}/release`, { token }), call("POST", `/api/admin/payouts/${p!.id}/reject`, { token, headers })]);
      expect([r1.status, r2.status].sort()).toEqual([200, 409]);
      const repeat = await call("POST", `/api/admin/payouts/${p!.id}/reject`, { token, headers });
      expect([repeat.status, repeat.json, repeat.headers.get("idempotent-replayed")]).toEqual([r2.status, r2.json, "true"]);
      const winner = r1.status === 200 ? "paid" : "rejected";
      outcomes.push(winner);
      const [after] = (await payoutsOf(u.id)).results;
      expect(after!.status).toBe(winner);
      expect((await balanceOf(u.token)).idrBalance).toBe(winner === "paid" ? 224 : 0);
    }
    const rejected = held.filter((_, i) => outcomes[i] === "rejected");
    const released = held.filter((_, i) => outcomes[i] === "paid");
    // A reject is audited like a release, and honours Idempotency-Key (a repeat replays the answer, not 409).
    for (const u of rejected) {
      const [row] = (await payoutsOf(u.id)).results;
      const audits = await env.DB.prepare("select actor_id from audit_log where action = 'payout.rejected' and subject_id = ?").bind(row!.id).all();
      expect(audits.results).toEqual([{ actor_id: "admin-root" }]);
    }

    const budget = async () => (await env.DB.prepare("select balance from accounts where id = ?").bind(campaignAccountId(cmp)).first<{ balance: number }>())!.balance;
    expect(await budget()).toBe(1_000_000 - released.length * (224 + 22));

    // A rerun whose classification would now say C (as if μ and σ had moved) pays no rejected payout.
    await env.DB.prepare("update daily_activity set level = null, z = null, classified_at = null, rbar = 3 where day = ?").bind(day).run();
    await runAndWait(day);
    for (const u of rejected) {
      expect((await balanceOf(u.token)).idrBalance).toBe(0);
      // Even asked directly, the movement refuses inside its batch.
      const [row] = (await payoutsOf(u.id)).results;
      expect(row!.status).toBe("rejected");
      expect(await payLine(db(), termsOfRow(row as PayoutRow), Date.now())).toBe("already_decided");
    }
    expect(await budget()).toBe(1_000_000 - released.length * (224 + 22));
    await expectLedgerOk();
  });
});

describe("hardening 4: the daily batch cannot be stopped by one user", () => {
  it("campaign ids must name existing, active campaigns: unknown ids are listed and nothing of the request is accepted", async () => {
    const user = await newUser("act");
    const advertiser = await newUser("adv");
    const real = await campaign(advertiser.token);
    const ghost = newId();
    const res = await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view", campaignId: real }, { type: "like", campaignId: ghost }] } });
    expectProblem(res, 422, "unknown_campaign");
    expect(res.json.errors).toEqual([{ path: "json.events.1.campaignId", message: `no active campaign ${ghost}` }]);
    await env.DB.prepare("update campaigns set status = 'paused' where id = ?").bind(real).run();
    expectProblem(await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view", campaignId: real }] } }), 422, "unknown_campaign");
    expect((await call("GET", "/api/activity/me", { token: user.token })).json.activeMinutes).toBe(0);
  });

  it("at most ACTIVITY_MAX_CAMPAIGNS_PER_DAY distinct campaigns per user and day; reports are rate limited per user", async () => {
    const user = await newUser("many");
    const advertiser = await newUser("adv");
    const now = Date.now();
    const ids = Array.from({ length: 51 }, () => newId(now));
    await env.DB.batch(ids.map((id) => env.DB.prepare("insert into campaigns (id, owner_id, name, status, created_at) values (?, ?, 'c', 'active', ?)").bind(id, advertiser.id, now)));
    const ok = await call("POST", "/api/activity", { token: user.token, body: { events: ids.slice(0, 50).map((campaignId) => ({ type: "view", campaignId })) } });
    expect(ok.status, ok.text).toBe(202);
    expectProblem(await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view", campaignId: ids[50] }] } }), 422, "too_many_campaigns");
    expect((await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view", campaignId: ids[3] }] } })).status).toBe(202);

    // The most the configuration allows: 1,000 campaigns named in one report (D1 binds at most 100 values a statement).
    const wide = await newUser("wide");
    const more = Array.from({ length: 1000 }, () => newId(now));
    for (let i = 0; i < more.length; i += 100) {
      await env.DB.batch(more.slice(i, i + 100).map((id) => env.DB.prepare("insert into campaigns (id, owner_id, name, status, created_at) values (?, ?, 'c', 'active', ?)").bind(id, advertiser.id, now)));
    }
    const widest = await call("POST", "/api/activity", { token: wide.token, vars: { ACTIVITY_MAX_CAMPAIGNS_PER_DAY: "1000" }, body: { events: more.slice(0, 500).map((campaignId) => ({ type: "view", campaignId })) } });
    expect(widest.status, widest.text).toBe(202);
    const unknownMany = await call("POST", "/api/activity", { token: wide.token, vars: { ACTIVITY_MAX_CAMPAIGNS_PER_DAY: "1000" }, body: { events: [...more.slice(500, 999), newId(now)].map((campaignId) => ({ type: "view", campaignId })) } });
    expectProblem(unknownMany, 422, "unknown_campaign");
    expect(unknownMany.json.errors).toHaveLength(1);

    const limited = await newUser("limited");
    const vars = { ACTIVITY_REQUESTS_PER_MINUTE: "3" };
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await call("POST", "/api/activity", { token: limited.token, body: { events: [{ type: "view" }] }, vars })).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
  });

  it("a report of 500 events (SPEC §8's most), each with 64-character ids, fits the activity body limit", async () => {
    const advertiser = await newUser("adv-big");
    const cmp = await campaign(advertiser.token);
    const user = await newUser("big-report");
    const at = new Date(Date.now() - 60_000).toISOString().replace("Z", "+00:00");
    const events = Array.from({ length: 500 }, (_, i) => ({ id: `${"e".repeat(58)}${String(i).padStart(6, "0")}`, type: "comment", campaignId: cmp, at, count: 1000 }));
    const res = await call("POST", "/api/activity", { token: user.token, body: { events } });
    expect(res.status, `${JSON.stringify({ events }).length} bytes: ${res.text.slice(0, 200)}`).toBe(202);
  });

  it("events for a day whose collection has started are refused with day_closed, never silently unpaid", async () => {
    const user = await newUser("late");
    const today = businessDay(Date.now(), tz);
    expect((await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view" }] } })).status).toBe(202);
    // The batch's collect step takes the day's summary, which closes the day in the user's object.
    await env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id)).summary(today, { view: 1, like: 1, comment: 1 });
    expectProblem(await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view" }] } }), 422, "day_closed");
    // A day is run (by the cron at 00:15 WIB, or by hand) only after its 10-minute late window.
    expectProblem(await call("POST", `/api/admin/batches/${today}/run`, { token: await adminToken() }), 409, "conflict");
  });

  it("a client's retry of a report already accepted is answered as duplicates, also once its day is closed (only new events are judged against the day and the campaign cap)", async () => {
    const user = await newUser("retry-late");
    const today = businessDay(Date.now(), tz);
    const report = { events: [{ id: "ev-1", type: "view" }, { id: "ev-2", type: "like" }] };
    expect((await call("POST", "/api/activity", { token: user.token, body: report })).json).toMatchObject({ accepted: 2, duplicates: 0 });
    await env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id)).summary(today, { view: 1, like: 1, comment: 1 });
    // The answer was lost and the client sends the same report again after the day closed: nothing new, nothing refused.
    const retry = await call("POST", "/api/activity", { token: user.token, body: report });
    expect(retry.status, retry.text).toBe(202);
    expect(retry.json).toMatchObject({ accepted: 0, duplicates: 2 });
    // A new event of the closed day is still refused.
    expectProblem(await call("POST", "/api/activity", { token: user.token, body: { events: [{ id: "ev-3", type: "view" }] } }), 422, "day_closed");
  });

  it("fan-out stays within the Queues limits whatever the id length (≤ 100 messages and < 256 KB per sendBatch)", () => {
    const id = (i: number) => `u${String(i).padStart(63, "x")}`;
    const bodies = Array.from({ length: 1_000 }, (_, m) => ({ kind: "pay" as const, day: "2026-11-20", userIds: Array.from({ length: 1000 }, (_, i) => id(m * 1000 + i)) }));
    const groups = sendBatches(bodies);
    expect(groups.flat()).toHaveLength(1_000);
    for (const g of groups) {
      expect(g.length).toBeLessThanOrEqual(100);
      expect(new TextEncoder().encode(JSON.stringify(g)).length).toBeLessThan(256 * 1024);
    }
    // With 100 ids of 64 characters per message, 100 messages would be ~680 KB: the groups are smaller.
    expect(groups.length).toBeGreaterThan(10);
  });

  it("a user reporting hundreds of random campaign ids is refused, and the same day's batch still finishes and pays everyone else; 64-character ids too", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -4);
    const flooder = await newUser("flood");
    for (let r = 0; r < 10; r++) {
      const events = Array.from({ length: 50 }, () => ({ type: "view", campaignId: newId() }));
      expectProblem(await call("POST", "/api/activity", { token: flooder.token, body: { events } }), 422, "unknown_campaign");
    }
    const advertiser = await newUser("adv");
    const cmp = await campaign(advertiser.token);
    await fundCampaign(cmp, 10_000_000);
    const honest = await Promise.all(Array.from({ length: 3 }, () => newUser("honest")));
    const long = { id: `L${Date.now()}${"x".repeat(64)}`.slice(0, 64) };
    expect(long.id).toHaveLength(64);
    for (const u of [...honest, long]) await seedDay(u.id, day, [{ minutes: 10, count: 3, campaignId: cmp }]);
    await seedDay(flooder.id, day, [{ minutes: 5, count: 3 }]);
    await env.DB.prepare("insert or ignore into users (id, status, kyc_status, verification_required, total_deposited_coins, total_withdrawn_idr, created_at, updated_at) values (?, 'active', 'none', 0, 0, 0, 0, 0)").bind(long.id).run();
    await env.DB.prepare("insert or ignore into accounts (id, kind, owner_id, asset, balance, locked, allow_negative, created_at) values (?, 'user_wallet', ?, 'IDR', 0, 0, 0, 0)").bind(`usr:${long.id}:IDR`, long.id).run();
    const progress = await runAndWait(day);
    expect(progress).toMatchObject({ activeUsers: 5, classified: 5 });
    expect(progress.payouts.paid).toMatchObject({ count: 4, amountIdr: 4 * 30 * 5 });
    for (const u of honest) expect((await balanceOf(u.token)).idrBalance).toBe(150);
    await expectLedgerOk();
  });

  it("a campaign whose owner is frozen or banned pays nothing (campaign_suspended); rateFeeIdr is at most RATE_FEE_MAX_IDR", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -5);
    const advertiser = await newUser("adv");
    expectProblem(await call("POST", "/api/campaigns", { token: advertiser.token, body: { name: "greedy", rateFeeIdr: 101 } }), 400, "validation_failed");
    const cmp = await campaign(advertiser.token, 100);
    await fundCampaign(cmp, 1_000_000);
    const worker = await newUser("w");
    await seedDay(worker.id, day, [{ minutes: 10, count: 3, campaignId: cmp }]);
    await setUserStatus(advertiser.id, "frozen");
    const progress = await runAndWait(day);
    expect(progress.payouts).toMatchObject({ campaign_suspended: { count: 1 } });
    expect((await balanceOf(worker.token)).idrBalance).toBe(0);
    await expectLedgerOk();
  });

  it("a chunk that exhausted its retries marks the run failed with a critical alert, and POST .../run resumes it", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -6);
    const user = await newUser("dlq");
    await seedDay(user.id, day, [{ minutes: 3, count: 2 }]);
    await runAndWait(day);
    await env.DB.prepare("update daily_activity set classified_at = null, level = null where day = ?").bind(day).run();
    await env.DB.prepare("update batch_runs set status = 'paying' where day = ?").bind(day).run();
    await handleDeadLetter({ db: db(), config, env }, { kind: "pay", day, userIds: [user.id] }, Date.now());
    // A fan-out step that exhausted its retries fails the run the same way.
    await handleDeadQueueMessage({ db: db(), config, env }, { kind: "fanout", source: "pay", key: day, after: user.id }, Date.now());
    const token = await adminToken();
    const failed = await call("GET", `/api/admin/batches/${day}`, { token });
    expect(failed.json).toMatchObject({ status: "failed", failedChunks: 2 });
    const alerts = await env.DB.prepare("select severity from fraud_alerts where alert_type = 'batch_chunk_failed' and json_extract(details, '$.day') = ?").bind(day).all();
    expect(alerts.results).toEqual([{ severity: "critical" }, { severity: "critical" }]);
    const resumed = await runAndWait(day);
    expect(resumed).toMatchObject({ status: "done", classified: 1 });
    // A stale dead letter (its chunk was finished by the resumed run) leaves the finished run alone.
    await handleDeadLetter({ db: db(), config, env }, { kind: "pay", day, userIds: [user.id] }, Date.now());
    expect((await call("GET", `/api/admin/batches/${day}`, { token })).json).toMatchObject({ status: "done", failedChunks: 2 });
    expect((await env.DB.prepare("select count(*) as n from fraud_alerts where alert_type = 'batch_chunk_failed' and json_extract(details, '$.day') = ?").bind(day).first<{ n: number }>())?.n).toBe(2);
  });
});

describe("a banned earner is never paid", () => {
  it("a held payout of a user banned since is not released, and a batch holds (does not pay) the lines of a user banned before it ran", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -10);
    const advertiser = await newUser("adv-ban");
    const cmp = await campaign(advertiser.token, 7);
    await fundCampaign(cmp, 1_000_000);
    // R̄ 8 (μ 4, σ 2 with fewer than 30 users) is level B: held. R̄ 4 is level C: paid, unless banned.
    const bot = await newUser("held-then-banned");
    await seedDay(bot.id, day, [{ minutes: 4, count: 8, campaignId: cmp }]);
    const banned = await newUser("banned-before");
    await seedDay(banned.id, day, [{ minutes: 6, count: 4, campaignId: cmp }]);
    await setUserStatus(banned.id, "banned");
    const person = await newUser("person-ban");
    await seedDay(person.id, day, [{ minutes: 6, count: 4, campaignId: cmp }]);
    await runAndWait(day);

    expect((await payoutsOf(person.id)).results.map((p) => p.status)).toEqual(["paid"]);
    expect((await payoutsOf(banned.id)).results.map((p) => p.status)).toEqual(["held"]);
    const [heldRow] = (await payoutsOf(bot.id)).results;
    expect(heldRow!.status).toBe("held");
    await setUserStatus(bot.id, "banned");
    const token = await adminToken();
    for (const u of [bot, banned]) {
      const [p] = (await payoutsOf(u.id)).results;
      expectProblem(await call("POST", `/api/admin/payouts/${p!.id}/release`, { token }), 422, "recipient_unavailable");
      expect((await payoutsOf(u.id)).results[0]!.status).toBe("held");
    }
    // Nor is the line paid by a rerun.
    await runAndWait(day);
    for (const u of [bot, banned]) expect((await env.DB.prepare("select balance from accounts where id = ?").bind(userAccountId(u.id, "IDR")).first<{ balance: number }>())?.balance ?? 0).toBe(0);
    // Unbanned, the held payout can be released at its terms.
    await setUserStatus(banned.id, "active");
    const [p] = (await payoutsOf(banned.id)).results;
    expect((await call("POST", `/api/admin/payouts/${p!.id}/release`, { token })).status).toBe(200);
    expect((await balanceOf(banned.token)).idrBalance).toBe(p!.amount_idr);
    await expectLedgerOk();
  });
});

describe("one user cannot stop a pay chunk", () => {
  it("a day of absurd volume (worth more than Rp 10^12 before the cap) is judged like any other; the others in its chunk are paid and the run finishes", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -11);
    const advertiser = await newUser("adv-vol");
    const own = await campaign(advertiser.token, 100);
    await fundCampaign(own, 1_000_000);
    const flooder = await newUser("flooder");
    // 11 minutes of 10^9 units at Rp 100: Rp 1.1 × 10^12 earned before the cap.
    await seedDay(flooder.id, day, [{ minutes: 11, count: 1_000_000_000, campaignId: own }]);
    const people = await Promise.all(Array.from({ length: 3 }, () => newUser("vol-person")));
    for (const p of people) await seedDay(p.id, day, [{ minutes: 6, count: 4, campaignId: own }]);
    const progress = await runAndWait(day);
    expect(progress.status).toBe("done");
    for (const p of people) expect((await balanceOf(p.token)).idrBalance).toBe(24 * 100);
    expect((await env.DB.prepare("select status from users where id = ?").bind(flooder.id).first<{ status: string }>())?.status).toBe("banned");
    expect((await balanceOf(flooder.token)).idrBalance).toBe(0);
    await expectLedgerOk();
  });

  it("a user whose row cannot be processed fails the message (retried, then dead-lettered with an alert) only after everyone else in it was decided", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -12);
    const advertiser = await newUser("adv-bad");
    const cmp = await campaign(advertiser.token, 7);
    await fundCampaign(cmp, 1_000_000);
    const people = await Promise.all(Array.from({ length: 3 }, () => newUser("ok-person")));
    for (const p of people) await seedDay(p.id, day, [{ minutes: 6, count: 4, campaignId: cmp }]);
    const broken = await newUser("broken-row");
    await seedDay(broken.id, day, [{ minutes: 6, count: 4, campaignId: cmp }]);
    const { handleBatchMessage } = await import("../src/jobs/daily-batch");
    const deps = { db: db(), env, config };
    await handleBatchMessage(deps, { kind: "collect", day, userIds: [broken.id, ...people.map((p) => p.id)] }, Date.now());
    // A row no run can process (fractional units, as a corrupted summary would be).
    await env.DB.prepare("update daily_activity set campaign_units = json_object(?, 3.5) where day = ? and user_id = ?").bind(cmp, day, broken.id).run();
    await env.DB.prepare("insert into batch_runs (day, status, mu, sigma, population, started_at) values (?, 'paying', 4, 2, 4, ?)").bind(day, Date.now()).run();
    await expect(handleBatchMessage(deps, { kind: "pay", day, userIds: [broken.id, ...people.map((p) => p.id)] }, Date.now())).rejects.toThrow(broken.id);
    for (const p of people) expect((await balanceOf(p.token)).idrBalance).toBe(24 * 7);
    const left = await env.DB.prepare("select user_id from daily_activity where day = ? and classified_at is null").bind(day).all<{ user_id: string }>();
    expect(left.results.map((r) => r.user_id)).toEqual([broken.id]);
    await expectLedgerOk();
  });
});

describe("POST .../run racing the collection's end", () => {
  it("μ and σ fixed between the run's read and its upsert: the run pays, it does not go back to collecting", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -13);
    const user = await newUser("race-run");
    await seedDay(user.id, day, [{ minutes: 6, count: 4 }]);
    const { handleBatchMessage, startBatch } = await import("../src/jobs/daily-batch");
    await handleBatchMessage({ db: db(), config, env }, { kind: "collect", day, userIds: [user.id] }, Date.now());
    await env.DB.prepare("insert into batch_runs (day, status, active_users, started_at) values (?, 'collecting', 1, ?)").bind(day, Date.now()).run();
    // The collection's last message fixes μ and σ just before the run's upsert commits.
    const racing = d1Before(`update batch_runs set status = 'paying', mu = 4, sigma = 2, population = 1 where day = '${day}'`, /insert into "batch_runs"/);
    await startBatch({ db: createDb(racing), config, env }, day, Date.now());
    expect((await env.DB.prepare("select status from batch_runs where day = ?").bind(day).first<{ status: string }>())?.status).not.toBe("collecting");
    for (let i = 0; i < 200; i++) {
      if ((await env.DB.prepare("select status from batch_runs where day = ?").bind(day).first<{ status: string }>())?.status === "done") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await call("GET", `/api/admin/batches/${day}`, { token: await adminToken() })).json).toMatchObject({ status: "done", classified: 1 });
  });
});

describe("dead letters of escrow release", () => {
  it("a person is told again on a later day: the alert is once per day, not once for the life of the database", async () => {
    const count = () => env.DB.prepare("select count(*) as n from fraud_alerts where alert_type = 'escrow_release_failed'").first<{ n: number }>();
    const before = (await count())!.n;
    const dead = { kind: "fanout" as const, source: "escrow_release" as const, key: String(Date.now()), after: "" };
    const monday = Date.parse("2031-03-03T03:00:00Z");
    await handleDeadQueueMessage({ db: db(), config, env }, dead, monday);
    await handleDeadQueueMessage({ db: db(), config, env }, dead, monday + 3_600_000);
    expect((await count())!.n).toBe(before + 1);
    await handleDeadQueueMessage({ db: db(), config, env }, dead, monday + 86_400_000);
    expect((await count())!.n).toBe(before + 2);
  });
});

describe("a daily batch that cannot start", () => {
  it("raises a critical alert (nothing was queued, so no dead letter ever would)", async () => {
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const { DAILY_BATCH_CRON } = await import("../src/jobs/crons");
    // 2032-01-05T17:15Z is 00:15 WIB on the 6th: the batch of 5 January.
    const scheduledTime = Date.parse("2032-01-05T17:15:00Z");
    const user = await newUser("no-start");
    await env.DB.prepare("insert or ignore into activity_days (day, user_id, created_at) values ('2032-01-05', ?, ?)").bind(user.id, Date.now()).run();
    const refusing = { ...env, BATCH_QUEUE: { send: async () => Promise.reject(new Error("queue unavailable")), sendBatch: async () => Promise.reject(new Error("queue unavailable")) } } as unknown as Env;
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: DAILY_BATCH_CRON, scheduledTime }), refusing, ctx);
    await waitOnExecutionContext(ctx);
    const alerts = await env.DB.prepare("select severity, details from fraud_alerts where alert_type = 'batch_start_failed'").all<{ severity: string; details: string }>();
    expect(alerts.results.map((a) => [a.severity, JSON.parse(a.details).day])).toEqual([["critical", "2032-01-05"]]);
  });
});

describe("whitelisted users and the bot levels", () => {
  it("a whitelisted user skips the bot levels like every other rule: a level-A day is paid, not banned; the level is still recorded", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -14);
    const advertiser = await newUser("adv-wl");
    const cmp = await campaign(advertiser.token, 7);
    await fundCampaign(cmp, 1_000_000);
    const tester = await newUser("load-tester");
    const whitelisted = await call("POST", "/api/fraud/whitelist", { token: await adminToken(), body: { userId: tester.id, reason: "QA load tester" } });
    expect(whitelisted.status, whitelisted.text).toBe(201);
    // The entry is judged as it stood on the day, not when the batch runs (a replay gives the same answer):
    // in force before the day, and another one expiring exactly as the day ends, both count.
    await env.DB.prepare("update fraud_whitelist set created_at = ? where user_id = ?").bind(dayStart(day, tz) - 3_600_000, tester.id).run();
    const edge = await newUser("wl-until-midnight");
    await env.DB.prepare("insert into fraud_whitelist (id, user_id, device_fingerprint, reason, expires_at, created_by, created_at) values (?, ?, null, 'QA that day', ?, 'admin-other', ?)")
      .bind(newId(Date.now()), edge.id, dayStart(addDays(day, 1), tz), dayStart(day, tz) - 3_600_000)
      .run();
    // One added after the day (before the run) does not cover the day retroactively.
    const late = await newUser("wl-after");
    expect((await call("POST", "/api/fraud/whitelist", { token: await adminToken(), body: { userId: late.id, reason: "too late" } })).status).toBe(201);
    const bot = await newUser("plain-bot");
    // R̄ 20 (μ 4, σ 2): level A for anyone.
    for (const u of [tester, bot, edge, late]) await seedDay(u.id, day, [{ minutes: 6, count: 20, campaignId: cmp }]);
    await runAndWait(day);
    const statusOf = async (id: string) => (await env.DB.prepare("select status from users where id = ?").bind(id).first<{ status: string }>())?.status;
    expect(await statusOf(bot.id)).toBe("banned");
    expect(await statusOf(late.id)).toBe("banned");
    expect(await statusOf(edge.id)).toBe("active");
    expect(await statusOf(tester.id)).toBe("active");
    expect((await env.DB.prepare("select level, action from daily_activity where day = ? and user_id = ?").bind(day, tester.id).first())).toEqual({ level: "A", action: "paid" });
    expect((await payoutsOf(tester.id)).results.map((p) => [p.status, p.amount_idr])).toEqual([["paid", 120 * 7]]);
    await expectLedgerOk();
  });
});

describe("a release under an Idempotency-Key", () => {
  it("pays once; the same request again replays the answer", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -15);
    const advertiser = await newUser("adv-key");
    const cmp = await campaign(advertiser.token, 7);
    await fundCampaign(cmp, 1_000_000);
    const bot = await newUser("held-key");
    await seedDay(bot.id, day, [{ minutes: 4, count: 8, campaignId: cmp }]);
    await runAndWait(day);
    const [p] = (await payoutsOf(bot.id)).results;
    expect(p!.status).toBe("held");
    const token = await adminToken();
    const headers = { "idempotency-key": `release-${p!.id}` };
    const first = await call("POST", `/api/admin/payouts/${p!.id}/release`, { token, headers });
    expect(first.status, first.text).toBe(200);
    const again = await call("POST", `/api/admin/payouts/${p!.id}/release`, { token, headers });
    expect([again.status, again.json, again.headers.get("idempotent-replayed")]).toEqual([200, first.json, "true"]);
    expect((await balanceOf(bot.token)).idrBalance).toBe(p!.amount_idr);
    await expectLedgerOk();
  });
});

describe("a run left behind by an invocation that stopped between a commit and its queue send", () => {
  it("is resumed by housekeeping once it has stalled for BATCH_STALL_MINUTES, with one alert, and finishes", async () => {
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const { handleBatchMessage } = await import("../src/jobs/daily-batch");
    const day = addDays(previousBusinessDay(Date.now(), tz), -23);
    const user = await newUser("stalled");
    await seedDay(user.id, day, [{ minutes: 5, count: 3 }]);
    await env.DB.prepare("insert into batch_runs (day, status, active_users, started_at) values (?, 'collecting', 1, ?)").bind(day, Date.now()).run();
    // The last collect fixes μ and σ, then its invocation dies while sending the pay fan-out (the send never returns).
    const dying = { ...env, BATCH_QUEUE: { send: () => new Promise(() => {}), sendBatch: () => new Promise(() => {}) } } as unknown as Env;
    void handleBatchMessage({ db: db(), config, env: dying }, { kind: "collect", day, userIds: [user.id] }, Date.now());
    const status = async () => (await env.DB.prepare("select status from batch_runs where day = ?").bind(day).first<{ status: string }>())?.status;
    for (let i = 0; i < 100 && (await status()) !== "paying"; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await status()).toBe("paying");
    const housekeeping = async (at: number) => {
      const ctx = createExecutionContext();
      await worker.scheduled(createScheduledController({ cron: "*/15 * * * *", scheduledTime: at }), env, ctx);
      await waitOnExecutionContext(ctx);
    };
    // Not yet stalled: left alone.
    await housekeeping(Date.now());
    await new Promise((r) => setTimeout(r, 300));
    expect(await status()).toBe("paying");
    // An hour later housekeeping looks and notes its progress; a run that moved since is slow, not stalled.
    await housekeeping(Date.now() + 61 * 60_000);
    await env.DB.prepare("update batch_runs set queue_messages = queue_messages + 1 where day = ?").bind(day).run();
    await housekeeping(Date.now() + 76 * 60_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(await status()).toBe("paying");
    // Nothing moved it between two looks: resumed (asked twice more, one alert).
    await housekeeping(Date.now() + 91 * 60_000);
    await housekeeping(Date.now() + 92 * 60_000);
    for (let i = 0; i < 200 && (await status()) !== "done"; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await status()).toBe("done");
    expect((await call("GET", `/api/admin/batches/${day}`, { token: await adminToken() })).json).toMatchObject({ status: "done", classified: 1 });
    const alerts = await env.DB.prepare("select details from fraud_alerts where alert_type = 'batch_stalled' and json_extract(details, '$.day') = ?").bind(day).all();
    expect(alerts.results).toHaveLength(1);
  });

  it("a stalled run is resumed (with its alert) however long ago it started: a day older than the activity retention is not left in silence", async () => {
    const { resumeStalledRuns } = await import("../src/jobs/daily-batch");
    const day = addDays(previousBusinessDay(Date.now(), tz), -40);
    const now = Date.now();
    await env.DB.prepare("insert into batch_runs (day, status, mu, sigma, population, active_users, started_at) values (?, 'paying', 4, 2, 0, 0, ?)").bind(day, now - 10 * 86_400_000).run();
    expect(await resumeStalledRuns({ db: db(), config, env }, now)).toEqual([]);
    expect(await resumeStalledRuns({ db: db(), config, env }, now + 15 * 60_000)).toEqual([day]);
    expect((await env.DB.prepare("select status from batch_runs where day = ?").bind(day).first<{ status: string }>())?.status).toBe("done");
    const alerts = await env.DB.prepare("select count(*) as n from fraud_alerts where alert_type = 'batch_stalled' and json_extract(details, '$.day') = ?").bind(day).first<{ n: number }>();
    expect(alerts?.n).toBe(1);
  });
});

describe("a day the users' objects no longer keep", () => {
  it("is never collected as an empty day: its summary fails (the run does not pay it as nothing, it stops for a person)", async () => {
    const day = addDays(previousBusinessDay(Date.now(), tz), -20);
    const user = await newUser("purged");
    await seedDay(user.id, day, [{ minutes: 5, count: 3 }]);
    // Activity today: the object drops days older than the retention.
    expect((await call("POST", "/api/activity", { token: user.token, body: { events: [{ type: "view" }] } })).status).toBe(202);
    const stub = env.USER_ACTIVITY.get(env.USER_ACTIVITY.idFromName(user.id));
    const summary = (d: string) => stub.summary(d, { view: 1, like: 1, comment: 1 }).then(() => "answered", (e: Error) => e.message);
    expect(await summary(day)).toMatch(/no longer kept/);
    // A day it never had, after its retention moved on, is no different: nothing can be said of it.
    expect(await summary(addDays(day, -1))).toMatch(/no longer kept/);
    // A day within the retention is summarised as before.
    expect((await stub.summary(previousBusinessDay(Date.now(), tz), { view: 1, like: 1, comment: 1 })).activeMinutes).toBe(0);
  });
});

describe("one user's broken Durable Object cannot stop the day", () => {
  it("a few seconds of errors in every object of a chunk give up on nobody, though another chunk of the day answered", async () => {
    const { handleBatchMessage } = await import("../src/jobs/daily-batch");
    const day = addDays(previousBusinessDay(Date.now(), tz), -31);
    const first = await newUser("chunk1");
    const chunk = await Promise.all(Array.from({ length: 3 }, () => newUser("chunk2")));
    for (const u of [first, ...chunk]) await seedDay(u.id, day, [{ minutes: 5, count: 3 }]);
    await env.DB.prepare("insert into batch_runs (day, status, active_users, started_at) values (?, 'collecting', 4, ?)").bind(day, Date.now()).run();
    const queue = { send: async () => {}, sendBatch: async () => {} };
    const blip = {
      ...env,
      USER_ACTIVITY: { idFromName: (n: string) => env.USER_ACTIVITY.idFromName(n), get: () => ({ summary: async () => Promise.reject(new Error("Network connection lost.")) }) },
      BATCH_QUEUE: queue,
    } as unknown as Env;
    const t0 = Date.now();
    const collect = (e: Env, userIds: string[], at: number) => handleBatchMessage({ db: db(), config, env: e }, { kind: "collect", day, userIds }, at).then(() => "ok", (err: Error) => err.message);
    expect(await collect({ ...env, BATCH_QUEUE: queue } as unknown as Env, [first.id], t0)).toBe("ok");
    // The queue's first retries come within seconds.
    for (const at of [t0, t0 + 2_000, t0 + 10_000]) expect(await collect(blip, chunk.map((u) => u.id), at)).toMatch(/Network connection lost/);
    const givenUp = await env.DB.prepare("select count(*) as n from fraud_alerts where alert_type = 'batch_user_uncollected' and json_extract(details, '$.day') = ?").bind(day).first<{ n: number }>();
    expect([(await env.DB.prepare("select status from batch_runs where day = ?").bind(day).first<{ status: string }>())?.status, givenUp?.n]).toEqual(["collecting", 0]);
    // The objects answer again: everyone is collected.
    expect(await collect({ ...env, BATCH_QUEUE: queue } as unknown as Env, chunk.map((u) => u.id), t0 + 42_000)).toBe("ok");
    expect((await env.DB.prepare("select count(*) as n from daily_activity where day = ?").bind(day).first<{ n: number }>())?.n).toBe(4);
  });

  it("the others in its chunk are collected at once; after 3 failures the day goes on without that user, with an alert; an outage of every object stops nothing early", async () => {
    const { handleBatchMessage } = await import("../src/jobs/daily-batch");
    const day = addDays(previousBusinessDay(Date.now(), tz), -24);
    const bad = await newUser("bad-object");
    const good = await newUser("good-object");
    for (const u of [bad, good]) await seedDay(u.id, day, [{ minutes: 5, count: 3 }]);
    await env.DB.prepare("insert into batch_runs (day, status, active_users, started_at) values (?, 'collecting', 2, ?)").bind(day, Date.now()).run();
    const badId = env.USER_ACTIVITY.idFromName(bad.id).toString();
    const sent: unknown[] = [];
    const broken = (everyone = false) =>
      ({
        ...env,
        USER_ACTIVITY: {
          idFromName: (n: string) => env.USER_ACTIVITY.idFromName(n),
          get: (id: DurableObjectId) => (everyone || id.toString() === badId ? { summary: async () => Promise.reject(new Error("SQLITE_FULL: database or disk is full")) } : env.USER_ACTIVITY.get(id)),
        },
        BATCH_QUEUE: { send: async (b: unknown) => void sent.push(b), sendBatch: async (bs: { body: unknown }[]) => void sent.push(...bs.map((x) => x.body)) },
      }) as unknown as Env;
    const t0 = Date.now();
    const collect = (e: Env, userIds = [bad.id, good.id], at = t0) => handleBatchMessage({ db: db(), config, env: e }, { kind: "collect", day, userIds }, at).then(() => "ok", (err: Error) => err.message);
    const collected = async () => (await env.DB.prepare("select user_id from daily_activity where day = ?").bind(day).all<{ user_id: string }>()).results.map((r) => r.user_id);
    const status = async () => (await env.DB.prepare("select status from batch_runs where day = ?").bind(day).first<{ status: string }>())?.status;
    // An outage of every object: nobody is given up on, however often it is retried.
    for (let i = 0; i < 4; i++) expect(await collect(broken(true))).toMatch(/SQLITE_FULL/);
    expect(await collected()).toEqual([]);
    // One broken object: the good user is collected at once; the message fails (retried) for the bad one.
    expect(await collect(broken())).toMatch(/SQLITE_FULL/);
    expect(await collected()).toEqual([good.id]);
    // A resumed collection pages only the users not collected: a chunk of the broken one alone is still that
    // user's failure, not an outage, since others of the day answered.
    expect(await collect(broken(), [bad.id])).toMatch(/SQLITE_FULL/);
    expect(await status()).toBe("collecting");
    // A third failure within seconds of the first is still a blip (the queue retries in seconds)...
    expect(await collect(broken(), [bad.id], t0 + 10_000)).toMatch(/SQLITE_FULL/);
    // ...a failure a few minutes on gives up on that user: the day goes on (μ and σ fixed, the pay step sent), with an alert.
    expect(await collect(broken(), [bad.id], t0 + 3 * 60_000)).toBe("ok");
    expect(await status()).toBe("paying");
    expect(sent).toContainEqual(expect.objectContaining({ kind: "fanout", source: "pay", key: day }));
    const alerts = await env.DB.prepare("select details from fraud_alerts where alert_type = 'batch_user_uncollected' and user_id = ?").bind(bad.id).all<{ details: string }>();
    expect(alerts.results.map((a) => JSON.parse(a.details).day)).toEqual([day]);
    // The failure records go once nothing can run that day any more (past the activity retention).
    const failures = async () => (await env.DB.prepare("select count(*) as n from collect_failures where day = ?").bind(day).first<{ n: number }>())?.n;
    expect(await failures()).toBe(1);
    const { createExecutionContext, createScheduledController, waitOnExecutionContext } = await import("cloudflare:test");
    const worker = (await import("../src/index")).default;
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/15 * * * *", scheduledTime: Date.now() + (config.ACTIVITY_RETENTION_DAYS + 1) * 86_400_000 }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await failures()).toBe(0);
  });
});
