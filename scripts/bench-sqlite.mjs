#!/usr/bin/env node
// Raw SQLite baseline for `npm run bench`: how many times per second this machine's SQLite can commit
// the 5-statement batch the service writes for one wallet transfer, one commit per transfer, through
// the Debian `sqlite3` CLI (no wrangler, no workerd, no HTTP). Usage: node scripts/bench-sqlite.mjs [N]
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SQLITE = "/usr/bin/sqlite3";
const MIGRATIONS = fileURLToPath(new URL("../migrations/", import.meta.url));

/** Connection settings of the timed run (synchronous and foreign_keys are per connection). */
const PRAGMAS = "PRAGMA journal_mode=WAL;\nPRAGMA synchronous=NORMAL;\nPRAGMA foreign_keys=ON;\n";

const q = (s) => `'${String(s).replaceAll("'", "''")}'`;

/** The statements `applyPlan` sends for one transfer of `amount` coins from a to b, as one transaction. */
function transferSql(txId, amount, now) {
  const from = "usr:a:COIN";
  const to = "usr:b:COIN";
  const balanceOf = (id) => `(SELECT balance FROM accounts WHERE id=${q(id)})`;
  return `BEGIN;
UPDATE accounts SET balance = balance + ${-amount}, locked = locked + 0 WHERE id = ${q(from)};
UPDATE accounts SET balance = balance + ${amount}, locked = locked + 0 WHERE id = ${q(to)};
INSERT INTO transactions (id, type, status, asset, amount, user_id, counterparty_id, balance_before, balance_after, metadata, device_fingerprint, created_at, completed_at) VALUES (${q(txId)}, 'transfer', 'completed', 'COIN', ${amount}, 'a', 'b', ${balanceOf(from)} - ${-amount}, ${balanceOf(from)}, '{"recipientId":"b"}', NULL, ${now}, ${now});
INSERT INTO postings (transaction_id, account_id, asset, amount, balance_after, created_at) VALUES (${q(txId)}, ${q(from)}, 'COIN', ${-amount}, ${balanceOf(from)}, ${now}), (${q(txId)}, ${q(to)}, 'COIN', ${amount}, ${balanceOf(to)}, ${now});
INSERT INTO audit_log (actor_id, action, subject_type, subject_id, details, created_at) VALUES ('a', 'wallet.transfer', 'user', 'b', '{"amount":${amount}}', ${now});
COMMIT;
`;
}

/** A ULID-shaped id (time prefix, then a counter): sortable like the service's ids. */
function txId(now, i) {
  return `${now.toString(36).toUpperCase().padStart(10, "0")}${i.toString(36).toUpperCase().padStart(16, "0")}`;
}

function runSqlite(db, scriptPath) {
  return new Promise((resolve, reject) => {
    const input = openSync(scriptPath, "r");
    const started = process.hrtime.bigint();
    const child = spawn(SQLITE, ["-bail", db], { stdio: [input, "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", (e) => {
      closeSync(input);
      reject(e);
    });
    child.on("close", (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      closeSync(input);
      if (code !== 0 || err.trim()) reject(new Error(`sqlite3 exited ${code}: ${err.trim()}`));
      else resolve({ seconds, out });
    });
  });
}

function query(db, sql) {
  const r = spawnSync(SQLITE, ["-bail", db, sql], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * Commits `transactions` transfers one at a time into a fresh database built from migrations/*.sql
 * and returns the rate. Only the run of the N transactions is timed. null when sqlite3 is missing.
 */
export async function rawSqliteRate({ transactions = 20000 } = {}) {
  if (!existsSync(SQLITE)) {
    console.log("sqlite3 CLI not installed (apt-get install sqlite3); skipping raw comparison");
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), "bench-sqlite-"));
  try {
    const db = join(dir, "bench.sqlite");
    const migrations = readdirSync(MIGRATIONS)
      .filter((f) => f.endsWith(".sql"))
      .sort()
      .map((f) => `-- ${f}\n${readFileSync(join(MIGRATIONS, f), "utf8")}\n;\n`)
      .join("");
    const setup = `${PRAGMAS}${migrations}
INSERT INTO users(id, status, kyc_status, created_at, updated_at) VALUES ('a','active','none',0,0), ('b','active','none',0,0);
INSERT INTO accounts(id, kind, owner_id, asset, balance, locked, allow_negative, created_at) VALUES
  ('usr:a:COIN','user_wallet','a','COIN',1000000000,0,0,0),
  ('usr:b:COIN','user_wallet','b','COIN',1000000000,0,0,0);
`;
    writeFileSync(join(dir, "setup.sql"), setup);
    await runSqlite(db, join(dir, "setup.sql"));

    const now = Date.now();
    const parts = [PRAGMAS];
    for (let i = 0; i < transactions; i++) parts.push(transferSql(txId(now, i), 1, now));
    writeFileSync(join(dir, "run.sql"), parts.join(""));
    const { seconds } = await runSqlite(db, join(dir, "run.sql"));

    // Every transfer must have committed: N transactions, N*2 postings, a's balance down by N.
    const check = query(db, "SELECT (SELECT count(*) FROM transactions) || ' ' || (SELECT count(*) FROM postings) || ' ' || (SELECT balance FROM accounts WHERE id='usr:a:COIN');");
    const expected = `${transactions} ${transactions * 2} ${1_000_000_000 - transactions}`;
    if (check !== expected) throw new Error(`raw SQLite run did not commit every transfer: got "${check}", expected "${expected}"`);

    return { transactions, seconds, txPerSecond: transactions / seconds, statementsPerTx: 5 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const n = Number(process.argv[2] ?? process.env.BENCH_SQLITE_TRANSACTIONS ?? 20000);
  const result = await rawSqliteRate({ transactions: Number.isInteger(n) && n > 0 ? n : 20000 });
  if (result) {
    console.log(
      `raw SQLite (sqlite3 ${query(":memory:", "select sqlite_version();")}, WAL, synchronous=NORMAL): ` +
        `${result.transactions} transfers of ${result.statementsPerTx} statements, one commit each, in ${result.seconds.toFixed(3)} s ` +
        `= ${Math.round(result.txPerSecond).toLocaleString("en-US")} tx/s`,
    );
  }
}
