#!/usr/bin/env node
// `npm run bench:batch`: activity ingest and the daily classification + payout batch through the real
// stack (`wrangler dev`, workerd, local D1, the local `daily-batch` queue) on a fresh database.
//
//  A. Ingest: 200 users POST /api/activity, 100 events per request (unique ids, mixed types, half on a
//     campaign), BENCH_INGEST_REQUESTS (1500) requests at BENCH_INGEST_CONCURRENCY (8).
//  B. Batch: for each N in BENCH_BATCH_SIZES ("10000,100000"; ~11 min in all on 2 cores) a past business day is seeded straight
//     into the local D1 SQLite file with `wrangler d1 execute --local` (N users with their 4 accounts,
//     an advertiser, 5 campaigns funded by balanced adjustment transactions, N activity_days and N
//     collected daily_activity rows), then POST /api/admin/batches/<day>/run, until the day's status
//     is `done` (GET .../<day> about once a second) AND every queue message the run enqueued has been
//     acked (wrangler's "QUEUE daily-batch <acked>/<delivered>" log lines); cap BENCH_BATCH_MAX_SECONDS
//     (600) per run. Why both: `done` means "no user left unclassified", which on a rerun is already
//     true before its first message is processed. Measured: wall time, users/s, queue messages, rows
//     written per user (table counts before/after), totals paid against what the seeded population
//     must produce, workerd RSS and CPU, and a second run that must pay nobody twice.
//
// `wrangler d1 execute --local` is only ever run while the service is DOWN. With `wrangler dev` up on
// the same persist dir it works most of the time, but an execute (even one that only reads) can leave
// workerd's open connection on a stale snapshot: the service then logs "SQLITE_BUSY (extended:
// SQLITE_BUSY_SNAPSHOT)" internal errors, requests hang and queue invocations never finish (which
// stalls the local queue for good). So each size runs as: seed and count with the service stopped,
// start it, run, stop, count, start, rerun, stop, count. Each start is a fresh runtime, which also
// gives each run a clean idle RSS baseline.
//
// Env: BENCH_BATCH_PORT (8807), BENCH_BATCH_SIM_PORT (8808), BENCH_INGEST_REQUESTS (1500),
// BENCH_INGEST_CONCURRENCY (8), BENCH_BATCH_SIZES, BENCH_BATCH_MAX_SECONDS (600), BENCH_BATCH_STALL_SECONDS
// (90: a run whose progress does not move for that long is abandoned), BENCH_BATCH_CHUNK_USERS (unset:
// the service's own BATCH_CHUNK_USERS; a number is passed as that var), BENCH_SNAPSHOT (1),
// BENCH_KEEP_STATE (0). Results: .bench/batch-results.json; the whole server log: .bench/batch-server-<ts>.log.
//
// Seeding generates the rows inside SQLite (recursive CTEs, a small integer hash for the "random"
// draws) instead of shipping millions of VALUES: local D1 refuses statements over 100 KB
// (SQLITE_TOOBIG) and wrangler's SQL splitter is quadratic in statement length (a 1 MB file of
// 4 statements takes minutes), so a handful of short statements per size is both possible and fast.
// The same hash is evaluated here, so the expected levels and payouts are known exactly.
//
// As in scripts/bench.mjs, the service runs from a snapshot of the working tree (BENCH_SNAPSHOT=0
// runs it in place): `wrangler dev` reloads on every edit under src/, which would restart the Worker
// in the middle of a batch. Reloads seen in the log are reported either way.
import { spawn } from "node:child_process";
import { cpSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { cpus, loadavg, totalmem } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { signToken } from "./dev-token.mjs";
import { ensureDevVars } from "./dev-vars.mjs";

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
const PORT = num("BENCH_BATCH_PORT", 8807);
const SIM_PORT = num("BENCH_BATCH_SIM_PORT", 8808);
const INGEST_REQUESTS = Math.floor(num("BENCH_INGEST_REQUESTS", 1500));
const INGEST_CONCURRENCY = Math.floor(num("BENCH_INGEST_CONCURRENCY", 8));
const INGEST_MAX_SECONDS = 300;
const MAX_SECONDS = num("BENCH_BATCH_MAX_SECONDS", 600);
const STALL_SECONDS = num("BENCH_BATCH_STALL_SECONDS", 90);
const CHUNK = process.env.BENCH_BATCH_CHUNK_USERS ? Math.floor(num("BENCH_BATCH_CHUNK_USERS", 100)) : null;
const SIZES = (process.env.BENCH_BATCH_SIZES || "10000,100000").split(",").map((s) => s.trim()).filter(Boolean).map(Number);
if (SIZES.length === 0 || SIZES.some((n) => !Number.isInteger(n) || n < 100 || n > 10_000_000)) {
  console.error(`BENCH_BATCH_SIZES must be whole numbers between 100 and 10000000, got "${process.env.BENCH_BATCH_SIZES}"`);
  process.exit(2);
}
const flag = (name, def) => !["0", "false", "no"].includes((process.env[name] ?? def).toLowerCase());
const SNAPSHOT = flag("BENCH_SNAPSHOT", "1");
const KEEP_STATE = flag("BENCH_KEEP_STATE", "0");
const USERS = 200;
const EVENTS_PER_REQUEST = 100;
const CAMPAIGNS = 5;
const CAMPAIGN_BUDGET_IDR = 100_000_000_000; // per campaign; far above what any size pays
const READY_TIMEOUT_MS = 90_000;
// A status request can wait seconds behind the queue consumer's D1 work; abandoning it early would only
// add load (the service keeps running it), so the timeout is generous. Polls never delay the measurement.
const POLL_TIMEOUT_MS = num("BENCH_POLL_TIMEOUT_SECONDS", 30) * 1000;
const POLL_FRESH = flag("BENCH_POLL_FRESH_CONNECTION", "1");
const BASE = `http://${HOST}:${PORT}`;
const WRANGLER_ENV = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", FORCE_COLOR: "0" };

const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
const PERSIST = resolve(`.bench/batch-state-${stamp}`);
const RUN_DIR = resolve(`.bench/batch-run-${stamp}`);
const APP_DIR = SNAPSHOT ? `${RUN_DIR}/app` : process.cwd();
const LOG_PATH = resolve(`.bench/batch-server-${stamp}.log`);
const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const round = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

// ---------------------------------------------------------------------------------------------
// The server: `node scripts/start.mjs` in its own process group, so workerd goes down with it.

let server;
let stopping;
let serverExited = false;
let serverTail = "";
let logFile;
let interrupted = false;
let starts = 0;
let httpAgent = new Agent({ keepAlive: true });
let serverExit;
const unexpectedExits = [];
const logCounts = { reloads: 0, batchMessageFailed: 0, errors: 0, unhandled: 0, sqliteBusy: 0 };
const logFirst = {};
// Queue consumer invocations as wrangler logs them ("QUEUE daily-batch <acked>/<delivered> (<ms>)"): the
// only outside view of whether the messages of a run have all been processed.
const queueLog = { invocations: 0, acked: 0, delivered: 0, ms: 0 };

function portFree(port) {
  return new Promise((res) => {
    const probe = createServer()
      .once("error", () => res(false))
      .once("listening", () => probe.close(() => res(true)))
      .listen(port, HOST);
  });
}

function snapshotApp() {
  mkdirSync(APP_DIR, { recursive: true });
  const entries = ["src", "scripts", "tools", "migrations", "wrangler.toml", "package.json", "tsconfig.json", "worker-configuration.d.ts", ".dev.vars", ".dev.vars.example"];
  for (const entry of entries) {
    if (existsSync(entry)) cpSync(entry, `${APP_DIR}/${entry}`, { recursive: true });
  }
  symlinkSync(resolve("node_modules"), `${APP_DIR}/node_modules`, "dir");
}

/** Counts what matters in the server log as it arrives (the whole log also goes to LOG_PATH). */
function scanLog(text) {
  for (const line of text.split("\n")) {
    const hit = (key) => {
      logCounts[key]++;
      logFirst[key] ??= line.slice(0, 400);
    };
    if (/Reloading local server/.test(line)) hit("reloads");
    const q = /QUEUE daily-batch (\d+)\/(\d+) \((\d+)ms\)/.exec(line);
    if (q) {
      queueLog.invocations++;
      queueLog.acked += Number(q[1]);
      queueLog.delivered += Number(q[2]);
      queueLog.ms += Number(q[3]);
    }
    if (/batch message failed/.test(line)) hit("batchMessageFailed");
    if (/unhandled error/.test(line)) hit("unhandled");
    if (/SQLITE_BUSY/.test(line)) hit("sqliteBusy");
    if (/\[ERROR\]|\[wrangler:error\]|✘/.test(line)) hit("errors");
  }
}

function startServer() {
  logFile ??= createWriteStream(LOG_PATH);
  starts++;
  logFile.write(`\n===== bench-batch: service start #${starts} at ${new Date().toISOString()} =====\n`);
  serverExited = false;
  serverTail = "";
  stopping = undefined;
  httpAgent.destroy();
  httpAgent = new Agent({ keepAlive: true });
  const env = {
    ...WRANGLER_ENV,
    PORT: String(PORT),
    SIM_PORT: String(SIM_PORT),
    PERSIST_DIR: PERSIST,
    SIM_LOG: "false",
    EXTRA_VARS: `RATE_LIMIT_PER_MINUTE:1000000 D1_METRICS:true${CHUNK === null ? "" : ` BATCH_CHUNK_USERS:${CHUNK}`}`,
  };
  server = spawn(process.execPath, ["scripts/start.mjs"], { cwd: APP_DIR, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let partial = "";
  const keep = (d) => {
    const s = String(d);
    logFile.write(s);
    serverTail = (serverTail + s).slice(-20_000);
    const lines = (partial + s).split("\n");
    partial = lines.pop() ?? "";
    scanLog(lines.join("\n"));
  };
  server.stdout.on("data", keep);
  server.stderr.on("data", keep);
  const mine = server;
  mine.on("exit", (code, signal) => {
    if (mine !== server) return;
    serverExited = true;
    serverExit = { code, signal, expected: stopping !== undefined, at: new Date().toISOString() };
    logFile.write(`\n===== bench-batch: service (scripts/start.mjs) exited: code ${code}, signal ${signal}${stopping === undefined ? " — NOT stopped by this script" : ""} =====\n`);
    if (stopping === undefined) unexpectedExits.push(serverExit);
  });
}

/** Starts the service and waits until it answers; returns the seconds it took. */
async function bootServer() {
  // The ports are free between our own stops and starts: make sure nobody else took them meanwhile,
  // or the requests below would go to someone else's service.
  for (const port of [PORT, SIM_PORT]) {
    if (!(await portFree(port))) throw new Error(`port ${port} on ${HOST} was taken by another process while the service was down`);
  }
  const t = performance.now();
  startServer();
  try {
    await waitReady();
    await sleep(500);
    if (serverExited) throw new Error("the service exited right after answering (is another server on the port?)");
  } catch (error) {
    checkInterrupted();
    throw new Error(`the service did not start: ${error.message}\n--- service output (tail) ---\n${serverTail.slice(-4000)}`);
  }
  return round((performance.now() - t) / 1000, 1);
}

const serverUp = () => Boolean(server?.pid) && !serverExited && stopping === undefined;

/** Every process below `pid`, read from /proc (Linux). */
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
  if (!KEEP_STATE) rmSync(PERSIST, { recursive: true, force: true });
  rmSync(RUN_DIR, { recursive: true, force: true });
}

// Children we start besides the server (wrangler d1 execute): ended on interrupt, by their own pid group.
const helpers = new Set();

class Interrupted extends Error {}
const checkInterrupted = () => {
  if (interrupted) throw new Interrupted("interrupted");
};

process.on("SIGINT", () => {
  if (interrupted) {
    for (const pid of [server?.pid, ...helpers]) {
      try {
        if (pid) process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    cleanupState();
    process.exit(130);
  }
  interrupted = true;
  console.error("\ninterrupted: shutting the server down");
  for (const pid of helpers) {
    try {
      process.kill(-pid, "SIGTERM");
    } catch {
      // gone
    }
  }
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
    if (errorSeenAt === undefined && /\[ERROR\]/.test(serverTail)) errorSeenAt = Date.now();
    if (errorSeenAt !== undefined && Date.now() - errorSeenAt > 15_000) throw new Error("wrangler reported an [ERROR] and the service did not become ready");
    checkInterrupted();
    try {
      const res = await call("GET", "/openapi.json", undefined, undefined, 2000, { fresh: true });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(500);
  }
  throw new Error(`the service was not ready within ${READY_TIMEOUT_MS / 1000} s`);
}

// ---------------------------------------------------------------------------------------------
// Memory and CPU of the local runtime: every `workerd` process below the server.

const CLK_TCK = 100; // Linux USER_HZ

function workerdProcesses() {
  if (!server?.pid) return [];
  return descendants(server.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "workerd";
    } catch {
      return false;
    }
  });
}

function sampleWorkerd() {
  let rssKiB = 0;
  let cpuTicks = 0;
  const perProcess = {};
  for (const pid of workerdProcesses()) {
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      const kib = m ? Number(m[1]) : 0;
      rssKiB += kib;
      perProcess[pid] = kib;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      cpuTicks += Number(fields[11]) + Number(fields[12]); // utime + stime
    } catch {
      // gone
    }
  }
  return { at: performance.now(), rssKiB, cpuSeconds: cpuTicks / CLK_TCK, perProcess };
}

/** Samples workerd RSS every 500 ms until stopped; returns the peak (sum over processes). */
function memoryWatch() {
  let peak = sampleWorkerd();
  const peakPerProcess = { ...peak.perProcess };
  const timer = setInterval(() => {
    const s = sampleWorkerd();
    if (s.rssKiB > peak.rssKiB) peak = s;
    for (const [pid, kib] of Object.entries(s.perProcess)) peakPerProcess[pid] = Math.max(peakPerProcess[pid] ?? 0, kib);
  }, 500);
  return {
    stop() {
      clearInterval(timer);
      const s = sampleWorkerd();
      if (s.rssKiB > peak.rssKiB) peak = s;
      return { peakKiB: peak.rssKiB, peakPerProcessKiB: peakPerProcess };
    },
  };
}

const mib = (kib) => round(kib / 1024, 1);

/** Which workerd is which: wrangler's dev proxy owns the public port; the other runs the Worker with D1, DOs and the queue. */
function workerdRole(pid) {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmd.includes(`entry=${HOST}:${PORT}`) ? `${pid} (wrangler dev proxy)` : `${pid} (Worker runtime: Worker, D1, Durable Objects, queue)`;
  } catch {
    return String(pid);
  }
}

/** Sizes of the local D1 files (the database, its WAL and shared memory), in MiB. */
function d1Files() {
  try {
    const dir = `${PERSIST}/v3/d1/miniflare-D1DatabaseObject`;
    return Object.fromEntries(readdirSync(dir).filter((f) => !f.startsWith("metadata")).map((f) => [f.replace(/^[0-9a-f]{64}/, "db"), mib(statSync(`${dir}/${f}`).size / 1024)]));
  } catch {
    return null;
  }
}

/** Who holds POSIX locks on the local D1 files right now (for diagnosing hung requests). */
function d1Locks() {
  try {
    const dir = `${PERSIST}/v3/d1/miniflare-D1DatabaseObject`;
    const inodes = new Map();
    for (const f of readdirSync(dir)) inodes.set(String(statSync(`${dir}/${f}`).ino), f);
    const out = [];
    for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
      const m = /^\d+:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s+(\S+)\s+(\S+)/.exec(line);
      if (!m || !inodes.has(m[5])) continue;
      let comm = "?";
      try {
        comm = readFileSync(`/proc/${m[4]}/comm`, "utf8").trim();
      } catch {
        // gone
      }
      out.push(`${inodes.get(m[5])} ${m[3]} ${m[6]}-${m[7]} pid ${m[4]} (${comm})`);
    }
    return out;
  } catch (error) {
    return [`unavailable: ${error.message}`];
  }
}

