#!/usr/bin/env node
// `npm run bench:bots`: quality of the bot levels (SPEC §8) on seeded synthetic populations of 10,000
// user-days each (scripts/bot-population.mjs: normal and power users, fast, pacing and jittered bots, and
// wide-pace humans as a stress model),
// through the same pure functions the daily batch uses: daySignals → per-column median/MAD (statsOf,
// columnParams; R̄ with populationParams) → classifyDay. src/activity/signals.ts (with bot-rules.ts) is
// bundled in memory with esbuild, written to a temp .mjs and imported.
//
// Per population and kind it prints the share at B-or-above, at A and at B, the same for today's
// R̄-only rule (`classify`) and for the new signals alone (classifyDay with R̄ switched off), which
// signal decided, each column's μ/σ, a BOT_VOLUME_K_B trade-off table, and every target with PASS/FAIL.
// Results: .bench/bots-results.json. Env: any BOT_* config var, BENCH_BOTS_USERS (10000), BENCH_BOTS_SEED (20261121: the
// first population's seed, the others follow in the order below).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import { population } from "./bot-population.mjs";

const watchdog = setTimeout(() => {
  console.error("bench:bots: over 120 s, giving up");
  process.exit(1);
}, 120_000);
watchdog.unref();

const root = resolve(fileURLToPath(import.meta.url), "../..");
const USERS = Number(process.env.BENCH_BOTS_USERS ?? 10_000);
const SEED = Number(process.env.BENCH_BOTS_SEED ?? 20261121);

async function loadSources() {
  const esbuild = createRequire(import.meta.url)("esbuild");
  const out = await esbuild.build({
    stdin: {
      contents: 'export * from "./src/activity/signals.ts"; export { statsOf, classify } from "./src/activity/bot-rules.ts"; export { loadConfig } from "./src/config.ts";',
      resolveDir: root,
      loader: "ts",
    },
    bundle: true,
    format: "esm",
    platform: "node",
    write: false,
  });
  const file = join(tmpdir(), `bench-bots-${process.pid}.mjs`);
  writeFileSync(file, out.outputFiles[0].text);
  try {
    return await import(pathToFileURL(file).href);
  } finally {
    rmSync(file, { force: true });
  }
}

const POPULATIONS = [
  ["humans", { power: 0.05 }],
  ["fast-5", { fast: 0.05, power: 0.05 }],
  ["fast-20", { fast: 0.2, power: 0.05 }],
  ["pacing-10", { pacing: 0.1, power: 0.05 }],
  ["jittered-10", { jittered: 0.05, "jittered-timer": 0.05, power: 0.05 }],
  ["pacing+jittered-20", { pacing: 0.1, jittered: 0.05, "jittered-timer": 0.05, power: 0.05 }],
  ["mix-20", { fast: 0.1, pacing: 0.04, jittered: 0.03, "jittered-timer": 0.03, power: 0.05 }],
  ["wide-pace", { wide: 0.9, "wide-power": 0.05, pacing: 0.05 }],
].map(([name, mix], i) => ({ name, mix, seed: SEED + i }));


// The service's config (src/config.ts defaults), with any BOT_* var of the environment applied on top, so a
// threshold can be tried without editing the code: e.g. BOT_RBAR_SE_MAX_SIGMA=0 npm run bench:bots.
const botVars = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("BOT_")));

const SWEEP = [2.25, 2.5, 3]; // volume k_B values shown in the trade-off table

