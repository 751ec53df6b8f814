#!/usr/bin/env node
// `npm run bench`: what one request costs, on one service, in interleaved rounds (so drift in the
// machine's load falls on every endpoint alike):
//   GET /healthz                 no D1: the floor of the stack (workerd, the dev proxy, the load generator)
//   GET /api/payment/packages    one D1 read
//   GET /api/wallet/balance      one batch: first sight, the caller's record and wallets
//   POST /api/wallet/transfer    one Durable Object call (rate limit, velocity) + one D1 batch
// Prints req/s, p50/p99, D1 round trips and statements per request (from the Server-Timing header the
// service adds with D1_METRICS=true), the local stack's CPU per request (/proc) and the ratios the
// targets are stated in.
// Env: BENCH_ROUNDS (5), BENCH_REQUESTS (400 per endpoint and round), BENCH_CONCURRENCY (16),
// BENCH_PORT (8797), BENCH_SIM_PORT (8798), BENCH_DEVTOOLS (on: wrangler dev as `npm start` runs it;
// `off` turns its DevTools inspector off, which otherwise reports every D1 and object call as it happens
// and so costs the local stack more than a D1 read). Results: .bench/results.json.
import { benchService, envNumber, fmt, load, machine, markdownTable, round, runBenchmark, summarise, workerdUsage, writeResults } from "./bench/harness.mjs";
import { REQUEST_PATH_VARS, requestPaths, USERS } from "./bench/request-paths.mjs";

const ROUNDS = Math.floor(envNumber("BENCH_ROUNDS", 5));
const PER_ROUND = Math.floor(envNumber("BENCH_REQUESTS", 400));
const CONCURRENCY = Math.floor(envNumber("BENCH_CONCURRENCY", 16));
const TARGETS = [
  ["transfer", "healthz", 0.4],
  ["transfer", "packages", 0.9],
  ["balance", "packages", 0.95],
];

const service = benchService({
  name: "bench",
  port: envNumber("BENCH_PORT", 8797),
  simPort: envNumber("BENCH_SIM_PORT", 8798),
  extraVars: REQUEST_PATH_VARS,
  devtools: process.env.BENCH_DEVTOOLS !== "off",
});

async function main() {
  console.log(`starting the service (${service.base}, DevTools ${service.devtools ? "on" : "off"}) ...`);
  await service.start();
  const { admin, endpoints } = await requestPaths(service);
  const names = Object.keys(endpoints);
  console.log("warming up ...");
  for (const name of names) await load(service, { ...endpoints[name], count: 100, concurrency: CONCURRENCY });

  const runs = Object.fromEntries(names.map((n) => [n, []]));
  // CPU seconds the local stack spent on each endpoint's requests (/proc): the workerd runtime of the
  // Worker, D1 and the objects; the workerd runtime of wrangler's dev proxy; wrangler's Node process
  // (its dev proxy's log and DevTools traffic).
  const cpuParts = { runtime: "runtimeCpuSeconds", proxy: "proxyCpuSeconds", wrangler: "wranglerCpuSeconds" };
  const cpu = Object.fromEntries(names.map((n) => [n, { runtime: 0, proxy: 0, wrangler: 0 }]));
  const measured = async (name) => {
    const before = workerdUsage(service.port);
    const run = await load(service, { ...endpoints[name], count: PER_ROUND, concurrency: CONCURRENCY });
    const after = workerdUsage(service.port);
    for (const [part, key] of Object.entries(cpuParts)) cpu[name][part] += after[key] - before[key];
    return run;
  };
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order every round, so no endpoint always runs first (or right after another).
    for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) runs[name].push(await measured(name));
    console.log(`round ${r + 1}/${ROUNDS}: ${names.map((n) => `${n} ${fmt(runs[n].at(-1).requestsPerSecond, 0)}/s`).join(", ")}`);
  }
  const merged = Object.fromEntries(
    names.map((n) => {
      const parts = runs[n];
      const errors = {};
      for (const p of parts) for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
      const summary = summarise(parts.flatMap((p) => p.samples), { errors, proxyRetries: parts.reduce((a, p) => a + p.proxyRetries, 0), seconds: parts.reduce((a, p) => a + p.seconds, 0) });
      const perRequestMs = (seconds) => round((seconds * 1000) / Math.max(1, summary.completed + summary.errorCount), 2);
      return [n, { ...summary, cpuMsPerRequest: Object.fromEntries(Object.keys(cpuParts).map((part) => [part, perRequestMs(cpu[n][part])])) }];
    }),
  );
  const ledger = await service.call("GET", "/api/admin/ledger/check", admin);
  await service.stop();

  const rate = (n) => merged[n].requestsPerSecond;
  const ratio = (a, b) => round(rate(a) / rate(b), 3);
  const table = markdownTable(
    ["endpoint", "requests", "req/s", "p50 ms", "p99 ms", "D1 round trips", "D1 statements", "CPU ms/req runtime", "CPU ms/req dev proxy", "CPU ms/req wrangler", "÷ /healthz", "÷ packages"],
    names.map((n) => {
      const m = merged[n];
      const { method, path } = endpoints[n].make(0);
      return [`${method} ${path}`, m.completed, fmt(m.requestsPerSecond), fmt(m.latencyMs.p50), fmt(m.latencyMs.p99), fmt(m.d1.roundTripsMean ?? 0, 2), fmt(m.d1.statementsMean ?? 0, 2), fmt(m.cpuMsPerRequest.runtime, 2), fmt(m.cpuMsPerRequest.proxy, 2), fmt(m.cpuMsPerRequest.wrangler, 2), fmt(ratio(n, "healthz"), 2), fmt(ratio(n, "packages"), 2)];
    }),
  );
  // The same ratios from the Worker runtime's CPU per request alone (what a request costs the service,
  // without wrangler dev's proxy and DevTools traffic): b's cost over a's.
  const runtimeRatio = (a, b) => round(merged[b].cpuMsPerRequest.runtime / merged[a].cpuMsPerRequest.runtime, 3);
  const targets = TARGETS.map(([a, b, min]) => ({ target: `${a} ≥ ${min * 100}% of ${b}`, ratio: ratio(a, b), met: ratio(a, b) >= min, runtimeCpuRatio: runtimeRatio(a, b) }));
  console.log(`\n${table}\n`);
  for (const t of targets) console.log(`${t.met ? "met   " : "MISSED"}  ${t.target}: ${fmt(t.ratio * 100, 1)}% (by the runtime's CPU per request alone: ${fmt(t.runtimeCpuRatio * 100, 1)}%)`);
  for (const n of names) if (merged[n].errorCount || merged[n].proxyRetries) console.log(`${n}: errors ${JSON.stringify(merged[n].errors)}, dev-proxy 503s retried ${merged[n].proxyRetries}`);
  if (service.reloads) console.log(`WARNING: wrangler reloaded the Worker ${service.reloads} time(s) during the run`);
  const ledgerOk = ledger.status === 200 && ledger.json?.ok === true;
  console.log(`ledger check: ${ledgerOk ? "ok" : `FAILED ${ledger.text.slice(0, 500)}`}`);
  writeResults("results.json", { at: new Date().toISOString(), machine: machine(), config: { rounds: ROUNDS, perRound: PER_ROUND, concurrency: CONCURRENCY, users: USERS, devtools: service.devtools }, endpoints: merged, rounds: runs, targets, ledgerOk, markdown: table });
  return ledgerOk && names.every((n) => merged[n].errorCount === 0) ? 0 : 1;
}

await runBenchmark(service, "bench", main);
