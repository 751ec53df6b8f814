#!/usr/bin/env node
// `npm run bench:profile`: where one request path's time goes inside the Worker's isolate (which also
// runs its Durable Objects). Starts the service as `npm run bench` does, loads one endpoint at
// concurrency 16 while V8's sampling profiler runs on the isolate (through wrangler's DevTools
// inspector), and prints the samples by function: self time, then inclusive time (a function and
// everything it called). The profile is kept for DevTools' Performance panel.
// Env: PROFILE_ENDPOINT (transfer | balance | packages | healthz; transfer), PROFILE_REQUESTS (3000),
// PROFILE_INTERVAL_US (200), PROFILE_TOP (40), BENCH_PORT (8797), BENCH_SIM_PORT (8798),
// PROFILE_INSPECTOR_PORT (9239). Results: .bench/profile-<endpoint>.cpuprofile.
import { mkdirSync, writeFileSync } from "node:fs";
import { benchService, envNumber, fmt, load, runBenchmark } from "./bench/harness.mjs";
import { REQUEST_PATH_VARS, requestPaths } from "./bench/request-paths.mjs";

const ENDPOINT = process.env.PROFILE_ENDPOINT ?? "transfer";
const REQUESTS = Math.floor(envNumber("PROFILE_REQUESTS", 3000));
const INTERVAL_US = Math.floor(envNumber("PROFILE_INTERVAL_US", 200));
const TOP = Math.floor(envNumber("PROFILE_TOP", 40));
const INSPECTOR_PORT = Math.floor(envNumber("PROFILE_INSPECTOR_PORT", 9239));

const service = benchService({ name: "profile", port: envNumber("BENCH_PORT", 8797), simPort: envNumber("BENCH_SIM_PORT", 8798), inspectorPort: INSPECTOR_PORT, extraVars: REQUEST_PATH_VARS });

/** A Chrome DevTools Protocol session with the isolate behind wrangler's inspector. */
async function devtools() {
  const origin = `http://127.0.0.1:${INSPECTOR_PORT}`;
  const targets = await (await fetch(`${origin}/json`)).json();
  if (!targets.length) throw new Error(`no inspectable isolate at ${origin}`);
  // wrangler's inspector proxy accepts DevTools clients from its own origin.
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { Origin: origin } });
  const pending = new Map();
  let id = 0;
  ws.onmessage = (m) => {
    const reply = JSON.parse(String(m.data));
    const settle = pending.get(reply.id);
    if (!settle) return;
    pending.delete(reply.id);
    settle(reply);
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`could not open ${targets[0].webSocketDebuggerUrl}`));
  });
  return {
    title: targets[0].title,
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const n = ++id;
        pending.set(n, (reply) => (reply.error ? reject(new Error(`${method}: ${reply.error.message}`)) : resolve(reply.result)));
        ws.send(JSON.stringify({ id: n, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Share of samples per function, self and inclusive (recursion counted once per sample). */
function aggregate(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const hits = new Map();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const label = (n) => {
    const { functionName, url, lineNumber } = n.callFrame;
    const file = url ? url.split("/").at(-1).split("?")[0] : "";
    return file ? `${functionName || "(anonymous)"} ${file}:${lineNumber + 1}` : functionName || "(native)";
  };
  const self = new Map();
  const inclusive = new Map();
  for (const [nodeId, count] of hits) {
    const name = label(byId.get(nodeId));
    self.set(name, (self.get(name) ?? 0) + count);
    const seen = new Set();
    for (let x = nodeId; x !== undefined; x = parent.get(x)) {
      const k = label(byId.get(x));
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + count);
    }
  }
  const total = profile.samples.length;
  const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([name, count]) => ({ name, share: count / total }));
  return { total, self: top(self), inclusive: top(inclusive) };
}

async function main() {
  console.log(`starting the service (${service.base}, inspector on ${INSPECTOR_PORT}) ...`);
  await service.start();
  const { endpoints } = await requestPaths(service);
  const endpoint = endpoints[ENDPOINT];
  if (!endpoint) throw new Error(`PROFILE_ENDPOINT must be one of ${Object.keys(endpoints).join(", ")}`);
  await load(service, { ...endpoint, count: 200, concurrency: 16 }); // warm up
  const inspector = await devtools();
  await inspector.send("Profiler.enable");
  await inspector.send("Profiler.setSamplingInterval", { interval: INTERVAL_US });
  await inspector.send("Profiler.start");
  const run = await load(service, { ...endpoint, count: REQUESTS, concurrency: 16 });
  const { profile } = await inspector.send("Profiler.stop");
  inspector.close();
  const { total, self, inclusive } = aggregate(profile);
  console.log(`\n${ENDPOINT}: ${run.completed} requests at ${fmt(run.requestsPerSecond)} req/s; isolate "${inspector.title}", ${total} samples every ${INTERVAL_US} µs`);
  const print = (title, rows) => {
    console.log(`\n${title}`);
    for (const r of rows) console.log(`${fmt(r.share * 100).padStart(6)} %  ${r.name}`);
  };
  print("self (where the isolate's thread was, including (idle) and (garbage collector))", self);
  print("inclusive (a function and everything it called)", inclusive);
  mkdirSync(".bench", { recursive: true });
  writeFileSync(`.bench/profile-${ENDPOINT}.cpuprofile`, JSON.stringify(profile));
  console.log(`\nwrote .bench/profile-${ENDPOINT}.cpuprofile`);
  return run.errorCount === 0 ? 0 : 1;
}

await runBenchmark(service, "profile", main);