// ---------------------------------------------------------------------------------------------
// wrangler d1 execute --local against the server's persist dir, only while the service is stopped
// (see the header: an execute under a running `wrangler dev` breaks the service's D1 connection).

function wranglerD1(args, timeoutMs = 600_000) {
  if (serverUp()) throw new Error("refusing to run wrangler d1 execute while the service has the database open");
  return new Promise((res, rej) => {
    const child = spawn("node_modules/.bin/wrangler", ["d1", "execute", "DB", "--local", "--persist-to", PERSIST, ...args], { cwd: APP_DIR, env: WRANGLER_ENV, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    helpers.add(child.pid);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // gone
      }
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      helpers.delete(child.pid);
      if (code === 0) res({ out, err });
      else rej(new Error(`wrangler d1 execute ${args.filter((a) => a !== "--json").join(" ").slice(0, 200)} failed (${signal ?? code}): ${(err + out).trim().slice(-2000)}`));
    });
  });
}

/** Runs read queries and returns the rows of each statement. */
async function d1Query(sqlText) {
  const { out } = await wranglerD1(["--json", "--command", sqlText]);
  const parsed = JSON.parse(out.slice(out.indexOf("[")));
  return parsed.map((r) => r.results);
}

const COUNTED = ["payouts", "transactions", "postings", "audit_log", "once_keys", "fraud_alerts"];

