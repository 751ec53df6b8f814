// Synthetic activity days for `npm run bench:bots`: one user's business day is a list of
// { minute, rate } (minute offsets 0..1439, integer rates > 0), like UserActivity.minuteRates.
// Everything is drawn from one seeded PRNG (mulberry32), so a seed always gives the same population.
//
// The humans are bursty, not convenient: between-person pace differences (lognormal), session-to-session
// pace changes, overdispersed per-minute counts (negative binomial), idle minutes inside sessions, a
// waking window with lunch and evening peaks. `normal` and `power` are the "rates around 4/min":
// a personal pace with a log-SD of 0.15 (95 % of people between 3 and 5.4 a minute) and sessions varying
// by 0.2 around it. `wide` and `wide-power` are a stress model with 0.25 and 0.35 (1 person in 40 past
// 6.5 a minute): there a steady fast person and a 2× fast bot look alike to R̄, and the benchmark shows
// what SPEC §8's R̄ rule then does to people. The bots are what the issue names; the jittered pacing
// bots add Poisson counts and random pauses, with random gaps (jittered) or on a fixed timer
// (jittered-timer), to look less regular than the steady pacing bots.

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function sampler(rand) {
  const uniform = (a, b) => a + (b - a) * rand();
  const int = (a, b) => Math.floor(uniform(a, b + 1));
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const logNormal = (median, sdLog) => median * Math.exp(sdLog * normal());
  const logUniform = (a, b) => Math.exp(uniform(Math.log(a), Math.log(b)));
  const gamma = (shape) => {
    // Marsaglia–Tsang; shape < 1 via the boost U^(1/shape).
    if (shape < 1) return gamma(shape + 1) * Math.pow(rand(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = normal();
      const v = (1 + c * x) ** 3;
      if (v > 0 && Math.log(1 - rand()) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
    }
  };
  const poisson = (lambda) => {
    if (lambda > 40) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal()));
    const l = Math.exp(-lambda);
    let k = 0;
    for (let p = rand(); p > l; p *= rand()) k++;
    return k;
  };
  // Negative binomial as a gamma–Poisson mixture: mean m, variance m + m²/shape.
  const negBinomial = (mean, shape) => poisson((gamma(shape) * mean) / shape);
  return { rand, uniform, int, normal, logNormal, logUniform, gamma, poisson, negBinomial };
}

const DAY = 1440;
const toList = (counts) =>
  [...counts]
    .filter(([, r]) => r > 0)
    .sort((a, b) => a[0] - b[0])
    .map(([minute, rate]) => ({ minute, rate }));

// Relative intensity of starting a session at a minute of the day (WIB): low at night, commute,
// lunch and a strong evening peak.
function diurnal(m) {
  const h = m / 60;
  const bump = (c, w, a) => a * Math.exp(-0.5 * ((h - c) / w) ** 2);
  return 0.3 + bump(7.5, 1, 0.8) + bump(12.5, 1, 1) + bump(20.5, 1.8, 2);
}

