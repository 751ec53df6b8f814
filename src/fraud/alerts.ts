import { sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { fraudAlerts } from "../db/schema";
import { newId } from "../lib/ids";

export type Severity = "low" | "medium" | "high" | "critical";

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
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\u001f")));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The insert for one alert, to run alone or inside the batch of the movement that caused it; a repeat of its dedupe key is ignored. */
export function alertStatement(db: Db, alert: AlertInput, now = Date.now()) {
  return db
    .insert(fraudAlerts)
    .values({ id: newId(now), ...alert, deviceFingerprint: alert.deviceFingerprint ?? null, actionTaken: alert.actionTaken ?? null, dedupeKey: alert.dedupeKey ?? null, createdAt: now })
    .onConflictDoNothing();
}

export async function raiseAlert(db: Db, alert: AlertInput): Promise<void> {
  await alertStatement(db, alert);
}

/**
 * The insert for one alert that happens only if `when` (a SQL condition evaluated inside the batch)
 * holds; its details may be SQL too (facts read at commit time, e.g. `json_object(...)`).
 */
export function alertWhen(db: Db, alert: Omit<AlertInput, "details"> & { details: AlertInput["details"] | SQL }, now: number, when: SQL) {
  return insertWhere(
    db,
    fraudAlerts,
    { id: newId(now), ...alert, deviceFingerprint: alert.deviceFingerprint ?? null, actionTaken: alert.actionTaken ?? null, dedupeKey: alert.dedupeKey ?? null, createdAt: now },
    sql`where ${when}`,
  ).onConflictDoNothing();
}