async function tableCounts(n, day) {
  const statements = [
    ...COUNTED.map((t) => `select count(*) as n from ${t}`),
    `select count(*) as n from users where id like 'b${n}-%' and status = 'banned'`,
    `select count(*) as n from daily_activity where day = '${day}' and classified_at is not null`,
    `select coalesce(sum(balance), 0) as n from accounts where kind = 'user_wallet' and asset = 'IDR'`,
    `select count(*) as n from accounts`,
  ];
  const rows = await d1Query(statements.join("; "));
  const v = rows.map((r) => r[0].n);
  return { ...Object.fromEntries(COUNTED.map((t, i) => [t, v[i]])), bannedUsers: v[6], classified: v[7], userIdrSum: v[8], accounts: v[9] };
}

// ---------------------------------------------------------------------------------------------
// The seeded population, defined once in JS and once in SQL (same integer arithmetic, < 2^53).

const P = 2147483647;
const MUL = 48271;
const xorJs = (a, b) => (a | b) - (a & b);
/** A small integer mixer: MINSTD steps with xor-shifts; input and output below 2^31. */
function mixJs(seed) {
  let x = (seed * MUL) % P;
  x = xorJs(x, x >> 11);
  x = (x * MUL) % P;
  return xorJs(x, x >> 7);
}
/** The same steps as a chain of CTEs over `src(i, …)`: column `name` = mix(i * 8 + salt). */
function mixCtes(names) {
  const cols = (f) => names.map(([name, salt]) => f(name, salt)).join(", ");
  const xor = (a, b) => `((${a} | ${b}) - (${a} & ${b}))`;
  return [
    `h1 AS (SELECT i, ${cols((n, salt) => `((i * 8 + ${salt}) * ${MUL}) % ${P} AS ${n}`)} FROM s)`,
    `h2 AS (SELECT i, ${cols((n) => `${xor(n, `(${n} >> 11)`)} AS ${n}`)} FROM h1)`,
    `h3 AS (SELECT i, ${cols((n) => `(${n} * ${MUL}) % ${P} AS ${n}`)} FROM h2)`,
    `h AS (SELECT i, ${cols((n) => `${xor(n, `(${n} >> 7)`)} AS ${n}`)} FROM h3)`,
  ];
}

const campaignId = (n, k) => `BENCH${n}X`.padEnd(25, "0") + k;
const kindOf = (i) => (i % 100 === 0 ? "A" : i % 100 === 17 || i % 100 === 67 ? "B" : "N");

/**
 * Per user i: active minutes 20–120; a normal user's R̄ uniform in [3, 5) (mean 4), a level-B user's
 * at μ + 2.2σ … μ + 2.8σ of the normal population (2 %), a bot's 40–200 (10–50 × 4; 1 %); units are
 * R̄ × minutes, attributed to campaign i mod 5, or split 30–70 % with the next one for half the users.
 */
function populationJs(n, b) {
  const users = new Array(n);
  for (let i = 0; i < n; i++) {
    const r1 = mixJs(i * 8 + 1);
    const r2 = mixJs(i * 8 + 2);
    const r3 = mixJs(i * 8 + 3);
    const m = 20 + (r1 % 101);
    const kind = kindOf(i);
    const units = kind === "A" ? m * (40 + (r2 % 161)) : kind === "B" ? Math.floor((m * (b.lo + (r2 % b.span))) / 1000) : 3 * m + Math.floor((m * (r2 % 2000)) / 1000);
    const k = i % CAMPAIGNS;
    const lines = [];
    if (r3 % 2 === 1) {
      const u1 = Math.floor((units * (300 + ((r3 >> 1) % 400))) / 1000);
      lines.push([k, u1], [(k + 1) % CAMPAIGNS, units - u1]);
    } else lines.push([k, units]);
    users[i] = { kind, m, units, rbar: units / m, lines };
  }
  return users;
}