/** A person: sessions inside a waking window until `target` active minutes, bursty counts. */
function human(s, { minMinutes, maxMinutes, sessionMedian, paceSd = 0.15, sessionSd = 0.2 }) {
  const target = Math.round(s.logUniform(minMinutes, maxMinutes));
  const baseRate = s.logNormal(4, paceSd);
  const wake = s.int(300, 570);
  const sleep = s.int(1290, 1439);
  const nightOwl = s.rand() < 0.25 ? s.int(30, 120) : 0; // still up after midnight, at the start of the day
  const dispersion = s.uniform(1.5, 4);
  const counts = new Map();
  const weights = [];
  let total = 0;
  for (let m = 0; m < DAY; m++) {
    const awake = (m >= wake && m <= sleep) || m < nightOwl;
    weights.push((total += awake ? diurnal(m) : 0));
  }
  const pickStart = () => {
    const x = s.rand() * total;
    let lo = 0;
    let hi = DAY - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (weights[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  for (let guard = 0; counts.size < target && guard < 2000; guard++) {
    const start = pickStart();
    const length = Math.max(1, Math.min(120, Math.round(s.logNormal(sessionMedian, 0.8))));
    const rate = baseRate * s.logNormal(1, sessionSd);
    const engaged = s.uniform(0.55, 0.95);
    for (let m = start; m < Math.min(DAY, start + length) && counts.size < target; m++) {
      if (counts.has(m) || s.rand() > engaged) continue; // one session at a time: overlaps are not double speed
      const n = s.negBinomial(rate, dispersion);
      if (n > 0) counts.set(m, n);
    }
  }
  return toList(counts);
}

/** Fast bot: 2–50× the normal rate; half of them hide in human-like sessions, half run steadily. */
function fastBot(s) {
  const rate = 4 * s.logUniform(2, 50);
  const counts = new Map();
  if (s.rand() < 0.5) {
    for (const { minute } of human(s, { minMinutes: 10, maxMinutes: 300, sessionMedian: 10 })) counts.set(minute, s.poisson(rate));
  } else {
    const span = s.int(30, 900);
    const start = s.int(0, DAY - span);
    for (let m = start; m < start + span; m++) if (s.rand() < 0.8) counts.set(m, s.poisson(rate));
  }
  return toList(counts);
}

/** Pacing bot: a rate near the human median, 16–24 hours, every k-th minute, integer counts that average `rate`. */
function pacingBot(s) {
  const span = s.int(960, DAY);
  const start = s.int(0, DAY - span);
  const every = s.rand() < 0.5 ? 1 : s.int(2, 4);
  const rate = s.uniform(3, 5.5);
  const counts = new Map();
  let carry = 0;
  for (let m = start; m < start + span; m += every) {
    const n = Math.floor(rate + carry);
    carry += rate - n;
    counts.set(m, n);
  }
  return toList(counts);
}

/**
 * Jittered pacing bot: same budget of hours, but Poisson counts around its rate, each minute skipped
 * with a random probability, and random pauses of 5–45 minutes about once an hour, to look like sessions.
 */
function jitteredBot(s) {
  const span = s.int(960, DAY);
  const start = s.int(0, DAY - span);
  const rate = s.uniform(3, 5.5);
  const duty = s.uniform(0.3, 1);
  const counts = new Map();
  for (let m = start; m < start + span; m++) {
    if (s.rand() < 1 / 60) {
      m += s.int(5, 45);
      continue;
    }
    if (s.rand() < duty) counts.set(m, s.poisson(rate));
  }
  return toList(counts);
}

/** Timer bot: Poisson counts on a fixed timer every 2–4 minutes, with the same random pauses. */
function timerBot(s) {
  const span = s.int(960, DAY);
  const start = s.int(0, DAY - span);
  const rate = s.uniform(3, 5.5);
  const every = s.int(2, 4);
  const counts = new Map();
  for (let m = start; m < start + span; m += every) {
    if (s.rand() < every / 60) m += s.int(5, 45);
    else counts.set(m, s.poisson(rate));
  }
  return toList(counts);
}

export const KINDS = {
  normal: (s) => human(s, { minMinutes: 10, maxMinutes: 180, sessionMedian: 8 }),
  power: (s) => human(s, { minMinutes: 180, maxMinutes: 600, sessionMedian: 20 }),
  wide: (s) => human(s, { minMinutes: 10, maxMinutes: 180, sessionMedian: 8, paceSd: 0.25, sessionSd: 0.35 }),
  "wide-power": (s) => human(s, { minMinutes: 180, maxMinutes: 600, sessionMedian: 20, paceSd: 0.25, sessionSd: 0.35 }),
  fast: fastBot,
  pacing: pacingBot,
  jittered: jitteredBot,
  "jittered-timer": timerBot,
};
export const BOT_KINDS = ["fast", "pacing", "jittered", "jittered-timer"];

/**
 * A population of `size` user-days: `mix` gives each kind's share (the rest is `normal`). Kinds are
 * interleaved by the PRNG, not blocked, so nothing depends on order.
 */
export function population(seed, size, mix) {
  const s = sampler(mulberry32(seed));
  const kinds = Object.entries(mix);
  const users = [];
  for (let i = 0; i < size; i++) {
    const x = s.rand();
    let kind = "normal";
    let acc = 0;
    for (const [k, share] of kinds) if (x < (acc += share)) {
      kind = k;
      break;
    }
    users.push({ kind, minutes: KINDS[kind](s) });
  }
  return users;
}
