#!/usr/bin/env node
// `npm run bench`: wallet transfers through the real stack (`wrangler dev`, workerd, local D1) on a
// fresh database, compared with the raw SQLite commit rate of the same 5-statement transaction.
// Env: BENCH_TRANSFERS (3000), BENCH_CONCURRENCY (16), BENCH_MAX_SECONDS (120), BENCH_PORT (8797),
// BENCH_SIM_PORT (8798), BENCH_SQLITE_TRANSACTIONS (20000), BENCH_SNAPSHOT (1). Results: .bench/results.json.
//
// `wrangler dev` rebuilds and reloads on every edit under src/, which would restart the Worker in the
// middle of a measurement. So by default the service runs from a snapshot of the working tree taken at
// start (.bench/run-<timestamp>/app, node_modules linked, deleted afterwards); BENCH_SNAPSHOT=0 runs
// it in place, and BENCH_REF=<commit> benchmarks a commit instead (`git archive`, plus the local
// .dev.vars). Reloads seen during the run are reported either way.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, totalmem } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { signToken } from "./dev-token.mjs";
import { ensureDevVars } from "./dev-vars.mjs";
import { rawSqliteRate } from "./bench-sqlite.mjs";

const HOST = "127.0.0.1";
const num = (name, fallback) => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`${name} must be a positive number, got "${raw}"`);
    process.exit(2);
  }
  return n;
};
const PORT = num("BENCH_PORT", 8797);
const SIM_PORT = num("BENCH_SIM_PORT", 8798);
const TRANSFERS = Math.floor(num("BENCH_TRANSFERS", 3000));
const CONCURRENCY = Math.floor(num("BENCH_CONCURRENCY", 16));
const MAX_SECONDS = num("BENCH_MAX_SECONDS", 120);
const SQLITE_TRANSACTIONS = Math.floor(num("BENCH_SQLITE_TRANSACTIONS", 20000));
const REF = process.env.BENCH_REF || null;
const SNAPSHOT = REF !== null || !["0", "false", "no"].includes((process.env.BENCH_SNAPSHOT ?? "1").toLowerCase());
const USERS = 20;
const WARMUP = 200;
const READS = 500;
const FUNDING = 1_000_000_000;
const READY_TIMEOUT_MS = 90_000;
const BASE = `http://${HOST}:${PORT}`;

const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
const PERSIST = resolve(`.bench/state-${stamp}`);
const RUN_DIR = resolve(`.bench/run-${stamp}`);
const APP_DIR = SNAPSHOT ? `${RUN_DIR}/app` : process.cwd();
const RELOAD = /Reloading local server/g;
const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

// ---------------------------------------------------------------------------------------------
// The server: `node scripts/start.mjs` in its own process group, so workerd goes down with it.

let server;
let serverExited = false;
let serverLog = "";
let interrupted = false;

function portFree(port) {
  return new Promise((resolve) => {
    const probe = createServer()
      .once("error", () => resolve(false))
      .once("listening", () => probe.close(() => resolve(true)))
      .listen(port, HOST);
  });
}

/** What `wrangler dev` and start.mjs need, copied as they are now; node_modules is linked. */
function snapshotApp() {
  mkdirSync(APP_DIR, { recursive: true });
  if (REF) {
    const archive = spawnSync("git", ["archive", "--format=tar", REF], { maxBuffer: 1 << 30 });
    if (archive.status !== 0) throw new Error(`git archive ${REF}: ${String(archive.stderr).trim()}`);
    const untar = spawnSync("tar", ["-x", "-C", APP_DIR], { input: archive.stdout });
    if (untar.status !== 0) throw new Error(`tar: ${String(untar.stderr).trim()}`);
    cpSync(".dev.vars", `${APP_DIR}/.dev.vars`);
  } else {
    const entries = ["src", "scripts", "tools", "migrations", "wrangler.toml", "package.json", "tsconfig.json", "worker-configuration.d.ts", ".dev.vars", ".dev.vars.example"];
    for (const entry of entries) {
      if (existsSync(entry)) cpSync(entry, `${APP_DIR}/${entry}`, { recursive: true });
    }
  }
  symlinkSync(resolve("node_modules"), `${APP_DIR}/node_modules`, "dir");
}