function populationSql(n, day, now, b) {
  const q = `'${day}'`;
  const uid = `'b${n}-' || i`;
  const cp = `'${campaignId(n, "").slice(0, 25)}'`;
  const kind = `iif(i % 100 = 0, 'A', iif(i % 100 = 17 OR i % 100 = 67, 'B', 'N'))`;
  const series = `s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ${n - 1})`;
  const ctes = [series, ...mixCtes([["r1", 1], ["r2", 2], ["r3", 3]])];
  const pop = `pop AS (SELECT i, ${kind} AS kind, 20 + (r1 % 101) AS m, r2, r3 FROM h)`;
  const units = `iif(kind = 'A', m * (40 + (r2 % 161)), iif(kind = 'B', (m * (${b.lo} + (r2 % ${b.span}))) / 1000, 3 * m + (m * (r2 % 2000)) / 1000))`;
  const withUnits = `u AS (SELECT i, m, r3, ${units} AS units FROM pop)`;
  const split = `((units * (300 + ((r3 >> 1) % 400))) / 1000)`; // `||` binds tighter than arithmetic
  const json = `iif(r3 % 2 = 1,
      '{"' || ${cp} || (i % ${CAMPAIGNS}) || '":' || ${split} || ',"' || ${cp} || ((i + 1) % ${CAMPAIGNS}) || '":' || (units - ${split}) || '}',
      '{"' || ${cp} || (i % ${CAMPAIGNS}) || '":' || units || '}')`;
  const adv = `b${n}-adv`;
  const statements = [
    `WITH RECURSIVE ${series} INSERT INTO users (id, status, kyc_status, verification_required, created_at, updated_at) SELECT ${uid}, 'active', 'none', 0, ${now}, ${now} FROM s`,
    `WITH RECURSIVE ${series}, k(prefix, kind, asset, neg) AS (VALUES ('usr', 'user_wallet', 'COIN', 0), ('usr', 'user_wallet', 'IDR', 0), ('debt', 'user_debt', 'COIN', 1), ('debt', 'user_debt', 'IDR', 1))
     INSERT INTO accounts (id, kind, owner_id, asset, balance, locked, allow_negative, created_at) SELECT k.prefix || ':' || ${uid} || ':' || k.asset, k.kind, ${uid}, k.asset, 0, 0, k.neg, ${now} FROM s, k`,
    `WITH RECURSIVE ${series} INSERT INTO activity_days (day, user_id, created_at) SELECT ${q}, ${uid}, ${now} FROM s`,
    `WITH RECURSIVE ${ctes.join(",\n")},\n${pop},\n${withUnits}
     INSERT INTO daily_activity (day, user_id, active_minutes, weighted_units, rbar, campaign_units, level, z, action, classified_at)
     SELECT ${q}, ${uid}, m, units, units * 1.0 / m, ${json}, NULL, NULL, NULL, NULL FROM u`,
    `INSERT INTO users (id, status, kyc_status, verification_required, created_at, updated_at) VALUES ('${adv}', 'active', 'none', 0, ${now}, ${now})`,
    `INSERT INTO accounts (id, kind, owner_id, asset, balance, locked, allow_negative, created_at) VALUES
      ('usr:${adv}:COIN', 'user_wallet', '${adv}', 'COIN', 0, 0, 0, ${now}), ('usr:${adv}:IDR', 'user_wallet', '${adv}', 'IDR', 0, 0, 0, ${now}),
      ('debt:${adv}:COIN', 'user_debt', '${adv}', 'COIN', 0, 0, 1, ${now}), ('debt:${adv}:IDR', 'user_debt', '${adv}', 'IDR', 0, 0, 1, ${now})`,
  ];
  // Campaigns and their budgets: each funded by a balanced adjustment (sys:adjustments:IDR → campaign),
  // with postings whose balance_after is read back like the service's executor does.
  const balanceOf = (id) => `(SELECT balance FROM accounts WHERE id = '${id}')`;
  for (let k = 0; k < CAMPAIGNS; k++) {
    const id = campaignId(n, k);
    const acct = `cmp:${id}:IDR`;
    const tx = `BENCHTX${n}X`.padEnd(24, "0") + String(k).padStart(2, "0");
    statements.push(
      `INSERT INTO campaigns (id, owner_id, name, rate_fee_idr, status, created_at) VALUES ('${id}', '${adv}', 'bench-batch ${n} #${k}', NULL, 'active', ${now})`,
      `INSERT INTO accounts (id, kind, owner_id, asset, balance, locked, allow_negative, created_at) VALUES ('${acct}', 'campaign_budget', '${adv}', 'IDR', ${CAMPAIGN_BUDGET_IDR}, 0, 0, ${now})`,
      `UPDATE accounts SET balance = balance - ${CAMPAIGN_BUDGET_IDR} WHERE id = 'sys:adjustments:IDR'`,
      `INSERT INTO transactions (id, type, status, asset, amount, user_id, counterparty_id, balance_before, balance_after, metadata, device_fingerprint, created_at, completed_at)
       VALUES ('${tx}', 'adjustment', 'completed', 'IDR', ${CAMPAIGN_BUDGET_IDR}, '${adv}', NULL, 0, ${CAMPAIGN_BUDGET_IDR}, '{"reason":"bench-batch campaign budget","campaignId":"${id}"}', NULL, ${now}, ${now})`,
      `INSERT INTO postings (transaction_id, account_id, asset, amount, balance_after, created_at) VALUES
        ('${tx}', '${acct}', 'IDR', ${CAMPAIGN_BUDGET_IDR}, ${balanceOf(acct)}, ${now}),
        ('${tx}', 'sys:adjustments:IDR', 'IDR', ${-CAMPAIGN_BUDGET_IDR}, ${balanceOf("sys:adjustments:IDR")}, ${now})`,
    );
  }
  return `${statements.join(";\n")};\n`;
}

/** The service's robust parameters (median and 1.4826 × MAD, as populationStats computes them). */
function robustParams(rbars, cfg) {
  const n = rbars.length;
  if (cfg.mode === "fixed") return { mu: cfg.mu, sigma: cfg.sigma };
  const sorted = Float64Array.from(rbars).sort();
  const mid = (a) => (n % 2 === 1 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2);
  const median = mid(sorted);
  const mad = mid(Float64Array.from(rbars, (r) => Math.abs(r - median)).sort());
  if (n < cfg.minPopulation || mad === 0) return { mu: cfg.mu, sigma: cfg.sigma };
  return { mu: median, sigma: 1.4826 * mad };
}

/** The population of size n, the B band placed from the normal users' μ and σ, and what the batch must do with it. */
function plan(n, cfg) {
  // B users sit above the median + MAD either way, so a placeholder band gives the final μ and σ.
  const first = robustParams(populationJs(n, { lo: 1_000_000, span: 1 }).map((u) => u.rbar), cfg);
  const b = { lo: Math.round((first.mu + 2.2 * first.sigma) * 1000), span: Math.max(1, Math.round(0.6 * first.sigma * 1000)) };
  const users = populationJs(n, b);
  const params = robustParams(users.map((u) => u.rbar), cfg);
  const expected = { levels: { A: 0, B: 0, C: 0 }, byKind: { A: 0, B: 0, N: 0 }, paid: { count: 0, amountIdr: 0, feeIdr: 0 }, held: { count: 0, amountIdr: 0, feeIdr: 0 }, misfits: 0 };
  for (const u of users) {
    const level = u.rbar >= params.mu + cfg.kA * params.sigma ? "A" : u.rbar >= params.mu + cfg.kB * params.sigma ? "B" : "C";
    expected.levels[level]++;
    expected.byKind[u.kind]++;
    if ((u.kind === "N" ? "C" : u.kind) !== level) expected.misfits++;
    const bucket = level === "C" ? expected.paid : level === "B" ? expected.held : null;
    if (!bucket) continue;
    for (const [, units] of u.lines) {
      if (units <= 0) continue;
      const amount = units * cfg.rateFeeIdr;
      if (amount === 0 && level === "C") continue;
      bucket.count++;
      bucket.amountIdr += amount;
      bucket.feeIdr += Math.floor((amount * cfg.feeBps) / 10_000);
    }
  }
  return { b, params, expected };
}

// ---------------------------------------------------------------------------------------------
// HTTP.

const TIMING = /roundTrips=(\d+)\s+rowsRead=(\d+)\s+rowsWritten=(\d+)/;

/**
 * One HTTP request through node:http. Keep-alive connections come from an agent that belongs to the
 * current service instance (replaced at every start, so no request rides a socket of a stopped one);
 * `fresh` opens a new connection for this request only.
 */
