import { and, eq, gt, isNull, or, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { auditLog, fraudAlerts, fraudWhitelist, users } from "../db/schema";
import { newId } from "../lib/ids";
import { evaluateRules, type ActionLevel, type Facts, type Finding } from "./rules";

export interface Subject {
  userId: string;
  deviceFingerprint: string | null;
}

/** Whitelisted users and devices skip the rules (never the spending limits or signature checks). */
export async function isWhitelisted(db: Db, subject: Subject, now: number): Promise<boolean> {
  const match = subject.deviceFingerprint
    ? or(eq(fraudWhitelist.userId, subject.userId), eq(fraudWhitelist.deviceFingerprint, subject.deviceFingerprint))
    : eq(fraudWhitelist.userId, subject.userId);
  const row = await db.query.fraudWhitelist.findFirst({ where: and(match, or(isNull(fraudWhitelist.expiresAt), gt(fraudWhitelist.expiresAt, now))) });
  return row !== undefined;
}

/** The user-record change an action level makes; level 1 only logs and notifies. */
export function actionStatements(db: Db, userId: string, level: ActionLevel, actorId: string, reason: string, now: number) {
  const change =
    level === 4 ? { status: "banned" as const } : level === 3 ? { verificationRequired: true } : level === 2 ? { status: "frozen" as const } : null;
  if (!change) return [];
  const notBanned = sql`${users.status} != 'banned'`;
  return [
    db.update(users).set({ ...change, updatedAt: now }).where(and(eq(users.id, userId), notBanned)),
    db.insert(auditLog).values({ actorId, action: `fraud.action_level_${level}`, subjectType: "user", subjectId: userId, details: { change, reason }, createdAt: now }),
  ];
}

export const ACTION_TAKEN: Record<ActionLevel, "warned" | "frozen" | "banned"> = { 1: "warned", 2: "frozen", 3: "warned", 4: "banned" };

/**
 * Runs the rules for an event and records what fires: one alert per finding with the rule's
 * parameters at the time, and the action its level calls for. Returns the findings.
 */
export async function checkRules(db: Db, config: Config, subject: Subject, facts: Facts, now = Date.now()): Promise<Finding[]> {
  const findings = evaluateRules(facts, config);
  if (findings.length === 0 || (await isWhitelisted(db, subject, now))) return [];
  const statements = findings.flatMap((f) => [
    db.insert(fraudAlerts).values({
      id: f.dedupeWindowMs ? `${f.ruleId}_${subject.userId}_${Math.floor(now / f.dedupeWindowMs)}` : newId(now),
      userId: subject.userId,
      alertType: f.ruleId,
      severity: f.severity,
      details: { rule: f.ruleId, level: f.level, params: f.params, facts: f.facts },
      deviceFingerprint: subject.deviceFingerprint,
      actionTaken: f.level === 1 ? null : ACTION_TAKEN[f.level],
      createdAt: now,
    }).onConflictDoNothing(),
    ...actionStatements(db, subject.userId, f.level, `rule:${f.ruleId}`, f.ruleId, now),
  ]);
  await db.batch(statements as [(typeof statements)[number], ...(typeof statements)[number][]]);
  return findings;
}
