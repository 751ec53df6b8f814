#!/usr/bin/env node
// `npm run bench:realtime`: 1,000 WebSockets (REALTIME_SOCKETS) across 200 users (REALTIME_USERS), held by
// the users' Durable Objects under `wrangler dev` on 127.0.0.1, and transfers between those users at a
// bounded concurrency. For every transfer: the latency from its HTTP answer to the matching
// `transaction-update` on every socket of both users (p50/p99), and events lost (expected on a socket but
// never received within BENCH_REALTIME_GRACE_MS after the last answer; must be 0). Then every socket
// reconnects with `since` and the replay must fill any gap. Memory: RSS of the local runtime.
// Env: REALTIME_SOCKETS (1000), REALTIME_USERS (200), REALTIME_TRANSFERS (2000), REALTIME_CONCURRENCY (8),
// BENCH_REALTIME_PORT (8817), BENCH_REALTIME_SIM_PORT (8818). Results: .bench/realtime-results.json.
// Needs Node's WebSocket client: the npm script runs node with --experimental-websocket (Node 20).
import { benchService, envNumber, fmt, machine, markdownTable, percentile, round, sleep, workerdUsage, writeResults } from "./bench/harness.mjs";
import { signToken } from "./dev-token.mjs";

const SOCKETS = Math.floor(envNumber("REALTIME_SOCKETS", 1000));
const USERS = Math.floor(envNumber("REALTIME_USERS", 200));
const TRANSFERS = Math.floor(envNumber("REALTIME_TRANSFERS", 2000));
const CONCURRENCY = Math.floor(envNumber("REALTIME_CONCURRENCY", 8));
const GRACE_MS = envNumber("BENCH_REALTIME_GRACE_MS", 5000);

const service = benchService({
  name: "bench-realtime",
  port: envNumber("BENCH_REALTIME_PORT", 8817),
  simPort: envNumber("BENCH_REALTIME_SIM_PORT", 8818),
  extraVars: ["RATE_LIMIT_PER_MINUTE:1000000", "RAPID_TRANSACTIONS_PER_MINUTE:1000000", "SPEND_LIMIT_DAILY_UNVERIFIED_IDR:1000000000000", `REALTIME_MAX_SOCKETS_PER_USER:${Math.ceil(SOCKETS / USERS) + 1}`],
});

function openSocket(token, since) {
  return new Promise((resolvePromise, reject) => {
    const url = `${service.base.replace("http", "ws")}/api/realtime?ticket=${encodeURIComponent(token)}${since !== undefined ? `&since=${since}` : ""}`;
    const ws = new WebSocket(url);
    const socket = { ws, lastSeq: 0, seen: new Map(), resyncs: 0 };
    const timer = setTimeout(() => reject(new Error("socket did not open within 20 s")), 20_000);
    ws.addEventListener("open", () => {
      clearTimeout(timer);
      resolvePromise(socket);
    });
    ws.addEventListener("error", (e) => reject(new Error(`socket error ${e.message ?? ""}`)));
    ws.addEventListener("message", (e) => {
      const frame = JSON.parse(String(e.data));
      if (frame.type === "resync") socket.resyncs++;
      if (typeof frame.seq === "number") socket.lastSeq = Math.max(socket.lastSeq, frame.seq);
      if (frame.type === "transaction-update") socket.seen.set(frame.data.transactionId, performance.now());
    });
  });
}

/** A one-time ticket per socket: the benchmark connects like a browser. */
async function ticketFor(user) {
  const r = await service.call("POST", "/api/realtime/ticket", user.token);
  if (r.status !== 201) throw new Error(`ticket: ${r.status} ${r.text.slice(0, 200)}`);
  return r.json.ticket;
}