function startServer() {
  const env = {
    ...process.env,
    PORT: String(PORT),
    SIM_PORT: String(SIM_PORT),
    PERSIST_DIR: PERSIST,
    SIM_LOG: "false",
    // The 20 benchmark users send far more than 10 value-moving requests a minute on purpose: the rate
    // limit and the rapid_transactions rule are lifted so the figures show the transfer path itself.
    EXTRA_VARS: "D1_METRICS:true RATE_LIMIT_PER_MINUTE:1000000 RAPID_TRANSACTIONS_PER_MINUTE:1000000",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
  };
  server = spawn(process.execPath, ["scripts/start.mjs"], { cwd: APP_DIR, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const keep = (d) => {
    serverLog += d;
    if (serverLog.length > 20_000) serverLog = serverLog.slice(-20_000);
  };
  server.stdout.on("data", keep);
  server.stderr.on("data", keep);
  server.on("exit", () => (serverExited = true));
}

let reloads = 0;
/** Counts wrangler reloads in the log so far (the log keeps only a tail, so count as it arrives). */
function watchReloads() {
  const count = (d) => (reloads += (String(d).match(RELOAD) ?? []).length);
  server.stdout.on("data", count);
  server.stderr.on("data", count);
}

/** Every process below `pid`, read from /proc (Linux); catches anything that left the group. */
function descendants(pid) {
  if (!existsSync("/proc")) return [];
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  const found = [];
  const walk = (p) => {
    for (const c of children.get(p) ?? []) {
      found.push(c);
      walk(c);
    }
  };
  walk(pid);
  return found;
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let stopping;
function stopServer() {
  stopping ??= (async () => {
    if (!server?.pid) return;
    const pid = server.pid;
    const tree = [pid, ...descendants(pid)];
    const signal = (sig) => {
      try {
        process.kill(-pid, sig);
      } catch {
        // group already gone
      }
    };
    // The group outlives start.mjs when it dies first (e.g. mid-migration), so ask the group too.
    const anyLeft = () => alive(-pid) || tree.some(alive);
    signal("SIGTERM");
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && anyLeft()) await sleep(100);
    if (anyLeft()) {
      signal("SIGKILL");
      for (const p of tree) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          // gone
        }
      }
      await sleep(300);
    }
  })();
  return stopping;
}

function cleanupState() {
  rmSync(PERSIST, { recursive: true, force: true });
  rmSync(RUN_DIR, { recursive: true, force: true });
}

class Interrupted extends Error {}
const checkInterrupted = () => {
  if (interrupted) throw new Interrupted("interrupted");
};

process.on("SIGINT", () => {
  if (interrupted) {
    // A second Ctrl-C: no more waiting.
    try {
      if (server?.pid) process.kill(-server.pid, "SIGKILL");
    } catch {
      // gone
    }
    cleanupState();
    process.exit(130);
  }
  interrupted = true;
  console.error("\ninterrupted: shutting the server down");
  stopServer().finally(() => {
    cleanupState();
    process.exit(130);
  });
});