function call(method, path, token, body, timeoutMs = 120_000, { fresh = false } = {}) {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}) };
    const started = performance.now();
    const req = httpRequest({ host: HOST, port: PORT, method, path, headers, agent: fresh ? false : httpAgent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        const ms = performance.now() - started;
        const m = TIMING.exec(String(res.headers["server-timing"] ?? ""));
        const d1 = m ? { roundTrips: Number(m[1]), rowsRead: Number(m[2]), rowsWritten: Number(m[3]) } : undefined;
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolvePromise({ status: res.statusCode, ms, d1, json, text });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(payload);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Up to `count` requests from `make(i)`, `concurrency` in flight, no new ones after `maxSeconds`. */
async function load({ count, concurrency, maxSeconds, okStatus, make, check }) {
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
        const bad = r.status !== okStatus ? String(r.status) : check?.(r, i);
        if (!bad) samples.push(r);
        else {
          errors[bad] = (errors[bad] ?? 0) + 1;
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
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const withD1 = samples.filter((s) => s.d1);
  const mean = (f) => (withD1.length ? withD1.reduce((acc, s) => acc + f(s.d1), 0) / withD1.length : null);
  return {
    issued,
    completed: samples.length,
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    firstError: firstError ?? null,
    stoppedByTimeCap: issued < count,
    seconds: round(seconds, 3),
    requestsPerSecond: round(samples.length / seconds, 1),
    latencyMs: { p50: round(percentile(ms, 50)), p90: round(percentile(ms, 90)), p99: round(percentile(ms, 99)), max: round(ms.at(-1) ?? null) },
    d1: { roundTripsMean: round(mean((d) => d.roundTrips)), rowsReadMean: round(mean((d) => d.rowsRead)), rowsWrittenMean: round(mean((d) => d.rowsWritten)) },
  };
}

// ---------------------------------------------------------------------------------------------
// Part A: activity ingest.

async function ingest(secret) {
  const users = Array.from({ length: USERS }, (_, i) => {
    const id = `bb-u${i}-${suffix}`;
    return { id, token: signToken(id, "user", secret, 4) };
  });
  const advertiser = signToken(`bb-adv-${suffix}`, "user", secret, 4);
  const created = await call("POST", "/api/campaigns", advertiser, { name: "bench-batch ingest" });
  if (created.status !== 201) throw new Error(`creating the campaign: ${created.status} ${created.text.slice(0, 300)}`);
  const campaign = created.json.id;
  const signup = await load({ count: USERS, concurrency: INGEST_CONCURRENCY, maxSeconds: INGEST_MAX_SECONDS, okStatus: 200, make: (i) => ({ method: "GET", path: "/api/wallet/balance", token: users[i].token }) });
  if (signup.errorCount) throw new Error(`creating users: ${JSON.stringify(signup.errors)} (first: ${signup.firstError})`);
  const types = ["view", "like", "comment"];
  const request = (tag) => (i) => ({
    method: "POST",
    path: "/api/activity",
    token: users[i % USERS].token,
    body: {
      events: Array.from({ length: EVENTS_PER_REQUEST }, (_, j) => ({
        id: `${suffix}-${tag}${i}-${j}`,
        type: types[(i + j) % 3],
        ...(j % 2 === 0 ? { campaignId: campaign } : {}),
      })),
    },
  });
  const check = (r) => (r.json?.accepted === EVENTS_PER_REQUEST && r.json?.duplicates === 0 ? undefined : `202 but ${r.text.slice(0, 80)}`);
  // One request per user first: each user's Durable Object is created (and its SQLite schema made) once.
  const warmup = await load({ count: USERS, concurrency: INGEST_CONCURRENCY, maxSeconds: INGEST_MAX_SECONDS, okStatus: 202, make: request("w"), check });
  checkInterrupted();
  console.log(`  warm-up: ${warmup.completed}/${USERS} requests (first per user) in ${warmup.seconds} s`);
  const mem = memoryWatch();
  const before = sampleWorkerd();
  const measured = await load({ count: INGEST_REQUESTS, concurrency: INGEST_CONCURRENCY, maxSeconds: INGEST_MAX_SECONDS, okStatus: 202, make: request("m"), check });
  const after = sampleWorkerd();
  const memory = mem.stop();
  const events = measured.completed * EVENTS_PER_REQUEST;
  return {
    users: USERS,
    eventsPerRequest: EVENTS_PER_REQUEST,
    concurrency: INGEST_CONCURRENCY,
    campaignId: campaign,
    warmup,
    measured,
    events,
    eventsPerSecond: round(events / measured.seconds, 0),
    workerdCpuSeconds: round(after.cpuSeconds - before.cpuSeconds, 1),
    workerdRssMiB: { before: mib(before.rssKiB), peak: mib(memory.peakKiB) },
  };
}

// ---------------------------------------------------------------------------------------------
// Part B: the daily batch at scale.

/** Polls the day's progress every second until done or the cap; returns what it saw. */
/**
 * POSTs the run, then until the day's status is `done` AND every queue message this run enqueued has
 * been acked (counted from wrangler's "QUEUE daily-batch acked/delivered" log lines), ticking every
 * 250 ms. `done` alone only says no user is left unclassified, which on a rerun is already true before
 * its first message is processed. The status is polled about once a second, one request at a time and
 * never awaited by the tick: a status request can take seconds behind the queue consumer's D1 work
 * (and now and then does not answer until the client gives up), which must not delay the measurement.
 */
async function runBatch(admin, day, n, prevMessages = 0) {
  const started = performance.now();
  const q0 = { ...queueLog };
  const runRes = await call("POST", `/api/admin/batches/${day}/run`, admin);
  if (runRes.status !== 202) throw new Error(`POST /api/admin/batches/${day}/run: ${runRes.status} ${runRes.text.slice(0, 500)}`);
  const deadline = started + MAX_SECONDS * 1000;
  const elapsed = () => (performance.now() - started) / 1000;
  let progress = runRes.json;
  let pollErrors = 0;
  const pollFailures = [];
  const pollMs = [];
  let polling = false;
  let lastPollAt = performance.now();
  let payingAt = progress.status === "paying" ? performance.now() : null;
  let statusDoneAt = progress.status === "done" ? performance.now() : null;
  let drainedAt = null;
  let lastLine = performance.now();
  let lastChange = performance.now();
  let lastState = "";
  let stalled = false;
  const acked = () => queueLog.acked - q0.acked;
  const enqueued = () => progress.queueMessages - prevMessages;
  const poll = async () => {
    polling = true;
    lastPollAt = performance.now();
    try {
      const r = await call("GET", `/api/admin/batches/${day}`, admin, undefined, POLL_TIMEOUT_MS, { fresh: POLL_FRESH });
      pollMs.push(r.ms);
      if (r.status === 200) {
        progress = r.json;
        if (payingAt === null && progress.status !== "collecting") payingAt = performance.now();
        if (statusDoneAt === null && progress.status === "done") statusDoneAt = performance.now();
      } else {
        pollErrors++;
        if (pollFailures.length < 5) pollFailures.push({ afterSeconds: round(elapsed(), 1), status: r.status, body: r.text.slice(0, 300) });
      }
    } catch (error) {
      pollErrors++;
      if (pollFailures.length < 5) pollFailures.push({ afterSeconds: round(elapsed(), 1), error: String(error?.cause ?? error).slice(0, 200), d1Locks: d1Locks() });
    } finally {
      polling = false;
    }
  };
  while (performance.now() < deadline) {
    checkInterrupted();
    if (drainedAt === null && enqueued() > 0 && acked() >= enqueued()) drainedAt = performance.now();
    if (statusDoneAt !== null && drainedAt !== null) break;
    if (serverExited) {
      stalled = true;
      console.log(`    the service exited (${JSON.stringify(serverExit)}); giving up on this run`);
      break;
    }
    if (!polling && performance.now() - lastPollAt >= 1000) poll();
    const state = JSON.stringify([progress.status, progress.collected, progress.classified, progress.payouts, acked()]);
    if (state !== lastState) {
      lastState = state;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > STALL_SECONDS * 1000) {
      stalled = true;
      console.log(`    no progress for ${STALL_SECONDS} s (${progress.status}, classified ${progress.classified}/${n}, queue messages acked ${acked()}/${enqueued()}); giving up on this run`);
      break;
    }
    if (performance.now() - lastLine > 15_000) {
      lastLine = performance.now();
      console.log(`    ${elapsed().toFixed(0)} s: ${progress.status}, classified ${progress.classified}/${n}, queue messages acked ${acked()}/${enqueued()}`);
    }
    await sleep(250);
  }
  const complete = statusDoneAt !== null && drainedAt !== null;
  const endAt = complete ? Math.max(statusDoneAt, drainedAt) : performance.now();
  if (complete) {
    // The totals as they stand once every message is processed (a rerun's "done" came before that).
    try {
      const r = await call("GET", `/api/admin/batches/${day}`, admin, undefined, POLL_TIMEOUT_MS, { fresh: POLL_FRESH });
      if (r.status === 200) progress = r.json;
    } catch {
      // keep the last one seen
    }
  }
  // When the last message was acked is known to 250 ms from the log; status polls can lag behind it.
  const seconds = complete ? (drainedAt - started) / 1000 : (endAt - started) / 1000;
  pollMs.sort((a, b) => a - b);
  const serverSeconds = progress.status === "done" && progress.finishedAt && progress.startedAt ? (Date.parse(progress.finishedAt) - Date.parse(progress.startedAt)) / 1000 : null;
  // What is left, projected from the rate so far: users classified on a first run, messages acked on a rerun.
  const fraction = progress.status !== "done" ? progress.classified / n : enqueued() > 0 ? acked() / enqueued() : 0;
  const spent = (endAt - started) / 1000;
  return {
    done: complete,
    statusDone: statusDoneAt !== null,
    drained: drainedAt !== null,
    stalled,
    // POST → the last message of this run acked (wall clock, from the log, 250 ms resolution)
    seconds: round(seconds, 2),
    // POST → the first status poll that saw "done"
    statusDoneSeconds: statusDoneAt === null ? null : round((statusDoneAt - started) / 1000, 2),
    // started_at → finished_at as the service recorded them (finished_at: no user left unclassified)
    serverSeconds: round(serverSeconds, 2),
    queue: { enqueued: enqueued(), acked: acked(), delivered: queueLog.delivered - q0.delivered, invocations: queueLog.invocations - q0.invocations, invocationMsTotal: queueLog.ms - q0.ms },
    polls: pollMs.length,
    runRequestMs: round(runRes.ms, 1),
    secondsToPaying: payingAt === null ? null : round((payingAt - started) / 1000, 2),
    usersPerSecond: round(complete ? n / seconds : (fraction * n) / spent, 1),
    projectedSeconds: complete ? null : fraction > 0 ? round(spent / fraction, 0) : null,
    pollErrors,
    pollFailures,
    pollLatencyMs: { p50: round(percentile(pollMs, 50)), max: round(pollMs.at(-1) ?? null) },
    progress,
  };
}

const sub = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));

async function batchAtScale(admin, n, index, cfg) {
  const day = new Date(Date.parse("2026-01-01T00:00:00Z") + index * 86_400_000).toISOString().slice(0, 10);
  const result = { users: n, day, status: "incomplete" };
  const p = plan(n, cfg);
  result.population = { normal: p.expected.byKind.N, levelB: p.expected.byKind.B, bots: p.expected.byKind.A, muExpected: round(p.params.mu, 4), sigmaExpected: round(p.params.sigma, 4), bBandMilli: p.b };
  result.expected = p.expected;

  // 1. Seed and count with the service down.
  const sqlPath = `${RUN_DIR}/seed-${n}.sql`;
  mkdirSync(RUN_DIR, { recursive: true });
  writeFileSync(sqlPath, populationSql(n, day, Date.now(), p.b));
  console.log(`  N=${n} (${day}): seeding ${n} users, ${4 * n} accounts, ${n} activity_days, ${n} daily_activity, ${CAMPAIGNS} funded campaigns ...`);
  let t = performance.now();
  await wranglerD1(["--file", sqlPath]);
  result.seedSeconds = round((performance.now() - t) / 1000, 1);
  checkInterrupted();
  const before = await tableCounts(n, day);

  // 2. The run, on a freshly started service.
  result.startupSeconds = [await bootServer()];
  console.log(`    seeded in ${result.seedSeconds} s; service up in ${result.startupSeconds[0]} s; running the batch (cap ${MAX_SECONDS} s) ...`);
  await sleep(2000); // let the runtime settle before the idle baseline
  const idle = sampleWorkerd();
  const mem = memoryWatch();
  const run = await runBatch(admin, day, n);
  const cpuAfter = sampleWorkerd().cpuSeconds;
  const memory = mem.stop();
  result.run = run;
  result.memory = {
    note: "RSS of the whole local runtime (all workerd processes of this wrangler dev: Worker isolate, D1, Durable Objects, queue broker), sampled every 500 ms; not a per-invocation figure",
    idleMiB: mib(idle.rssKiB),
    idlePerProcessMiB: Object.fromEntries(Object.entries(idle.perProcess).map(([pid, kib]) => [workerdRole(pid), mib(kib)])),
    peakMiB: mib(memory.peakKiB),
    increaseMiB: mib(memory.peakKiB - idle.rssKiB),
    peakPerProcessMiB: Object.fromEntries(Object.entries(memory.peakPerProcessKiB).map(([pid, kib]) => [workerdRole(pid), mib(kib)])),
  };
  result.workerdCpuSeconds = round(cpuAfter - idle.cpuSeconds, 1);
  result.d1FilesMiBAfterRun = d1Files();
  if (!run.done) {
    result.status = run.stalled ? "stalled" : "incomplete";
    console.log(`    NOT done after ${run.seconds} s${run.stalled ? " (stalled)" : ""}: ${run.progress.classified}/${n} classified; projected ${run.projectedSeconds ?? "?"} s`);
    await stopServer(); // its queue messages go with it, so the next size starts clean
    return result;
  }
  const ledger = await call("GET", "/api/admin/ledger/check", admin);
  result.ledgerCheck = { status: ledger.status, ok: ledger.status === 200 && ledger.json?.ok === true, ms: round(ledger.ms, 0), body: ledger.json?.ok === true ? undefined : (ledger.json ?? ledger.text.slice(0, 2000)) };
  await stopServer();

  const after = await tableCounts(n, day);
  const d = sub(after, before);
  const inserted = COUNTED.reduce((acc, t) => acc + d[t], 0);
  result.rows = {
    before,
    after,
    inserted: Object.fromEntries(COUNTED.map((t) => [t, d[t]])),
    insertedTotal: inserted,
    dailyActivityUpdates: d.classified,
    // per the brief: rows inserted in the six tables plus the N daily_activity updates, over N
    perUser: round((inserted + d.classified) / n, 3),
    // also counting the other rows the batch updates: one account per posting (campaign, wallet, revenue) and banned users
    accountUpdates: d.postings,
    userBans: d.bannedUsers,
    perUserAllWrites: round((inserted + d.classified + d.postings + d.bannedUsers) / n, 3),
  };
  const progress = run.progress;
  const got = { levels: progress.levels, paid: progress.payouts.paid ?? { count: 0, amountIdr: 0, feeIdr: 0 }, held: progress.payouts.held ?? { count: 0, amountIdr: 0, feeIdr: 0 } };
  const same = (a, b) => a.count === b.count && a.amountIdr === b.amountIdr && a.feeIdr === b.feeIdr;
  result.matchesExpected = {
    levels: ["A", "B", "C"].every((l) => (got.levels[l] ?? 0) === p.expected.levels[l]),
    paid: same(got.paid, p.expected.paid),
    held: same(got.held, p.expected.held),
    banned: d.bannedUsers === p.expected.levels.A,
    userIdrCredited: d.userIdrSum === p.expected.paid.amountIdr,
    params: Math.abs(progress.params.mu - p.params.mu) < 1e-9 && Math.abs(progress.params.sigma - p.params.sigma) < 1e-9,
  };

  // 3. A second run of the same day must pay nobody twice.
  result.startupSeconds.push(await bootServer());
  console.log(`    done in ${run.seconds} s (${run.usersPerSecond} users/s; status done after ${run.statusDoneSeconds} s, service's started→finished ${run.serverSeconds} s); rerunning the same day ...`);
  const rerun = await runBatch(admin, day, n, progress.queueMessages);
  result.rerun = { ...rerun, queueMessages: rerun.queue.enqueued };
  if (rerun.done) {
    const ledger2 = await call("GET", "/api/admin/ledger/check", admin);
    result.rerun.ledgerOk = ledger2.status === 200 && ledger2.json?.ok === true;
    await stopServer();
    const again = await tableCounts(n, day);
    const payoutsSame = JSON.stringify(rerun.progress.payouts) === JSON.stringify(progress.payouts);
    result.rerun.payoutsUnchanged = payoutsSame;
    result.rerun.userIdrSumUnchanged = again.userIdrSum === after.userIdrSum;
    result.rerun.rowsInserted = Object.fromEntries(COUNTED.map((t) => [t, again[t] - after[t]]));
    result.rerun.ok = payoutsSame && result.rerun.userIdrSumUnchanged && result.rerun.ledgerOk && Object.values(result.rerun.rowsInserted).every((v) => v === 0);
  } else {
    await stopServer();
    result.rerun.ok = false;
  }
  result.status = "done";
  return result;
}

// ---------------------------------------------------------------------------------------------
// Output.

const fmt = (x, d = 1) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));
const int = (x) => fmt(x, 0);

