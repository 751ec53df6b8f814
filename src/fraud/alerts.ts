import type { Db } from "../db/client";
import { fraudAlerts } from "../db/schema";
import { newId } from "../lib/ids";

export type Severity = "low" | "medium" | "high" | "critical";

export interface AlertInput {
  userId: string | null;
  alertType: string;
  severity: Severity;
  details: Record<string, unknown>;
  deviceFingerprint?: string | null;
}

/** The insert for one alert, to run alone or inside the batch of the movement that caused it. */
export function alertStatement(db: Db, alert: AlertInput, now = Date.now()) {
  return db.insert(fraudAlerts).values({ id: newId(now), ...alert, deviceFingerprint: alert.deviceFingerprint ?? null, createdAt: now });
}

export async function raiseAlert(db: Db, alert: AlertInput): Promise<void> {
  await alertStatement(db, alert);
}