function run(lib, { name, mix, seed }) {
  const t0 = performance.now();
  const users = population(seed, USERS, mix);
  // The service's config and the functions the daily batch calls with it.
  const config = lib.loadConfig(botVars);
  const signals = users.map((u) => lib.daySignals(u.minutes, { minMinutes: config.BOT_REGULARITY_MIN_MINUTES }));
  const mode = { mode: config.BOT_PARAMS_MODE, minPopulation: config.BOT_MIN_POPULATION };
  const rbarStats = lib.statsOf(signals.map((s) => s.rbar));
  const rbar = lib.rbarParams(rbarStats, config);
  // SPEC §8 to the letter: σ = 1.4826 × MAD with no floor, and no standard error.
  const rbarLiteral = lib.rbarParams(rbarStats, { ...config, BOT_SIGMA_MIN: Number.MIN_VALUE });
  const columns = {};
  for (const [c, d] of Object.entries(lib.columnDefaultsOf(config))) columns[c] = lib.columnParams(lib.statsOf(signals.map((s) => s[c]).filter((v) => v !== null)), d, mode);
  const params = { rbar, columns };
  const t = lib.thresholdsOf(config);
  // "new only": the same function with R̄ switched off, to show what volume and regularity add on their own.
  const tNew = { ...t, rbar: { a: Infinity, b: Infinity } };
  const kinds = {};
  const count = (k, key, level) => level !== "C" && (k[key][level] += 1);
  users.forEach((u, i) => {
    const day = lib.classifyDay(signals[i], params, t);
    const k = (kinds[u.kind] ??= { users: 0, full: { A: 0, B: 0 }, rbarOnly: { A: 0, B: 0 }, newOnly: { A: 0, B: 0 }, decidedBy: {}, sweep: SWEEP.map(() => 0) });
    k.users++;
    count(k, "full", day.level);
    count(k, "rbarOnly", lib.classify(signals[i].rbar, rbarLiteral, t.rbar).level);
    count(k, "newOnly", lib.classifyDay(signals[i], params, tNew).level);
    if (day.decidedBy) k.decidedBy[day.decidedBy] = (k.decidedBy[day.decidedBy] ?? 0) + 1;
    SWEEP.forEach((b, j) => lib.classifyDay(signals[i], params, { ...t, volume: { ...t.volume, b } }).level !== "C" && k.sweep[j]++);
  });
  return { name, seed, mix, params, kinds, ms: Math.round(performance.now() - t0) };
}

const pct = (n, d) => (d === 0 ? 0 : (100 * n) / d);
const fmt = (x) => x.toFixed(2);
// The issue's targets are for its own kinds (fast, pacing, normal, power). The same bars are applied to the
// stress kinds (jittered and timer bots, wide-pace humans) and reported apart: they are beyond the issue's
// definitions, and show where the rules stop working.
const BOTS = { fast: 99, pacing: 95, jittered: 95, "jittered-timer": 95 };
const STRESS = new Set(["jittered", "jittered-timer", "wide", "wide-power"]);
const HUMANS = [["normal", "power"], ["wide", "wide-power"]];

function targets(r) {
  const out = [];
  const check = (kind, what, value, ok, bound) => r.kinds[kind] && out.push({ population: r.name, kind, what, value: +value.toFixed(3), bound, pass: ok(value), stress: STRESS.has(kind) });
  for (const [kind, min] of Object.entries(BOTS)) {
    const k = r.kinds[kind];
    if (k) check(kind, "B-or-above %", pct(k.full.A + k.full.B, k.users), (v) => v >= min, `>= ${min}`);
  }
  for (const [normal, power] of HUMANS) {
    for (const level of ["full", "newOnly"]) {
      const tag = level === "full" ? "" : " (new signals alone)";
      const [n, p] = [r.kinds[normal], r.kinds[power]];
      if (n) check(normal, `A %${tag}`, pct(n[level].A, n.users), (v) => v <= 0.1, "<= 0.1");
      if (n) check(normal, `B %${tag}`, pct(n[level].B, n.users), (v) => v <= 2.5, "<= 2.5");
      if (p) check(power, `A %${tag}`, pct(p[level].A, p.users), (v) => v === 0, "= 0");
    }
  }
  return out;
}

const t0 = performance.now();
const lib = await loadSources();
const results = POPULATIONS.map((p) => run(lib, p));
const seconds = (performance.now() - t0) / 1000;

