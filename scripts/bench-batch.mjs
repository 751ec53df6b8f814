#!/usr/bin/env node
// `npm run bench:batch`: activity ingest, then the daily classification and payout batch at scale.
//
//  A. Ingest: 200 users POST /api/activity, 100 events per request (unique ids, mixed types, half on a
//     campaign), BENCH_INGEST_REQUESTS (1500) requests at concurrency BENCH_INGEST_CONCURRENCY (8).
//  B. For each N in BENCH_BATCH_SIZES ("10000,100000"; ~11 min in all on 2 cores) a past business day is
//     seeded straight into the local D1 file (scripts/bench/batch-population.mjs: N users, activity
//     days, collected daily activity, 5 funded campaigns), then POST /api/admin/batches/<day>/run, until
//     the day is `done` and every queue message the run enqueued is acked (wrangler logs each consumer
//     invocation). Measured: wall time, users/s, queue messages, rows written per user, the outcome
//     against what the seeded population must produce, workerd RSS and CPU, and a rerun that must pay
//     nobody twice.
// `wrangler d1 execute --local` runs only while the service is stopped: under a running `wrangler dev`
// it can leave workerd's connection on a stale snapshot (SQLITE_BUSY_SNAPSHOT, hung requests).
// Env: BENCH_BATCH_PORT (8807), BENCH_BATCH_SIM_PORT (8808), BENCH_BATCH_MAX_SECONDS (600 per run).
// Results: .bench/batch-results.json.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { benchService, envNumber, fmt, load, machine, markdownTable, round, runBenchmark, sleep, workerdUsage, writeResults } from "./bench/harness.mjs";
import { CAMPAIGNS, plan, populationSql } from "./bench/batch-population.mjs";
import { signToken } from "./dev-token.mjs";

const INGEST_REQUESTS = Math.floor(envNumber("BENCH_INGEST_REQUESTS", 1500));
const INGEST_CONCURRENCY = Math.floor(envNumber("BENCH_INGEST_CONCURRENCY", 8));
const MAX_SECONDS = envNumber("BENCH_BATCH_MAX_SECONDS", 600);
const SIZES = (process.env.BENCH_BATCH_SIZES || "10000,100000").split(",").map(Number);
if (SIZES.some((n) => !Number.isInteger(n) || n < 100 || n > 10_000_000)) {
  console.error(`BENCH_BATCH_SIZES must be whole numbers between 100 and 10000000, got "${process.env.BENCH_BATCH_SIZES}"`);
  process.exit(2);
}
const USERS = 200;
const EVENTS_PER_REQUEST = 100;
const SERVICE = { rateFeeIdr: 5, feeBps: 1000, mode: "robust", mu: 4, sigma: 2, sigmaMin: 1, minPopulation: 30, kA: 3, kB: 2 };
const COUNTED = ["payouts", "transactions", "postings", "audit_log", "once_keys", "fraud_alerts"];

const service = benchService({ name: "bench-batch", port: envNumber("BENCH_BATCH_PORT", 8807), simPort: envNumber("BENCH_BATCH_SIM_PORT", 8808), extraVars: ["D1_METRICS:true", "ACTIVITY_REQUESTS_PER_MINUTE:1000000"] });
const queue = { acked: 0, invocations: 0 };
service.onLog((text) => {
  for (const m of text.matchAll(/QUEUE daily-batch (\d+)\/(\d+)/g)) {
    queue.acked += Number(m[1]);
    queue.invocations++;
  }
});

/** `wrangler d1 execute --local` on the service's state, only while it is stopped. */
function d1(args) {
  return new Promise((resolve, reject) => {
    const child = spawn("node_modules/.bin/wrangler", ["d1", "execute", "DB", "--local", "--persist-to", service.persist, ...args], { cwd: service.appDir, env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`wrangler d1 execute failed: ${out.slice(-1500)}`))));
  });
}

async function counts(n, day) {
  const statements = [...COUNTED.map((t) => `select count(*) as n from ${t}`), `select count(*) as n from users where id like 'b${n}-%' and status = 'banned'`, `select count(*) as n from daily_activity where day = '${day}' and classified_at is not null`, `select coalesce(sum(balance), 0) as n from accounts where kind = 'user_wallet' and asset = 'IDR'`];
  const out = await d1(["--json", "--command", statements.join("; ")]);
  const v = JSON.parse(out.slice(out.indexOf("["))).map((r) => r.results[0].n);
  return { ...Object.fromEntries(COUNTED.map((t, i) => [t, v[i]])), banned: v[6], classified: v[7], userIdr: v[8] };
}