async function waitReady() {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let errorSeenAt;
  while (Date.now() < deadline) {
    if (serverExited) throw new Error("the service exited during startup");
    // wrangler stays up (watching files) after a build or config error; give it 15 s, then give up.
    if (errorSeenAt === undefined && /\[ERROR\]/.test(serverLog)) errorSeenAt = Date.now();
    if (errorSeenAt !== undefined && Date.now() - errorSeenAt > 15_000) throw new Error("wrangler reported an [ERROR] and the service did not become ready");
    checkInterrupted();
    try {
      const res = await fetch(`${BASE}/openapi.json`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  throw new Error(`the service was not ready within ${READY_TIMEOUT_MS / 1000} s`);
}

// ---------------------------------------------------------------------------------------------
// Requests and measurement.

const TIMING = /roundTrips=(\d+)\s+rowsRead=(\d+)\s+rowsWritten=(\d+)/;

async function call(method, path, token, body) {
  const started = performance.now();
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  const ms = performance.now() - started;
  const m = TIMING.exec(res.headers.get("server-timing") ?? "");
  const d1 = m ? { roundTrips: Number(m[1]), rowsRead: Number(m[2]), rowsWritten: Number(m[3]) } : undefined;
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, ms, d1, json, text };
}

/**
 * Runs up to `count` requests from `make(i)` with `concurrency` in flight, stopping new ones once
 * `maxSeconds` have passed. Latency and D1 figures are summarised over the requests answered `okStatus`.
 */
async function load({ count, concurrency, maxSeconds, okStatus, make }) {
  const samples = [];
  const errors = {};
  let issued = 0;
  let firstError;
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  const worker = async () => {
    while (issued < count && performance.now() < deadline && !interrupted) {
      const i = issued++;
      const { method, path, token, body } = make(i);
      try {
        const r = await call(method, path, token, body);
        if (r.status === okStatus) samples.push(r);
        else {
          errors[r.status] = (errors[r.status] ?? 0) + 1;
          firstError ??= `${r.status} ${r.text.slice(0, 300)}`;
        }
      } catch (error) {
        errors.network = (errors.network ?? 0) + 1;
        firstError ??= String(error?.cause ?? error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  const seconds = (performance.now() - started) / 1000;
  return summarise({ samples, errors, issued, seconds, firstError, capped: issued < count });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function summarise({ samples, errors, issued, seconds, firstError, capped }) {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const withD1 = samples.filter((s) => s.d1);
  const mean = (f) => (withD1.length ? withD1.reduce((acc, s) => acc + f(s.d1), 0) / withD1.length : null);
  const max = (f) => (withD1.length ? Math.max(...withD1.map((s) => f(s.d1))) : null);
  const round = (x, d = 2) => (x === null ? null : Math.round(x * 10 ** d) / 10 ** d);
  return {
    issued,
    completed: samples.length,
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    firstError: firstError ?? null,
    stoppedByTimeCap: capped,
    seconds: round(seconds, 3),
    ratePerSecond: round(samples.length / seconds, 1),
    latencyMs: {
      p50: round(percentile(ms, 50)),
      p90: round(percentile(ms, 90)),
      p99: round(percentile(ms, 99)),
      max: round(ms.at(-1) ?? null),
      mean: round(ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : null),
    },
    d1: {
      samplesWithHeader: withD1.length,
      roundTripsMean: round(mean((d) => d.roundTrips)),
      roundTripsMax: max((d) => d.roundTrips),
      rowsReadMean: round(mean((d) => d.rowsRead)),
      rowsWrittenMean: round(mean((d) => d.rowsWritten)),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Output.

const fmt = (x, d = 1) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));

function printConsoleTable(rows) {
  const head = ["scenario", "done", "errors", "rate/s", "p50", "p90", "p99", "max ms", "RT mean", "RT max", "rows read", "rows written"];
  const body = rows.map(([name, r]) => [
    name,
    String(r.completed),
    r.errorCount ? Object.entries(r.errors).map(([k, v]) => `${k}×${v}`).join(" ") : "0",
    fmt(r.ratePerSecond),
    fmt(r.latencyMs.p50),
    fmt(r.latencyMs.p90),
    fmt(r.latencyMs.p99),
    fmt(r.latencyMs.max),
    fmt(r.d1.roundTripsMean, 2),
    r.d1.roundTripsMax === null ? "–" : String(r.d1.roundTripsMax),
    fmt(r.d1.rowsReadMean, 2),
    fmt(r.d1.rowsWrittenMean, 2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
  console.log(line(head));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
}

function markdownTable(rows, sqlite) {
  const out = [
    "| scenario | count | rate/s | p50 ms | p99 ms | D1 round trips | rows read | rows written |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [name, r] of rows) {
    const rt = r.d1.roundTripsMean === null ? "–" : `${fmt(r.d1.roundTripsMean, 2)} (max ${r.d1.roundTripsMax})`;
    out.push(`| ${name} | ${r.completed} | ${fmt(r.ratePerSecond)} | ${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p99)} | ${rt} | ${fmt(r.d1.rowsReadMean, 2)} | ${fmt(r.d1.rowsWrittenMean, 2)} |`);
  }
  if (sqlite) {
    out.push(`| raw SQLite, same 5-statement tx (sqlite3 CLI, 1 commit each) | ${sqlite.transactions} | ${fmt(sqlite.txPerSecond)} | – | – | – | – | – |`);
  }
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------

async function main() {
  for (const port of [PORT, SIM_PORT]) {
    if (!(await portFree(port))) {
      console.error(`port ${port} is already in use on ${HOST}; stop whatever listens there or set BENCH_PORT / BENCH_SIM_PORT`);
      return 1;
    }
  }
  mkdirSync(".bench", { recursive: true });
  const secret = ensureDevVars().JWT_SECRET;
  if (!secret) {
    console.error("JWT_SECRET is missing from .dev.vars");
    return 1;
  }

  const loadBefore = loadavg()[0];
  if (loadBefore > cpus().length) console.log(`note: 1-minute load average is ${loadBefore.toFixed(1)} on ${cpus().length} CPUs before starting; expect noisy figures`);
  if (SNAPSHOT) snapshotApp();
  console.log(`starting the service on ${BASE} from ${REF ? `commit ${REF}` : SNAPSHOT ? "a snapshot of the working tree" : "the working tree"} (persist ${PERSIST}) ...`);
  const bootStarted = performance.now();
  startServer();
  try {
    await waitReady();
  } catch (error) {
    checkInterrupted();
    console.error(`FAILED to start: ${error.message}\n--- service output (tail) ---\n${serverLog.slice(-4000)}`);
    return 1;
  }
  const startupSeconds = (performance.now() - bootStarted) / 1000;
  console.log(`ready in ${startupSeconds.toFixed(1)} s`);
  watchReloads();

  const admin = signToken(`bench-admin-${suffix}`, "admin", secret, 2);
  const users = Array.from({ length: USERS }, (_, i) => {
    const id = `bench-u${i}-${suffix}`;
    return { id, token: signToken(id, "user", secret, 2) };
  });

  // Users are created on first sight; then each gets its coins from an admin adjustment.
  for (const u of users) {
    const r = await call("GET", "/api/wallet/balance", u.token);
    if (r.status !== 200) throw new Error(`creating ${u.id}: ${r.status} ${r.text.slice(0, 300)}`);
  }
  for (const u of users) {
    const r = await call("POST", "/api/admin/adjustments", admin, { userId: u.id, asset: "COIN", amount: FUNDING, reason: "benchmark funding" });
    if (r.status !== 201) throw new Error(`funding ${u.id}: ${r.status} ${r.text.slice(0, 300)}`);
  }
  checkInterrupted();
  console.log(`${USERS} users created and funded with ${FUNDING.toLocaleString("en-US")} coins each`);

  const randomPair = () => {
    const a = Math.floor(Math.random() * USERS);
    let b = Math.floor(Math.random() * (USERS - 1));
    if (b >= a) b++;
    return [users[a], users[b]];
  };
  const transferRequest = () => {
    const [from, to] = randomPair();
    return { method: "POST", path: "/api/wallet/transfer", token: from.token, body: { toUserId: to.id, amount: 1 + Math.floor(Math.random() * 5) } };
  };

  const warmup = await load({ count: WARMUP, concurrency: CONCURRENCY, maxSeconds: MAX_SECONDS, okStatus: 201, make: transferRequest });
  console.log(`warm-up: ${warmup.completed}/${WARMUP} transfers in ${warmup.seconds} s${warmup.errorCount ? `, errors ${JSON.stringify(warmup.errors)} (first: ${warmup.firstError})` : ""}`);

  checkInterrupted();
  console.log(`measuring ${TRANSFERS} transfers at concurrency ${CONCURRENCY} (cap ${MAX_SECONDS} s) ...`);
  const transfers = await load({ count: TRANSFERS, concurrency: CONCURRENCY, maxSeconds: MAX_SECONDS, okStatus: 201, make: transferRequest });
  checkInterrupted();
  console.log(`measuring ${READS} balance reads at concurrency ${CONCURRENCY} ...`);
  const reads = await load({
    count: READS,
    concurrency: CONCURRENCY,
    maxSeconds: MAX_SECONDS,
    okStatus: 200,
    make: (i) => ({ method: "GET", path: "/api/wallet/balance", token: users[i % USERS].token }),
  });

  checkInterrupted();
  const check = await call("GET", "/api/admin/ledger/check", admin);
  const ledgerOk = check.status === 200 && check.json?.ok === true;

  // The server is no longer needed; stop it before timing raw SQLite so it does not compete for CPU.
  await stopServer();

  console.log(`raw SQLite: ${SQLITE_TRANSACTIONS} transfers through the sqlite3 CLI ...`);
  let sqlite = null;
  try {
    sqlite = await rawSqliteRate({ transactions: SQLITE_TRANSACTIONS });
  } catch (error) {
    console.error(`raw SQLite comparison failed: ${error.message}`);
  }
  const ratio = sqlite && transfers.ratePerSecond ? transfers.ratePerSecond / sqlite.txPerSecond : null;

  const rows = [
    ["POST /api/wallet/transfer", transfers],
    ["GET /api/wallet/balance", reads],
  ];
  console.log("");
  printConsoleTable(rows);
  console.log("");
  if (transfers.errorCount) console.log(`transfer errors by status: ${JSON.stringify(transfers.errors)}; first: ${transfers.firstError}`);
  if (reads.errorCount) console.log(`read errors by status: ${JSON.stringify(reads.errors)}; first: ${reads.firstError}`);
  if (transfers.stoppedByTimeCap) console.log(`transfers stopped by the ${MAX_SECONDS} s cap after ${transfers.issued} of ${TRANSFERS}`);
  for (const [name, r] of rows) {
    if (r.completed > 0 && r.d1.samplesWithHeader === 0) console.log(`note: ${name} responses carried no server-timing header (is D1_METRICS on?)`);
    else if (r.d1.samplesWithHeader > 0 && r.d1.rowsReadMean === 0) console.log(`note: ${name} reports 0 rows read: its reads go through first()/raw(), which carry no row metadata`);
  }
  if (reloads > 0) console.log(`WARNING: wrangler reloaded the Worker ${reloads} time(s) during the run (source edits?); the figures mix code versions`);
  if (sqlite) {
    console.log(`raw SQLite: ${fmt(sqlite.txPerSecond)} tx/s (${sqlite.transactions} × ${sqlite.statementsPerTx} statements, WAL, synchronous=NORMAL, ${sqlite.seconds.toFixed(2)} s)`);
    console.log(`ratio D1-through-wrangler transfers/s ÷ raw SQLite tx/s = ${ratio.toFixed(4)} (${fmt(ratio * 100, 2)} %; raw is ${fmt(1 / ratio, 1)}× faster)`);
  } else {
    console.log("raw SQLite: skipped");
  }
  console.log(`ledger check: ${ledgerOk ? "ok: true" : `FAILED (${check.status}) ${check.text.slice(0, 1000)}`}`);

  const md = markdownTable(rows, sqlite);
  const results = {
    at: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? null,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      platform: process.platform,
      loadAverage1mBefore: Math.round(loadBefore * 100) / 100,
      loadAverage1mAfter: Math.round(loadavg()[0] * 100) / 100,
    },
    config: { port: PORT, simPort: SIM_PORT, transfers: TRANSFERS, concurrency: CONCURRENCY, maxSeconds: MAX_SECONDS, users: USERS, warmup: WARMUP, reads: READS, sqliteTransactions: SQLITE_TRANSACTIONS },
    ranFrom: REF ? `commit ${REF}` : SNAPSHOT ? "snapshot of the working tree" : "working tree",
    gitCommit: spawnSync("git", ["rev-parse", REF ?? "HEAD"], { encoding: "utf8" }).stdout?.trim() || null,
    workingTreeDirty: REF ? false : Boolean(spawnSync("git", ["status", "--porcelain", "--", "src", "migrations", "wrangler.toml"], { encoding: "utf8" }).stdout?.trim()),
    reloadsDuringRun: reloads,
    startupSeconds: Math.round(startupSeconds * 10) / 10,
    warmup,
    transfers,
    balanceReads: reads,
    rawSqlite: sqlite,
    ratioTransfersToRawSqlite: ratio,
    ledgerCheck: { status: check.status, ok: ledgerOk, body: check.json ?? check.text },
    markdown: md,
  };
  writeFileSync(".bench/results.json", `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n${md}\n\nwrote .bench/results.json`);
  return ledgerOk ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  if (interrupted) code = 130;
  else {
    console.error(`bench failed: ${error?.stack ?? error}`);
    if (serverLog) console.error(`--- service output (tail) ---\n${serverLog.slice(-3000)}`);
    code = 1;
  }
} finally {
  await stopServer();
  cleanupState();
}
process.exit(interrupted ? 130 : code);
