// The seeded business day of `npm run bench:batch`, defined once in JS (what the batch must produce)
// and once in SQL (what is written into the local D1 file): the same integer arithmetic, below 2^53.
//
// Per user i: active minutes 20–120; a normal user's R̄ uniform in [3, 5) (mean 4), a level-B user's at
// μ + 2.2σ … μ + 2.8σ of the normal population (2 %), a bot's 40–200 (10–50 × 4; 1 %); units are R̄ ×
// minutes, attributed to campaign i mod 5, or split 30–70 % with the next one for half the users.

export const CAMPAIGNS = 5;
export const CAMPAIGN_BUDGET_IDR = 100_000_000_000; // per campaign; far above what any size pays

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
/** The same steps as a chain of CTEs over `s(i)`: column `name` = mix(i * 8 + salt). */
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

export const campaignId = (n, k) => `BENCH${n}X`.padEnd(25, "0") + k;
const kindOf = (i) => (i % 100 === 0 ? "A" : i % 100 === 17 || i % 100 === 67 ? "B" : "N");

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

/** The SQL that writes the population of size n for `day` (users get their accounts from migration 0010's trigger). */
export function populationSql(n, day, now, b) {
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
    `WITH RECURSIVE ${series} INSERT INTO activity_days (day, user_id, created_at) SELECT ${q}, ${uid}, ${now} FROM s`,
    `WITH RECURSIVE ${ctes.join(",\n")},\n${pop},\n${withUnits}
     INSERT INTO daily_activity (day, user_id, active_minutes, weighted_units, rbar, campaign_units, level, z, action, classified_at)
     SELECT ${q}, ${uid}, m, units, units * 1.0 / m, ${json}, NULL, NULL, NULL, NULL FROM u`,
    `INSERT INTO users (id, status, kyc_status, verification_required, created_at, updated_at) VALUES ('${adv}', 'active', 'none', 0, ${now}, ${now})`,
  ];
  // Campaign budgets, each funded by a balanced adjustment (sys:adjustments:IDR → campaign), with
  // postings whose balance_after is read back like the service's executor does.
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
       VALUES ('${tx}', 'adjustment', 'completed', 'IDR', ${CAMPAIGN_BUDGET_IDR}, '${adv}', NULL, 0, ${CAMPAIGN_BUDGET_IDR}, '{"category":"correction","campaignId":"${id}"}', NULL, ${now}, ${now})`,
      `INSERT INTO postings (transaction_id, account_id, asset, amount, balance_after, created_at) VALUES
        ('${tx}', '${acct}', 'IDR', ${CAMPAIGN_BUDGET_IDR}, ${balanceOf(acct)}, ${now}),
        ('${tx}', 'sys:adjustments:IDR', 'IDR', ${-CAMPAIGN_BUDGET_IDR}, ${balanceOf("sys:adjustments:IDR")}, ${now})`,
    );
  }
  return `${statements.join(";\n")};\n`;
}

/** The service's robust parameters (median and 1.4826 × MAD, as populationStats computes them, σ at least BOT_SIGMA_MIN). */
function robustParams(rbars, cfg) {
  const n = rbars.length;
  if (cfg.mode === "fixed") return { mu: cfg.mu, sigma: cfg.sigma };
  const sorted = Float64Array.from(rbars).sort();
  const mid = (a) => (n % 2 === 1 ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2);
  const median = mid(sorted);
  const mad = mid(Float64Array.from(rbars, (r) => Math.abs(r - median)).sort());
  if (n < cfg.minPopulation || mad === 0) return { mu: cfg.mu, sigma: cfg.sigma };
  return { mu: median, sigma: Math.max(1.4826 * mad, cfg.sigmaMin ?? 0) };
}

/** The population of size n, the B band placed from the normal users' μ and σ, and what the batch must do with it. */
export function plan(n, cfg) {
  // B users sit above the median + MAD either way, so a placeholder band gives the final μ and σ.
  const first = robustParams(populationJs(n, { lo: 1_000_000, span: 1 }).map((u) => u.rbar), cfg);
  const b = { lo: Math.round((first.mu + 2.2 * first.sigma) * 1000), span: Math.max(1, Math.round(0.6 * first.sigma * 1000)) };
  const users = populationJs(n, b);
  const params = robustParams(users.map((u) => u.rbar), cfg);
  const expected = { levels: { A: 0, B: 0, C: 0 }, byKind: { A: 0, B: 0, N: 0 }, paid: { count: 0, amountIdr: 0, feeIdr: 0 }, held: { count: 0, amountIdr: 0, feeIdr: 0 } };
  for (const u of users) {
    const level = u.rbar >= params.mu + cfg.kA * params.sigma ? "A" : u.rbar >= params.mu + cfg.kB * params.sigma ? "B" : "C";
    expected.levels[level]++;
    expected.byKind[u.kind]++;
    const bucket = level === "C" ? expected.paid : level === "B" ? expected.held : null;
    if (!bucket) continue;
    for (const [, units] of u.lines) {
      const amount = units * cfg.rateFeeIdr;
      if (amount <= 0) continue;
      bucket.count++;
      bucket.amountIdr += amount;
      bucket.feeIdr += Math.floor((amount * cfg.feeBps) / 10_000);
    }
  }
  return { b, params, expected };
}