async function ingest(admin) {
  const suffix = Date.now().toString(36);
  const users = Array.from({ length: USERS }, (_, i) => ({ token: signToken(`bb-u${i}-${suffix}`, "user", service.secret, 4) }));
  const created = await service.call("POST", "/api/campaigns", signToken(`bb-adv-${suffix}`, "user", service.secret, 4), { name: "bench-batch ingest" });
  if (created.status !== 201) throw new Error(`creating the campaign: ${created.status} ${created.text.slice(0, 300)}`);
  const types = ["view", "like", "comment"];
  const request = (tag) => (i) => ({
    method: "POST",
    path: "/api/activity",
    token: users[i % USERS].token,
    body: { events: Array.from({ length: EVENTS_PER_REQUEST }, (_, j) => ({ id: `${tag}${i}-${j}`, type: types[(i + j) % 3], ...(j % 2 === 0 ? { campaignId: created.json.id } : {}) })) },
  });
  const check = (r) => (r.json?.accepted === EVENTS_PER_REQUEST ? undefined : `202 but ${r.text.slice(0, 80)}`);
  // One request per user first: each user's Durable Object is created (and its schema made) once.
  await load(service, { count: USERS, concurrency: INGEST_CONCURRENCY, ok: 202, make: request("w"), check });
  const before = workerdUsage();
  const measured = await load(service, { count: INGEST_REQUESTS, concurrency: INGEST_CONCURRENCY, ok: 202, make: request("m"), check });
  const events = measured.completed * EVENTS_PER_REQUEST;
  return { measured, events, eventsPerSecond: round(events / measured.seconds, 0), workerdCpuSeconds: round(workerdUsage().cpuSeconds - before.cpuSeconds, 1) };
}

/** POST .../run, then until the day is done and every message this run enqueued is acked (or MAX_SECONDS). */
async function runDay(admin, day, n, enqueuedBefore) {
  const started = performance.now();
  const acked0 = queue.acked;
  const res = await service.call("POST", `/api/admin/batches/${day}/run`, admin);
  if (res.status !== 202) throw new Error(`POST run: ${res.status} ${res.text.slice(0, 300)}`);
  let progress = res.json;
  let peakRss = 0;
  while (performance.now() - started < MAX_SECONDS * 1000) {
    await sleep(1000);
    peakRss = Math.max(peakRss, workerdUsage().rssKiB);
    const r = await service.call("GET", `/api/admin/batches/${day}`, admin, undefined, 60_000).catch(() => null);
    if (r?.status === 200) progress = r.json;
    if (progress.status === "done" && queue.acked - acked0 >= progress.queueMessages - enqueuedBefore) break;
  }
  const seconds = (performance.now() - started) / 1000;
  const done = progress.status === "done";
  return { done, seconds: round(seconds, 1), usersPerSecond: round(n / seconds, 0), messages: progress.queueMessages - enqueuedBefore, peakRssMiB: round(peakRss / 1024, 0), progress };
}