async function main() {
  console.log(`starting the service (${service.base}) ...`);
  await service.start();
  const suffix = Date.now().toString(36);
  const admin = signToken(`rt-admin-${suffix}`, "admin", service.secret, 2);
  const users = Array.from({ length: USERS }, (_, i) => ({ id: `rt-u${i}-${suffix}`, token: signToken(`rt-u${i}-${suffix}`, "user", service.secret, 2), sockets: [] }));
  for (const u of users) {
    await service.call("GET", "/api/wallet/balance", u.token);
    const funded = await service.call("POST", "/api/admin/adjustments", admin, { userId: u.id, asset: "COIN", amount: 1_000_000, reason: "benchmark funding" });
    if (funded.status !== 201) throw new Error(`funding: ${funded.status} ${funded.text.slice(0, 200)}`);
  }
  const idle = workerdUsage();
  console.log(`opening ${SOCKETS} sockets for ${USERS} users ...`);
  const openStarted = performance.now();
  for (let i = 0; i < SOCKETS; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, SOCKETS - i) }, async (_, j) => {
        const user = users[(i + j) % USERS];
        user.sockets.push(await openSocket(await ticketFor(user)));
      }),
    );
  }
  const openSeconds = (performance.now() - openStarted) / 1000;
  const withSockets = workerdUsage();
  await sleep(1000);
  // The funding events arrived before the test starts; from here on every transaction-update is timed.
  for (const u of users) for (const s of u.sockets) s.seen.clear();

  console.log(`${TRANSFERS} transfers at concurrency ${CONCURRENCY} ...`);
  const answered = [];
  let issued = 0;
  let failures = 0;
  let peakRss = withSockets.rssKiB;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (issued < TRANSFERS) {
        const i = issued++;
        const from = users[i % USERS];
        const to = users[(i * 7 + 1 + Math.floor(Math.random() * (USERS - 1))) % USERS];
        if (to === from) continue;
        const r = await service.call("POST", "/api/wallet/transfer", from.token, { toUserId: to.id, amount: 1 });
        if (r.status !== 201) {
          failures++;
          continue;
        }
        answered.push({ id: r.json.id, at: performance.now(), users: [from, to] });
        if (i % 200 === 0) peakRss = Math.max(peakRss, workerdUsage().rssKiB);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const deadline = performance.now() + GRACE_MS;
  const missing = () => answered.reduce((n, a) => n + a.users.reduce((m, u) => m + u.sockets.filter((s) => !s.seen.has(a.id)).length, 0), 0);
  while (missing() > 0 && performance.now() < deadline) await sleep(100);
  peakRss = Math.max(peakRss, workerdUsage().rssKiB);

  const latencies = [];
  for (const a of answered) for (const u of a.users) for (const s of u.sockets) if (s.seen.has(a.id)) latencies.push(Math.max(0, s.seen.get(a.id) - a.at));
  latencies.sort((x, y) => x - y);
  const expected = answered.reduce((n, a) => n + a.users.reduce((m, u) => m + u.sockets.length, 0), 0);
  const lost = missing();

  // Every socket drops and comes back with `since`: the replay must bring whatever it had not received.
  console.log("reconnecting every socket with since ...");
  let replayGaps = 0;
  let resyncs = 0;
  for (const u of users) {
    const sockets = u.sockets;
    u.sockets = [];
    for (const s of sockets) {
      s.ws.close(1000, "bench reconnect");
      const again = await openSocket(await ticketFor(u), s.lastSeq);
      again.lastSeq = s.lastSeq;
      u.sockets.push(again);
    }
  }
  await sleep(1000);
  for (const u of users) for (const s of u.sockets) resyncs += s.resyncs;
  // After a reconnect nothing new happened, so a replay that sends anything means the socket had missed it.
  for (const u of users) for (const s of u.sockets) replayGaps += s.seen.size;
  const ledger = await service.call("GET", "/api/admin/ledger/check", admin);
  for (const u of users) for (const s of u.sockets) s.ws.close(1000, "done");
  await service.stop();

  const results = {
    machine: machine(),
    sockets: SOCKETS,
    users: USERS,
    openSeconds: round(openSeconds, 1),
    transfers: { answered: answered.length, failures, seconds: round(seconds, 1), perSecond: round(answered.length / seconds, 1) },
    deliveries: { expected, received: latencies.length, lost, latencyMs: { p50: round(percentile(latencies, 50), 1), p99: round(percentile(latencies, 99), 1), max: round(latencies.at(-1), 1) } },
    replay: { gapsFilledOnReconnect: replayGaps, resyncs },
    memory: { idleRssMiB: round(idle.rssKiB / 1024, 0), withSocketsRssMiB: round(withSockets.rssKiB / 1024, 0), peakRssMiB: round(peakRss / 1024, 0) },
    ledgerOk: ledger.json?.ok === true,
  };
  writeResults("realtime-results.json", results);
  console.log(
    markdownTable(
      ["sockets / users", "transfers (req/s)", "deliveries expected", "received", "lost", "latency p50 ms", "p99 ms", "replay on reconnect", "RSS idle → sockets → peak MiB"],
      [[`${SOCKETS} / ${USERS}`, `${answered.length} (${fmt(results.transfers.perSecond)})`, expected, latencies.length, lost, fmt(results.deliveries.latencyMs.p50), fmt(results.deliveries.latencyMs.p99), `${replayGaps} events, ${resyncs} resyncs`, `${results.memory.idleRssMiB} → ${results.memory.withSocketsRssMiB} → ${results.memory.peakRssMiB}`]],
    ),
  );
  if (lost > 0 || failures > 0 || !results.ledgerOk) process.exitCode = 1;
}

main().catch(async (error) => {
  console.error(error);
  await service.stop().catch(() => {});
  process.exit(1);
});
