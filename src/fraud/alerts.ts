import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { fraudAlerts, users } from "../db/schema";
import { newId } from "../lib/ids";
import { announce } from "../realtime/outbox";
import { digestHex } from "../lib/crypto";

export type Severity = "low" | "medium" | "high" | "critical";

/**
 * Alerts about the platform's own operations (a job, a gateway, the ledger), not about what a user did:
 * they go to the same admins' queue but flag no transaction (metrics count the others).
 */
export const OPERATIONAL_ALERTS = [
  "batch_chunk_failed",
  "batch_stalled",
  "batch_user_uncollected",
  "batch_start_failed",
  "billing_deferred",
  "content_refund_chunk_failed",
  "escrow_payee_banned",
  "escrow_release_failed",
  "invoice_failed",
  "iris_payout_mismatch",
  "ledger_check_failed",
  "withdrawal_outcome_conflict",
  "withdrawal_unconfirmed",
] as const;

export interface AlertInput {
  userId: string | null;
  alertType: string;
  severity: Severity;
  details: Record<string, unknown>;
  deviceFingerprint?: string | null;
  actionTaken?: "warned" | "frozen" | "banned" | "cleared" | null;
  /** Makes the alert "the same" as an earlier one (e.g. rule, user, window): see `dedupeKey`. */
  dedupeKey?: string;
}

/**
 * The dedupe key of an alert: SHA-256 hex of its parts. Alert ids are always ULIDs and keys are always
 * hashes, so no client-supplied string (a device fingerprint, an order id) ever becomes an id or key.
 */
export async function dedupeKey(...parts: (string | number)[]): Promise<string> {
  return digestHex("SHA-256", parts.join("\u001f"));
}

/**
 * When an alert's action was decided: now, unless the user already was frozen (banned) before this batch —
 * then it decided nothing new (metrics count each freeze and ban once). The action's own update, in the
 * same batch before or after the alert, stamps `updated_at` with `now` only when it changes the user.
 */
function decidedAt(alert: Pick<AlertInput, "actionTaken" | "userId">, now: number): SQL | number | null {
  if (!alert.actionTaken) return null;
  if (alert.actionTaken === "warned" || !alert.userId) return now;
  return sql`(case when exists (select 1 from ${users} where ${users.id} = ${alert.userId} and ${users.status} = ${alert.actionTaken} and ${users.updatedAt} <> ${now}) then null else ${now} end)`;
}

/** The insert for one alert, to run alone or inside the batch of the movement that caused it; a repeat of its dedupe key is ignored. */
export function alertStatement(db: Db, alert: AlertInput, now = Date.now()) {
  return announceAlert(
    db
      .insert(fraudAlerts)
      .values({ id: newId(now), ...alert, deviceFingerprint: alert.deviceFingerprint ?? null, actionTaken: alert.actionTaken ?? null, actionDecidedAt: decidedAt(alert, now), dedupeKey: alert.dedupeKey ?? null, createdAt: now })
      .onConflictDoNothing()
      .returning(ALERT_EVENT_COLUMNS),
  );
}

export async function raiseAlert(db: Db, alert: AlertInput): Promise<void> {
  // Through a batch, so the alert is announced to the admins once written.
  await db.batch([alertStatement(db, alert)]);
}

const ALERT_EVENT_COLUMNS = { id: fraudAlerts.id, userId: fraudAlerts.userId, alertType: fraudAlerts.alertType, severity: fraudAlerts.severity, createdAt: fraudAlerts.createdAt };

/** Every alert written (a repeat of a dedupe key writes nothing) reaches the admins' room as `fraud-alert`. */
function announceAlert<S extends object>(statement: S): S {
  return announce(statement, (rows) =>
    (rows as { id: string; userId: string | null; alertType: string; severity: string; createdAt: number }[]).map((a) => ({
      to: { room: "admins" as const },
      type: "fraud-alert",
      at: a.createdAt,
      data: { alertId: a.id, userId: a.userId, alertType: a.alertType, severity: a.severity },
    })),
  );
}

/**
 * The insert for one alert that happens only if `when` (a SQL condition evaluated inside the batch)
 * holds; its details may be SQL too (facts read at commit time, e.g. `json_object(...)`).
 */
export function alertWhen(db: Db, alert: Omit<AlertInput, "details"> & { details: AlertInput["details"] | SQL }, now: number, when: SQL) {
  return announceAlert(
    insertWhere(
      db,
      fraudAlerts,
      { id: newId(now), ...alert, deviceFingerprint: alert.deviceFingerprint ?? null, actionTaken: alert.actionTaken ?? null, actionDecidedAt: decidedAt(alert, now), dedupeKey: alert.dedupeKey ?? null, createdAt: now },
      sql`where ${when}`,
    )
      .onConflictDoNothing()
      .returning(ALERT_EVENT_COLUMNS),
  );
}