const lines = [];
lines.push(`# bench:bots — ${USERS} user-days per population, seeds ${POPULATIONS.map((p) => `${p.name}=${p.seed}`).join(", ")}`);
lines.push("");
const config = lib.loadConfig(botVars);
const thresholds = lib.thresholdsOf(config);
lines.push(`Thresholds (src/config.ts defaults${Object.keys(botVars).length ? `, with ${Object.keys(botVars).join(", ")} from the environment` : ""}): R̄ k_A/k_B ${thresholds.rbar.a}/${thresholds.rbar.b}${thresholds.rbar.seMaxSigma ? ` with its standard error up to ${thresholds.rbar.seMaxSigma}σ` : ""}; volume ${thresholds.volume.a}/${thresholds.volume.b}; regularity ${thresholds.regularity.a}/${thresholds.regularity.b}; regularity needs ${config.BOT_REGULARITY_MIN_MINUTES} active minutes.`);
lines.push("");
lines.push("R̄-only: SPEC §8's comparison to the letter (no standard error, no σ floor); new-only: volume and regularity alone.");
lines.push("");
lines.push("| population | kind | users | B+ % | A % | B % | R̄-only B+ % | R̄-only A % | new-only B+ % | new-only A % | decided by (A and B) |");
lines.push("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|");
for (const r of results) {
  for (const [kind, k] of Object.entries(r.kinds).sort(([a], [b]) => a.localeCompare(b))) {
    const by = Object.entries(k.decidedBy).map(([d, n]) => `${d} ${n}`).join(", ");
    const cells = ["full", "rbarOnly", "newOnly"].flatMap((l) => [pct(k[l].A + k[l].B, k.users), pct(k[l].A, k.users), ...(l === "full" ? [pct(k[l].B, k.users)] : [])]);
    lines.push(`| ${r.name} | ${kind} | ${k.users} | ${cells.map(fmt).join(" | ")} | ${by} |`);
  }
}
lines.push("");
lines.push("Population parameters (μ ± σ, source) per population:");
for (const r of results) {
  const cols = Object.entries({ rbar: r.params.rbar, ...r.params.columns }).map(([c, p]) => `${c} ${p.mu.toFixed(2)} ± ${p.sigma.toFixed(2)}${p.source === "robust" ? "" : ` (${p.source})`}`);
  lines.push(`- ${r.name}: ${cols.join("; ")}`);
}
lines.push("");
lines.push(`Trade-off of BOT_VOLUME_K_B (B-or-above %, other thresholds unchanged): ${SWEEP.join(" / ")}`);
lines.push("");
lines.push("| population | jittered | pacing | power | normal |");
lines.push("|---|--:|--:|--:|--:|");
for (const r of results) {
  const cell = (kind) => (r.kinds[kind] ? r.kinds[kind].sweep.map((n) => fmt(pct(n, r.kinds[kind].users))).join(" / ") : "–");
  lines.push(`| ${r.name} | ${cell("jittered")} | ${cell("pacing")} | ${cell("power")} | ${cell("normal")} |`);
}
const checks = results.flatMap(targets);
lines.push("");
lines.push("| population | kind | target | got | |");
lines.push("|---|---|---|--:|---|");
for (const c of checks) lines.push(`| ${c.population} | ${c.kind} | ${c.what} ${c.bound} | ${c.value} | ${c.pass ? "PASS" : "FAIL"}${c.stress ? " (stress)" : ""} |`);
lines.push("");
const [issue, stress] = [checks.filter((c) => !c.stress), checks.filter((c) => c.stress)];
lines.push(`${issue.filter((c) => c.pass).length}/${issue.length} of the issue's targets met; stress kinds ${stress.filter((c) => c.pass).length}/${stress.length}; ${seconds.toFixed(1)} s.`);
console.log(lines.join("\n"));

mkdirSync(join(root, ".bench"), { recursive: true });
writeFileSync(
  join(root, ".bench", "bots-results.json"),
  JSON.stringify({ at: new Date().toISOString(), users: USERS, thresholds: { ...thresholds, minMinutes: config.BOT_REGULARITY_MIN_MINUTES, columns: lib.columnDefaultsOf(config) }, seconds, populations: results, targets: checks }, null, 2),
);
