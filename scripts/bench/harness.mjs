// The one benchmark harness: runs the service the way `npm start` does (wrangler dev + the gateway
// simulator, fresh local state under .bench/), sends bounded load from 127.0.0.1, summarises it, and
// always stops what it started. Every `npm run bench*` script builds on it and reads as what it measures.
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { Agent, request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { cpus, loadavg, totalmem } from "node:os";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { ensureDevVars } from "../dev-vars.mjs";

export const HOST = "127.0.0.1";
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const round = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 10 ** d) / 10 ** d);

/** A positive number from the environment, or the default; anything else stops the script. */
export function envNumber(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`${name} must be a positive number, got "${raw}"`);
    process.exit(2);
  }
  return n;
}

function portFree(port) {
  return new Promise((res) => {
    const probe = createServer().once("error", () => res(false)).once("listening", () => probe.close(() => res(true))).listen(port, HOST);
  });
}

/** Every process below `pid` (Linux /proc): wrangler's workerd children included. */
function descendants(pid) {
  if (!existsSync("/proc")) return [];
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // ended while we looked
    }
  }
  const found = [];
  const walk = (p) => (children.get(p) ?? []).forEach((c) => (found.push(c), walk(c)));
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

/**
 * RSS (KiB) and CPU seconds of every workerd process now running (the local runtime of wrangler dev),
 * split into the runtime that runs the Worker, its Durable Objects and local D1 and the one that runs
 * wrangler's dev proxy (it listens on the service's `port`); and the CPU seconds of wrangler's own Node
 * process (its dev proxy's controller and log output; with DevTools off, the one that also runs the idle
 * gateway simulator).
 */
