import { and, gt, inArray, isNull, lt, or, sql, type SQL } from "drizzle-orm";
import { selectInChunks } from "../db/in-chunks";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { auditLog, fraudAlerts, fraudWhitelist, users } from "../db/schema";
import { applyStatements, type Statement } from "../ledger/executor";
import { insertWhere } from "../db/insert-where";
import { alertWhen, dedupeKey } from "./alerts";
import { evaluateRules, ruleById, ruleConfig, type ActionLevel, type Facts, type Finding, type RuleSubject, type SqlFacts } from "./rules";
import { announceBans } from "../realtime/outbox";

export interface Subject {
  userId: string;
  deviceFingerprint: string | null;
}

/** A whitelist entry in force at `now`. */
const inForce = (now: number) => or(isNull(fraudWhitelist.expiresAt), gt(fraudWhitelist.expiresAt, now))!;

/**
 * True inside SQL when the rule's subject is whitelisted: they skip the rules (never the limits or signature
 * checks). A whitelisted user skips every rule; a whitelisted device only the rules about devices
 * (`about: "device"`), since its fingerprint is a header any client can send.
 */
export function whitelistedSql(subject: Subject, now: number, about: RuleSubject = "user"): SQL {
  const match =
    about === "device" && subject.deviceFingerprint
      ? // An admin's own device entry never quiets the rule for their own account (whenever they first used the device).
        sql`(${fraudWhitelist.userId} = ${subject.userId} or (${fraudWhitelist.deviceFingerprint} = ${subject.deviceFingerprint} and ${fraudWhitelist.createdBy} <> ${subject.userId}))`
      : sql`${fraudWhitelist.userId} = ${subject.userId}`;
  return sql`exists (select 1 from ${fraudWhitelist} where ${match} and ${inForce(now)})`;
}

/**
 * Which of `userIds` were whitelisted (by user id: a batch judges users, not devices) at some time during
 * [from, to): a day is judged by the entries that stood on it, never by the time the batch runs, so a
 * replay gives the same answer and an entry added afterwards does not cover the day retroactively.
 */
export async function whitelistedUsers(db: Db, userIds: string[], during: { from: number; to: number }): Promise<Set<string>> {
  const rows = await selectInChunks(userIds, (ids) =>
    db
      .select({ userId: fraudWhitelist.userId })
      .from(fraudWhitelist)
      .where(and(inArray(fraudWhitelist.userId, ids), lt(fraudWhitelist.createdAt, during.to), inForce(during.from))),
  );
  return new Set(rows.map((r) => r.userId!));
}

const CHANGE = {
  1: null,
  2: { status: "frozen" },
  3: { verificationRequired: true },
  4: { status: "banned" },
} as const;

export const ACTION_TAKEN: Record<ActionLevel, "warned" | "frozen" | "banned"> = { 1: "warned", 2: "frozen", 3: "warned", 4: "banned" };

/**
 * The user-record change an action level makes (level 1 only logs and notifies), audited; `unless` is
 * a SQL condition that skips both (a whitelisted subject). A ban is permanent: nothing changes a banned user.
 */
export function actionStatements(db: Db, userId: string, level: ActionLevel, actorId: string, reason: string, now: number, unless: SQL = sql`0`): Statement[] {
  const change = CHANGE[level];
  if (!change) return [];
  return [
    // A user already so is not touched (their freeze or ban was decided before: see alerts.ts' decidedAt).
    announceBans(
      db
        .update(users)
        .set({ ...change, updatedAt: now })
        .where(sql`${users.id} = ${userId} and ${users.status} != 'banned' and not (${"status" in change ? sql`${users.status} = ${change.status}` : sql`0`}) and not ${unless}`)
        .returning({ id: users.id, status: users.status }),
      now,
    ),
    insertWhere(db, auditLog, { actorId, action: `fraud.action_level_${level}`, subjectType: "user", subjectId: userId, details: { change, reason }, createdAt: now }, sql`where not ${unless}`),
  ];
}

/**
 * What findings write, as statements for any batch: one alert per finding (a windowed rule alerts once per
 * user and window, by its dedupe key) and the action its level calls for, once with that alert, all
 * skipped inside SQL when the subject is whitelisted, so no read decides it.
 */
export async function findingStatements(db: Db, subject: Subject, findings: Finding[], now: number): Promise<Statement[]> {
  if (findings.length === 0) return []; // every value-moving request asks; most have nothing to write
  const out: Statement[] = [];
  for (const f of findings) {
    const whitelisted = whitelistedSql(subject, now, f.about);
    const key = f.dedupe ? await dedupeKey(...f.dedupe.map((part) => part ?? "")) : null;
    const alert = {
      userId: subject.userId,
      alertType: f.ruleId,
      severity: f.severity,
      details: { rule: f.ruleId, level: f.level, params: f.params, facts: f.facts },
      deviceFingerprint: subject.deviceFingerprint,
      actionTaken: f.level === 1 ? null : ACTION_TAKEN[f.level],
      ...(key ? { dedupeKey: key } : {}),
    };
    // The action first, once per alert: skipped when this finding's alert was already raised (its dedupe key exists).
    const raised = key ? sql`exists (select 1 from ${fraudAlerts} where ${fraudAlerts.dedupeKey} = ${key})` : sql`0`;
    out.push(
      ...actionStatements(db, subject.userId, f.level, `rule:${f.ruleId}`, f.ruleId, now, sql`(${whitelisted} or ${raised})`),
      alertWhen(db, alert, now, sql`not ${whitelisted}`),
    );
  }
  return out;
}

/** Runs the rules for an event and records what fires (alerts and actions) in one batch. Returns the findings. */
export async function checkRules(db: Db, config: Config, subject: Subject, facts: Facts, now = Date.now()): Promise<Finding[]> {
  const findings = evaluateRules(facts, config, subject, now);
  if (findings.length > 0) await applyStatements(db, await findingStatements(db, subject, findings, now));
  return findings;
}

/**
 * A rule decided inside a movement's batch from facts given as SQL (read at commit time, no earlier
 * read): its alert, and the action its level calls for, when the rule's SQL predicate holds and the
 * subject is not whitelisted. The alert's details carry the facts as they were at commit time.
 */
export function ruleInBatch<E extends Facts["event"]>(
  db: Db,
  config: Config,
  ruleId: string,
  event: E,
  subject: Subject,
  facts: SqlFacts<Extract<Facts, { event: E }>>,
  now: number,
): Statement[] {
  const r = ruleById(ruleId, event);
  if (!r.firesSql) throw new Error(`rule ${ruleId} has no SQL rendering`);
  const params = r.params(ruleConfig(config));
  const fired = sql`(${r.firesSql(facts, params)} and not ${whitelistedSql(subject, now, r.about)})`;
  const factsJson = sql.join(
    Object.entries(facts as Record<string, SQL>).map(([name, value]) => sql`${name}, ${value}`),
    sql`, `,
  );
  const details = sql`json_object('rule', ${r.id}, 'level', ${r.level}, 'params', json(${JSON.stringify(params)}), 'facts', json_object('event', ${event}, ${factsJson}))`;
  // The action before the alert: a rule whose facts count its own earlier alerts (multiple_failed_payments) would not fire again after it.
  return [
    ...actionStatements(db, subject.userId, r.level, `rule:${r.id}`, r.id, now, sql`not ${fired}`),
    alertWhen(db, { userId: subject.userId, alertType: r.id, severity: r.severity, details, deviceFingerprint: subject.deviceFingerprint, actionTaken: r.level === 1 ? null : ACTION_TAKEN[r.level] }, now, fired),
  ];
}
