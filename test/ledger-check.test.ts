import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { latestLedgerCheck, recordLedgerCheck } from "../src/admin/ledger-check";
import { createDb } from "../src/db/client";
import { adjust, d1Refusing, newUser } from "./helpers";

const db = () => createDb(env.DB);
const alerts = async () => (await env.DB.prepare("SELECT severity, details FROM fraud_alerts WHERE alert_type = 'ledger_check_failed'").all<{ severity: string; details: string }>()).results;

describe("the kept ledger check", () => {
  it("keeps each report; a broken ledger raises one critical alert a day, however often it is checked", async () => {
    const now = Date.now();
    const healthy = await recordLedgerCheck(db(), now, "+07:00");
    expect(healthy.ok).toBe(true);
    expect(await latestLedgerCheck(db())).toMatchObject({ checkedAt: now, ok: true });
    expect(await alerts()).toEqual([]);

    // A balance no posting explains (what a bug or a manual edit would leave).
    const user = await newUser("skewed");
    await adjust(user.id, 100);
    const wallet = `usr:${user.id}:COIN`;
    await env.DB.prepare("UPDATE accounts SET balance = balance + 7 WHERE id = ?").bind(wallet).run();
    try {
      const broken = await recordLedgerCheck(db(), now + 1000, "+07:00");
      expect(broken.ok).toBe(false);
      expect(broken.balanceMismatches).toEqual([{ id: wallet, balance: 107, postings: 100 }]);
      await recordLedgerCheck(db(), now + 2000, "+07:00");
      const raised = await alerts();
      expect(raised).toHaveLength(1);
      expect(raised[0]!.severity).toBe("critical");
      expect(JSON.parse(raised[0]!.details)).toMatchObject({ balanceMismatches: 1, assets: [{ asset: "COIN", sum: 7 }] });
      expect(await latestLedgerCheck(db())).toMatchObject({ checkedAt: now + 2000, ok: false, report: { balanceMismatches: [{ id: wallet }] } });
    } finally {
      await env.DB.prepare("UPDATE accounts SET balance = balance - 7 WHERE id = ?").bind(wallet).run();
    }
    expect((await recordLedgerCheck(db(), now + 3000, "+07:00")).ok).toBe(true);
    expect(await latestLedgerCheck(db())).toMatchObject({ checkedAt: now + 3000, ok: true });
  });

  it("a posting of one asset on an account of another, and debt the platform owes a user, fail the check", async () => {
    const user = await newUser("wrongasset");
    const tx = `tx-wrongasset-${user.id}`;
    const now = Date.now();
    // Balanced per asset and each balance equal to its postings: only the assets disagree (COIN moved into a rupiah account).
    await env.DB.batch([
      env.DB.prepare("INSERT INTO transactions (id, type, status, asset, amount, user_id, created_at) VALUES (?, 'adjustment', 'completed', 'COIN', 5, ?, ?)").bind(tx, user.id, now),
      env.DB.prepare("INSERT INTO postings (transaction_id, account_id, asset, amount, balance_after, created_at) VALUES (?, ?, 'COIN', 5, 5, ?), (?, 'sys:adjustments:COIN', 'COIN', -5, 0, ?)").bind(tx, `usr:${user.id}:IDR`, now, tx, now),
      env.DB.prepare("UPDATE accounts SET balance = balance + 5 WHERE id = ?").bind(`usr:${user.id}:IDR`),
      env.DB.prepare("UPDATE accounts SET balance = balance - 5 WHERE id = 'sys:adjustments:COIN'"),
    ]);
    const debt = `debt:${user.id}:COIN`;
    await env.DB.prepare("UPDATE accounts SET balance = 3 WHERE id = ?").bind(debt).run();
    try {
      const report = await recordLedgerCheck(db(), now, "+07:00");
      expect(report.ok).toBe(false);
      expect(report.assetMismatches).toEqual([{ accountId: `usr:${user.id}:IDR`, accountAsset: "IDR", postingAsset: "COIN", postings: 1 }]);
      expect(report.positiveDebts).toEqual([{ id: debt, balance: 3 }]);
    } finally {
      // Postings are immutable by trigger; a test undoes its own corruption around it.
      await env.DB.exec("DROP TRIGGER postings_no_delete");
      await env.DB.batch([
        env.DB.prepare("DELETE FROM postings WHERE transaction_id = ?").bind(tx),
        env.DB.prepare("DELETE FROM transactions WHERE id = ?").bind(tx),
        env.DB.prepare("UPDATE accounts SET balance = balance - 5 WHERE id = ?").bind(`usr:${user.id}:IDR`),
        env.DB.prepare("UPDATE accounts SET balance = balance + 5 WHERE id = 'sys:adjustments:COIN'"),
        env.DB.prepare("UPDATE accounts SET balance = 0 WHERE id = ?").bind(debt),
      ]);
      await env.DB.exec("CREATE TRIGGER `postings_no_delete` BEFORE DELETE ON `postings` BEGIN SELECT RAISE(ABORT, 'postings are immutable'); END;");
    }
    expect((await recordLedgerCheck(db(), now + 1000, "+07:00")).ok).toBe(true);
  });

  it("a user wallet below zero fails the check whatever its allow_negative flag says (the check does not trust the flag the CHECK constraint trusts)", async () => {
    const user = await newUser("flagflip");
    const wallet = `usr:${user.id}:COIN`;
    await env.DB.prepare("UPDATE accounts SET allow_negative = 1, balance = -5 WHERE id = ?").bind(wallet).run();
    try {
      const report = await recordLedgerCheck(db(), Date.now(), "+07:00");
      expect(report.negativeAccounts).toContainEqual({ id: wallet, balance: -5, locked: 0 });
    } finally {
      await env.DB.prepare("UPDATE accounts SET balance = 0, allow_negative = 0 WHERE id = ?").bind(wallet).run();
    }
  });

  it("the alert is one per business day (WIB), not per UTC day", async () => {
    const user = await newUser("skewed-days");
    await adjust(user.id, 100);
    const wallet = `usr:${user.id}:COIN`;
    await env.DB.prepare("UPDATE accounts SET balance = balance + 3 WHERE id = ?").bind(wallet).run();
    const at = (iso: string) => Date.parse(iso);
    // 23:30 and 00:30 WIB are two business days within one UTC day; 00:30 and 07:30 WIB one business day across two UTC days.
    const checks = [at("2026-11-20T16:30:00Z"), at("2026-11-20T17:30:00Z"), at("2026-11-21T00:30:00Z")];
    try {
      for (const t of checks) expect((await recordLedgerCheck(db(), t, "+07:00")).ok).toBe(false);
    } finally {
      await env.DB.prepare("UPDATE accounts SET balance = balance - 3 WHERE id = ?").bind(wallet).run();
    }
    const raised = await env.DB.prepare("SELECT created_at FROM fraud_alerts WHERE alert_type = 'ledger_check_failed' AND created_at BETWEEN ? AND ? ORDER BY created_at")
      .bind(checks[0], checks[2])
      .all<{ created_at: number }>();
    expect(raised.results.map((r) => r.created_at)).toEqual([checks[0], checks[1]]);
  });

  it("a check that cannot run raises the critical alert, keeps no report and still fails", async () => {
    const t = Date.parse("2026-11-18T03:00:00Z");
    const before = await latestLedgerCheck(db());
    const refusing = createDb(d1Refusing(/group by transaction_id, asset/));
    await expect(recordLedgerCheck(refusing, t, "+07:00")).rejects.toThrow(/time limit/);
    await expect(recordLedgerCheck(refusing, t + 60_000, "+07:00")).rejects.toThrow(/time limit/);
    const raised = await env.DB.prepare("SELECT severity, details FROM fraud_alerts WHERE alert_type = 'ledger_check_failed' AND created_at BETWEEN ? AND ?")
      .bind(t, t + 60_000)
      .all<{ severity: string; details: string }>();
    expect(raised.results).toHaveLength(1); // once per business day
    expect(raised.results[0]!.severity).toBe("critical");
    expect(JSON.parse(raised.results[0]!.details)).toMatchObject({ ran: false, error: expect.stringMatching(/time limit/) });
    expect(await latestLedgerCheck(db())).toEqual(before);
  });

  it("reports older than 90 days are dropped when a new one is kept", async () => {
    const now = Date.now();
    await env.DB.prepare("INSERT INTO ledger_checks (checked_at, ok, report) VALUES (?, 1, '{}'), (?, 1, '{}')").bind(now - 91 * 86_400_000, now - 89 * 86_400_000).run();
    await recordLedgerCheck(db(), now, "+07:00");
    // (The reports of the other test in this file are minutes old: not asked for here.)
    const kept = (await env.DB.prepare("SELECT checked_at FROM ledger_checks WHERE checked_at < ? OR checked_at = ? ORDER BY checked_at").bind(now - 80 * 86_400_000, now).all<{ checked_at: number }>()).results.map((r) => r.checked_at);
    expect(kept).toEqual([now - 89 * 86_400_000, now]);
  });
});