async function batchAtScale(admin, n, index) {
  const day = new Date(Date.parse("2026-01-01T00:00:00Z") + index * 86_400_000).toISOString().slice(0, 10);
  const p = plan(n, SERVICE);
  mkdirSync(service.appDir, { recursive: true });
  const sqlPath = `${service.appDir}/seed-${n}.sql`;
  writeFileSync(sqlPath, populationSql(n, day, Date.now(), p.b));
  let t = performance.now();
  await d1(["--file", sqlPath]);
  const seedSeconds = round((performance.now() - t) / 1000, 1);
  const before = await counts(n, day);
  console.log(`  N=${n}: seeded in ${seedSeconds} s; running ${day} ...`);

  await service.start();
  const idle = workerdUsage();
  const run = await runDay(admin, day, n, 0);
  const cpu = round(workerdUsage().cpuSeconds - idle.cpuSeconds, 1);
  const ledger = await service.call("GET", "/api/admin/ledger/check", admin, undefined, 300_000);
  await service.stop();
  const after = await counts(n, day);
  const inserted = COUNTED.reduce((a, t) => a + after[t] - before[t], 0);
  const got = run.progress.payouts;
  const same = (a = { count: 0, amountIdr: 0, feeIdr: 0 }, b) => a.count === b.count && a.amountIdr === b.amountIdr && a.feeIdr === b.feeIdr;
  const asExpected = run.done && ["A", "B", "C"].every((l) => (run.progress.levels[l] ?? 0) === p.expected.levels[l]) && same(got.paid, p.expected.paid) && same(got.held, p.expected.held) && after.banned === p.expected.levels.A && after.userIdr - before.userIdr === p.expected.paid.amountIdr;

  console.log(`  N=${n}: ${run.done ? `done in ${run.seconds} s` : "NOT DONE"}; rerunning ...`);
  await service.start();
  const rerun = await runDay(admin, day, n, run.progress.queueMessages);
  await service.stop();
  const again = await counts(n, day);
  const rerunPaysNobody = rerun.done && COUNTED.every((t) => again[t] === after[t]) && again.userIdr === after.userIdr;
  return { users: n, day, seedSeconds, run, workerdCpuSeconds: cpu, rowsPerUser: round((inserted + after.classified - before.classified) / n, 2), asExpected, expected: p.expected, ledgerOk: ledger.json?.ok === true, rerun: { seconds: rerun.seconds, messages: rerun.messages, paysNobodyTwice: rerunPaysNobody } };
}

async function main() {
  await service.start();
  const admin = signToken(`bb-admin-${Date.now().toString(36)}`, "admin", service.secret, 4);
  console.log(`A: ${INGEST_REQUESTS} × ${EVENTS_PER_REQUEST} events from ${USERS} users at concurrency ${INGEST_CONCURRENCY} ...`);
  const a = await ingest(admin);
  await service.stop();
  console.log(`B: the daily batch for ${SIZES.join(", ")} users ...`);
  const batches = [];
  for (const [i, n] of SIZES.entries()) batches.push(await batchAtScale(admin, n, i));

  const m = a.measured;
  const tableA = markdownTable(
    ["POST /api/activity", "requests", "events/s", "requests/s", "p50 ms", "p99 ms", "errors", "D1 round trips", "D1 statements"],
    [[`${USERS} users, ${EVENTS_PER_REQUEST} events each, concurrency ${INGEST_CONCURRENCY}`, m.completed, fmt(a.eventsPerSecond, 0), fmt(m.requestsPerSecond), fmt(m.latencyMs.p50), fmt(m.latencyMs.p99), m.errorCount, fmt(m.d1.roundTripsMean, 2), fmt(m.d1.statementsMean, 2)]],
  );
  const tableB = markdownTable(
    ["active users", "seed s", "run s", "users/s", "queue messages", "rows written per user", "paid (count / IDR)", "held", "banned", "as expected", "peak RSS MiB", "workerd CPU s", "rerun s", "rerun pays nobody twice", "ledger check"],
    batches.map((b) => {
      const pr = b.run.progress;
      return [fmt(b.users, 0), fmt(b.seedSeconds), b.run.done ? fmt(b.run.seconds) : `NOT DONE (${pr.classified}/${b.users})`, fmt(b.run.usersPerSecond, 0), b.run.messages, fmt(b.rowsPerUser, 2), `${fmt(pr.payouts.paid?.count ?? 0, 0)} / ${fmt(pr.payouts.paid?.amountIdr ?? 0, 0)}`, fmt(pr.payouts.held?.count ?? 0, 0), fmt(pr.levels.A ?? 0, 0), b.asExpected ? "yes" : "NO", b.run.peakRssMiB, b.workerdCpuSeconds, fmt(b.rerun.seconds), b.rerun.paysNobodyTwice ? "yes" : "NO", b.ledgerOk ? "ok" : "FAILED"];
    }),
  );
  console.log(`\n${tableA}\n\n${tableB}\n`);
  writeResults("batch-results.json", { at: new Date().toISOString(), machine: machine(), config: { ingestRequests: INGEST_REQUESTS, ingestConcurrency: INGEST_CONCURRENCY, sizes: SIZES, campaigns: CAMPAIGNS }, ingest: a, batches, markdown: `${tableA}\n\n${tableB}` });
  return m.errorCount === 0 && batches.every((b) => b.asExpected && b.ledgerOk && b.rerun.paysNobodyTwice) ? 0 : 1;
}

await runBenchmark(service, "bench-batch", main);