function ingestTable(a) {
  const m = a.measured;
  return [
    "| part A: POST /api/activity | requests | events | seconds | events/s | requests/s | p50 ms | p99 ms | errors | D1 round trips | D1 rows written | workerd CPU s |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    `| ${a.users} users, ${a.eventsPerRequest} events/request, concurrency ${a.concurrency} | ${m.completed} | ${int(a.events)} | ${fmt(m.seconds, 1)} | ${int(a.eventsPerSecond)} | ${fmt(m.requestsPerSecond)} | ${fmt(m.latencyMs.p50)} | ${fmt(m.latencyMs.p99)} | ${m.errorCount ? Object.entries(m.errors).map(([k, v]) => `${k}×${v}`).join(" ") : "0"} | ${fmt(m.d1.roundTripsMean, 2)} | ${fmt(m.d1.rowsWrittenMean, 2)} | ${fmt(a.workerdCpuSeconds)} |`,
  ].join("\n");
}

function batchTable(results) {
  const out = [
    "| part B: users | seed s | run → all messages processed s (service started→finished) | users/s | queue msgs | ms per message | rows/user | all writes/user | paid (count / IDR / fee) | held | A (banned) | as expected | workerd peak RSS MiB (+ over idle) | workerd CPU s | rerun → all messages processed s (status done seen after) | rerun pays nobody twice | ledger check |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|:---:|---:|---:|---:|:---:|:---:|",
  ];
  for (const r of results) {
    const pr = r.run?.progress;
    const paid = pr?.payouts?.paid;
    const time = r.run?.done ? `${fmt(r.run.seconds, 1)} (${fmt(r.run.serverSeconds, 1)})` : `${r.run?.stalled ? "STALLED" : "INCOMPLETE"} at ${fmt(r.run?.seconds, 0)} s (${int(pr?.classified)}/${int(r.users)}; projected ${int(r.run?.projectedSeconds)} s)`;
    const expectedOk = r.matchesExpected ? (Object.values(r.matchesExpected).every(Boolean) ? "yes" : `NO ${JSON.stringify(r.matchesExpected)}`) : "–";
    out.push(
      `| ${int(r.users)} | ${fmt(r.seedSeconds)} | ${time} | ${fmt(r.run?.usersPerSecond)} | ${pr ? int(pr.queueMessages) : "–"} | ${r.run?.queue?.acked ? int(r.run.queue.invocationMsTotal / r.run.queue.acked) : "–"} | ${fmt(r.rows?.perUser, 2)} | ${fmt(r.rows?.perUserAllWrites, 2)} | ${paid ? `${int(paid.count)} / ${int(paid.amountIdr)} / ${int(paid.feeIdr)}` : "–"} | ${pr?.payouts?.held ? int(pr.payouts.held.count) : "–"} | ${pr ? int(pr.levels?.A ?? 0) : "–"} | ${expectedOk} | ${r.memory ? `${fmt(r.memory.peakMiB)} (+${fmt(r.memory.increaseMiB)})` : "–"} | ${fmt(r.workerdCpuSeconds)} | ${r.rerun ? (r.rerun.done ? `${fmt(r.rerun.seconds, 1)} (${fmt(r.rerun.statusDoneSeconds, 1)})` : `${r.rerun.stalled ? "STALLED" : "INCOMPLETE"} at ${fmt(r.rerun.seconds, 0)} s (${int(r.rerun.queue?.acked)}/${int(r.rerun.queue?.enqueued)} messages; projected ${int(r.rerun.projectedSeconds)} s)`) : "–"} | ${r.rerun ? (r.rerun.ok ? "yes" : "NO") : "–"} | ${r.ledgerCheck ? (r.ledgerCheck.ok ? "ok" : "FAILED") : "–"} |`,
    );
  }
  return out.join("\n");
}