export function workerdUsage(port) {
  let rssKiB = 0;
  let runtimeCpuSeconds = 0;
  let proxyCpuSeconds = 0;
  let wranglerCpuSeconds = 0;
  for (const entry of existsSync("/proc") ? readdirSync("/proc") : []) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      const workerd = cmdline.includes("workerd");
      if (!workerd && !cmdline.includes("wrangler-dist") && !cmdline.includes("scripts/start.mjs")) continue;
      const raw = readFileSync(`/proc/${entry}/stat`, "utf8");
      const stat = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
      // utime + stime, in clock ticks (USER_HZ = 100 on Linux)
      const cpu = (Number(stat[11]) + Number(stat[12])) / 100;
      if (!workerd) {
        wranglerCpuSeconds += cpu;
        continue;
      }
      rssKiB += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${entry}/status`, "utf8"))?.[1] ?? 0);
      if (cmdline.includes(`entry=${HOST}:${port}`)) proxyCpuSeconds += cpu;
      else runtimeCpuSeconds += cpu;
    } catch {
      // ended while we looked
    }
  }
  return { rssKiB, cpuSeconds: runtimeCpuSeconds + proxyCpuSeconds, runtimeCpuSeconds, proxyCpuSeconds, wranglerCpuSeconds };
}

/**
 * The service under test. By default it runs from a snapshot of the working tree (wrangler reloads on
 * every edit under src/, which would change the code in the middle of a measurement). `devtools: false`
 * runs wrangler's dev server with its DevTools inspector off (`DEVTOOLS=off` in scripts/start.mjs): with
 * it on, as `npm start` runs it, wrangler reports every D1 and object call to DevTools as it happens,
 * which costs the local stack more than a D1 read itself.
 */
export function benchService({ name, port, simPort, inspectorPort, extraVars = [], snapshot = process.env.BENCH_SNAPSHOT !== "0", devtools = true }) {
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  const runDir = resolve(`.bench/${name}-${stamp}`);
  const persist = `${runDir}/state`;
  const appDir = snapshot ? `${runDir}/app` : process.cwd();
  const base = `http://${HOST}:${port}`;
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  let child;
  let exited = false;
  let log = "";
  let reloads = 0;
  const logListeners = new Set();
  mkdirSync(runDir, { recursive: true });

  if (snapshot) {
    mkdirSync(appDir, { recursive: true });
    for (const entry of ["src", "scripts", "tools", "migrations", "public", "wrangler.toml", "package.json", "tsconfig.json", "worker-configuration.d.ts", ".dev.vars", ".dev.vars.example"]) {
      if (existsSync(entry)) cpSync(entry, `${appDir}/${entry}`, { recursive: true });
    }
    symlinkSync(resolve("node_modules"), `${appDir}/node_modules`, "dir");
    // The service runs the bundle built once here, unbundled by wrangler dev: nothing it runs is watched,
    // so no edit in the tree (not even one esbuild would have followed through the node_modules link)
    // reloads the server mid-run — a reload loses the local queue's in-flight batch and stalls the queue.
    const built = spawnSync(process.execPath, [resolve("node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", "dist"], { cwd: appDir, encoding: "utf8" });
    if (built.status !== 0) throw new Error(`building the bundle failed:\n${built.stdout}\n${built.stderr}`);
    const config = readFileSync(`${appDir}/wrangler.toml`, "utf8").replace(/^main = .*$/m, 'main = "dist/index.js"\nno_bundle = true');
    writeFileSync(`${appDir}/wrangler.toml`, config);
  }
  const secret = ensureDevVars(appDir).JWT_SECRET;

  const service = {
    base,
    port,
    devtools,
    persist,
    appDir,
    secret,
    get reloads() {
      return reloads;
    },
    get log() {
      return log;
    },
    /** Lines of the service's output as they arrive (e.g. wrangler's queue log). */
    onLog: (fn) => logListeners.add(fn),
    async start() {
      for (const p of [port, simPort, inspectorPort]) if (p !== undefined && !(await portFree(p))) throw new Error(`port ${p} is in use on ${HOST}`);
      exited = false;
      const env = { ...process.env, PORT: String(port), SIM_PORT: String(simPort), PERSIST_DIR: persist, SIM_LOG: "false", EXTRA_VARS: extraVars.join(" "), NO_COLOR: "1", FORCE_COLOR: "0", ...(inspectorPort ? { INSPECTOR_PORT: String(inspectorPort) } : {}), ...(devtools ? {} : { DEVTOOLS: "off" }) };
      child = spawn(process.execPath, ["scripts/start.mjs"], { cwd: appDir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      const keep = (d) => {
        const text = String(d);
        log = (log + text).slice(-40_000);
        // The whole output, for diagnosing a run afterwards (e.g. a queue that stopped delivering).
        appendFileSync(`${runDir}/service.log`, text);
        reloads += (text.match(/Reloading local server/g) ?? []).length;
        for (const fn of logListeners) fn(text);
      };
      child.stdout.on("data", keep);
      child.stderr.on("data", keep);
      child.on("exit", () => (exited = true));
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline) {
        if (exited) throw new Error(`the service exited during startup:\n${log.slice(-3000)}`);
        try {
          const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
          await res.arrayBuffer();
          if (res.ok) return;
        } catch {
          // not listening yet
        }
        await sleep(500);
      }
      throw new Error(`the service was not ready within 120 s:\n${log.slice(-3000)}`);
    },
    async stop() {
      if (!child?.pid || exited) return;
      const pid = child.pid;
      const tree = [pid, ...descendants(pid)];
      const signal = (sig) => {
        try {
          process.kill(-pid, sig);
        } catch {
          // group gone
        }
      };
      signal("SIGTERM");
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && (alive(-pid) || tree.some(alive))) await sleep(100);
      if (alive(-pid) || tree.some(alive)) {
        signal("SIGKILL");
        for (const p of tree) if (alive(p)) process.kill(p, "SIGKILL");
        await sleep(300);
      }
      exited = true;
    },
    cleanup() {
      if (process.env.BENCH_KEEP_STATE !== "1") rmSync(runDir, { recursive: true, force: true });
    },
    /** One HTTP request (keep-alive), timed, with the D1 figures of its Server-Timing header. */
    call: (method, path, token, body, timeoutMs = 30_000) => call({ base, agent, port }, method, path, token, body, timeoutMs),
  };
  process.once("SIGINT", async () => {
    console.error("\ninterrupted: stopping the service");
    await service.stop();
    service.cleanup();
    process.exit(130);
  });
  return service;
}

const TIMING = /roundTrips=(\d+)\s+statements=(\d+)\s+rowsRead=(\d+)\s+rowsWritten=(\d+)/;

/**
 * wrangler dev's proxy sometimes answers a burst with a plain-text 503 "Your worker restarted
 * mid-request" although the Worker never restarted (workers-sdk #14641): such a request is retried
 * (with its Idempotency-Key, if any) and counted apart from the Worker's own 5xx, which are problem+json.
 */
async function call({ agent, port }, method, path, token, body, timeoutMs) {
  for (let attempt = 0; ; attempt++) {
    const r = await once(agent, port, method, path, token, body, timeoutMs);
    if (r.status === 503 && !r.problem && attempt < 3) {
      r.proxyRetries = attempt + 1;
      continue;
    }
    return r;
  }
}

function once(agent, port, method, path, token, body, timeoutMs) {
  return new Promise((resolvePromise, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}) };
    const started = performance.now();
    const req = httpRequest({ host: HOST, port, method, path, headers, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString("utf8");
        const m = TIMING.exec(String(res.headers["server-timing"] ?? ""));
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolvePromise({
          status: res.statusCode,
          ms: performance.now() - started,
          d1: m ? { roundTrips: Number(m[1]), statements: Number(m[2]), rowsRead: Number(m[3]), rowsWritten: Number(m[4]) } : undefined,
          problem: String(res.headers["content-type"] ?? "").includes("problem+json"),
          json,
          text,
        });
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

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * `count` requests from `make(i)` with `concurrency` in flight (no new ones after `maxSeconds`). A
 * request answered other than `ok` (status, or `check` returning a reason) is an error.
 */
export async function load(service, { count, concurrency, maxSeconds = 300, ok, make, check }) {
  const samples = [];
  const errors = {};
  let issued = 0;
  let proxyRetries = 0;
  let firstError;
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  const worker = async () => {
    while (issued < count && performance.now() < deadline) {
      const i = issued++;
      const { method, path, token, body } = make(i);
      try {
        const r = await service.call(method, path, token, body);
        proxyRetries += r.proxyRetries ?? 0;
        const bad = r.status !== ok ? String(r.status) : check?.(r, i);
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
  return summarise(samples, { errors, issued, proxyRetries, firstError, seconds: (performance.now() - started) / 1000 });
}

/** req/s, latency percentiles and mean D1 figures of answered samples (merging rounds is `summarise` of all their samples). */
export function summarise(samples, { errors = {}, issued = samples.length, proxyRetries = 0, firstError = null, seconds }) {
  const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
  const withD1 = samples.filter((s) => s.d1);
  const mean = (f) => (withD1.length ? withD1.reduce((acc, s) => acc + f(s.d1), 0) / withD1.length : null);
  return {
    samples,
    issued,
    completed: samples.length,
    errors,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    proxyRetries,
    firstError,
    seconds: round(seconds, 3),
    requestsPerSecond: round(samples.length / seconds, 1),
    latencyMs: { p50: round(percentile(ms, 50)), p90: round(percentile(ms, 90)), p99: round(percentile(ms, 99)), max: round(ms.at(-1) ?? null) },
    d1: {
      roundTripsMean: round(mean((d) => d.roundTrips)),
      roundTripsMax: withD1.length ? Math.max(...withD1.map((s) => s.d1.roundTrips)) : null,
      statementsMean: round(mean((d) => d.statements)),
      rowsReadMean: round(mean((d) => d.rowsRead)),
      rowsWrittenMean: round(mean((d) => d.rowsWritten)),
    },
  };
}

export const fmt = (x, d = 1) => (x === null || x === undefined ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));

export function markdownTable(head, rows, align = head.map((_, i) => (i === 0 ? "---" : "---:"))) {
  return [`| ${head.join(" | ")} |`, `|${align.join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

export function machine() {
  return { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadAverage1m: round(loadavg()[0]) };
}

/**
 * Runs a benchmark's `main` (which returns its exit code) against `service`, and always stops the
 * service and removes its state, whatever happened; exits with the code (1 on an error).
 */
export async function runBenchmark(service, label, main) {
  let code = 1;
  try {
    code = await main();
  } catch (error) {
    console.error(`${label} failed: ${error?.stack ?? error}\n--- service output (tail) ---\n${service.log.slice(-3000)}`);
  } finally {
    await service.stop();
    service.cleanup();
  }
  process.exit(code);
}

/** Writes `.bench/<file>` (the samples themselves are left out: they are only summarised). */
export function writeResults(file, results) {
  mkdirSync(".bench", { recursive: true });
  writeFileSync(`.bench/${file}`, `${JSON.stringify(results, (key, value) => (key === "samples" ? undefined : value), 2)}\n`);
  console.log(`wrote .bench/${file}`);
}