function scalingLine(results) {
  const done = results.filter((r) => r.status === "done" || (r.run && !r.run.done && r.run.projectedSeconds));
  if (done.length < 2) return null;
  const [a, b] = [done[0], done.at(-1)];
  const secs = (r) => (r.run.done ? r.run.seconds : r.run.projectedSeconds);
  const sizeRatio = b.users / a.users;
  const timeRatio = secs(b) / secs(a);
  const rowsRatio = a.rows && b.rows ? b.rows.perUser / a.rows.perUser : null;
  const projected = !b.run.done ? " (the larger size from its projected time)" : "";
  const verdict = Math.abs(timeRatio / sizeRatio - 1) <= 0.25 ? "≈ linear" : timeRatio > sizeRatio ? "worse than linear" : "better than linear";
  return {
    from: a.users,
    to: b.users,
    sizeRatio: round(sizeRatio, 2),
    timeRatio: round(timeRatio, 2),
    rowsPerUserRatio: rowsRatio === null ? null : round(rowsRatio, 3),
    verdict,
    text: `scaling ${int(a.users)} → ${int(b.users)} users (×${fmt(sizeRatio, 1)}): time ×${fmt(timeRatio, 2)}${projected}, rows/user ${a.rows ? fmt(a.rows.perUser, 2) : "–"} → ${b.rows ? fmt(b.rows.perUser, 2) : "–"}${rowsRatio === null ? "" : ` (×${fmt(rowsRatio, 3)})`}: ${verdict} (linear = time ×${fmt(sizeRatio, 1)}, rows/user constant)`,
  };
}

// ---------------------------------------------------------------------------------------------

function configFrom(vars) {
  const n = (k, d) => (vars[k] !== undefined && vars[k] !== "" ? Number(vars[k]) : d);
  return {
    mode: vars.BOT_PARAMS_MODE === "fixed" ? "fixed" : "robust",
    mu: n("BOT_MU", 4),
    sigma: n("BOT_SIGMA", 2),
    minPopulation: n("BOT_MIN_POPULATION", 30),
    kA: n("BOT_K_A", 3),
    kB: n("BOT_K_B", 2),
    rateFeeIdr: n("RATE_FEE_IDR", 5),
    feeBps: n("CREATOR_PAYOUT_FEE_BPS", 1000),
  };
}

async function main() {
  for (const port of [PORT, SIM_PORT]) {
    if (!(await portFree(port))) {
      console.error(`port ${port} is already in use on ${HOST}; set BENCH_BATCH_PORT / BENCH_BATCH_SIM_PORT`);
      return 1;
    }
  }
  mkdirSync(".bench", { recursive: true });
  const vars = ensureDevVars();
  const secret = vars.JWT_SECRET;
  if (!secret) {
    console.error("JWT_SECRET is missing from .dev.vars");
    return 1;
  }
  const cfg = configFrom(vars);
  const loadBefore = loadavg()[0];
  if (loadBefore > cpus().length * 0.5) console.log(`note: 1-minute load average is ${loadBefore.toFixed(1)} on ${cpus().length} CPUs before starting; expect noisy figures`);
  if (SNAPSHOT) snapshotApp();
  console.log(`starting the service on ${BASE} from ${SNAPSHOT ? "a snapshot of the working tree" : "the working tree"} (persist ${PERSIST}, log ${LOG_PATH}) ...`);
  const startupSeconds = await bootServer();
  const idleAtStart = sampleWorkerd();
  console.log(`ready in ${startupSeconds} s; workerd processes ${workerdProcesses().join(", ")} (RSS ${mib(idleAtStart.rssKiB)} MiB)`);
  const admin = signToken(`bb-admin-${suffix}`, "admin", secret, 4);

  console.log(`part A: ${INGEST_REQUESTS} × ${EVENTS_PER_REQUEST} activity events from ${USERS} users at concurrency ${INGEST_CONCURRENCY} ...`);
  const ingestResult = await ingest(secret);
  checkInterrupted();
  await stopServer();

  console.log(`part B: daily batch for ${SIZES.join(", ")} users, ${CHUNK === null ? "the service's BATCH_CHUNK_USERS" : `BATCH_CHUNK_USERS=${CHUNK}`} per queue message ...`);
  const batches = [];
  for (const [index, n] of SIZES.entries()) {
    checkInterrupted();
    batches.push(await batchAtScale(admin, n, index, cfg));
  }
  const scaling = scalingLine(batches);

  const mdA = ingestTable(ingestResult);
  const mdB = batchTable(batches);
  console.log(`\n${mdA}\n\n${mdB}\n`);
  if (scaling) console.log(`${scaling.text}\n`);
  console.log("RSS is the whole local runtime's (every workerd process of this `wrangler dev`), sampled every 500 ms; not a per-invocation figure.");
  console.log("ms per message: the queue consumer's invocation time (wrangler log) divided by the messages it acked; each message carries BATCH_CHUNK_USERS users.");
  for (const r of batches) {
    if (r.run) console.log(`N=${r.users}: POST .../run answered in ${r.run.runRequestMs} ms; status poll p50 ${r.run.pollLatencyMs.p50} ms, max ${r.run.pollLatencyMs.max} ms${r.run.pollErrors ? `, ${r.run.pollErrors} poll errors/timeouts (${POLL_TIMEOUT_MS / 1000} s): ${JSON.stringify(r.run.pollFailures)}` : ""}`);
    if (r.matchesExpected && !Object.values(r.matchesExpected).every(Boolean)) console.log(`N=${r.users}: the batch's outcome differs from what the seeded population must produce: expected ${JSON.stringify(r.expected)}, got levels ${JSON.stringify(r.run.progress.levels)} payouts ${JSON.stringify(r.run.progress.payouts)}`);
    if (r.rerun && !r.rerun.ok) console.log(`N=${r.users}: RERUN CHECK FAILED: ${JSON.stringify({ payoutsUnchanged: r.rerun.payoutsUnchanged, userIdrSumUnchanged: r.rerun.userIdrSumUnchanged, rowsInserted: r.rerun.rowsInserted, ledgerOk: r.rerun.ledgerOk })}`);
  }
  console.log(`server log (${starts} service starts): ${logCounts.batchMessageFailed} "batch message failed", ${logCounts.unhandled} "unhandled error", ${logCounts.sqliteBusy} SQLITE_BUSY, ${logCounts.errors} error lines, ${logCounts.reloads} reloads${Object.keys(logFirst).length ? `; first: ${JSON.stringify(logFirst)}` : ""}`);
  if (logCounts.reloads > 0) console.log("WARNING: wrangler reloaded the Worker during the run (source edits?); the figures mix code versions");

  const results = {
    at: new Date().toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage1mBefore: round(loadBefore), loadAverage1mAfter: round(loadavg()[0]) },
    config: { port: PORT, simPort: SIM_PORT, ingestRequests: INGEST_REQUESTS, ingestConcurrency: INGEST_CONCURRENCY, sizes: SIZES, maxSecondsPerRun: MAX_SECONDS, stallSeconds: STALL_SECONDS, batchChunkUsers: CHUNK ?? "service default", snapshot: SNAPSHOT, service: cfg },
    startupSeconds,
    ingest: ingestResult,
    batches,
    scaling,
    serviceStarts: starts,
    unexpectedServiceExits: unexpectedExits,
    serverLog: { path: LOG_PATH, counts: logCounts, first: logFirst },
    markdown: `${mdA}\n\n${mdB}${scaling ? `\n\n${scaling.text}` : ""}`,
  };
  writeFileSync(".bench/batch-results.json", `${JSON.stringify(results, null, 2)}\n`);
  console.log("wrote .bench/batch-results.json");

  const ingestOk = ingestResult.measured.errorCount === 0 && !ingestResult.measured.stoppedByTimeCap;
  const batchesOk = batches.every((r) => r.status === "done" && r.ledgerCheck?.ok && r.rerun?.ok && Object.values(r.matchesExpected).every(Boolean));
  logFile?.end();
  if (!ingestOk) console.log("FAILED: ingest had errors or hit its time cap");
  if (!batchesOk) console.log("FAILED: a batch did not finish, did not match the seeded population, failed the ledger check or paid on the rerun");
  if (logCounts.unhandled || logCounts.sqliteBusy) console.log("FAILED: the service log shows unhandled errors or SQLITE_BUSY");
  if (unexpectedExits.length) console.log(`FAILED: the service exited ${unexpectedExits.length} time(s) without being stopped by this script: ${JSON.stringify(unexpectedExits)}`);
  return ingestOk && batchesOk && logCounts.unhandled === 0 && logCounts.sqliteBusy === 0 && unexpectedExits.length === 0 ? 0 : 1;
}

let code = 1;
try {
  code = await main();
} catch (error) {
  if (interrupted || error instanceof Interrupted) code = 130;
  else {
    console.error(`bench-batch failed: ${error?.stack ?? error}${error?.cause ? `\ncause: ${error.cause?.stack ?? error.cause}` : ""}`);
    if (serverTail) console.error(`--- service output (tail) ---\n${serverTail.slice(-3000)}`);
    code = 1;
  }
} finally {
  await stopServer();
  cleanupState();
}
process.exit(interrupted ? 130 : code);
