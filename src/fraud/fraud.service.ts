import { and, desc, eq, gt, isNotNull, isNull, lt, lte, ne, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { auditLog, deviceAccounts, fraudAlerts, fraudWhitelist, users } from "../db/schema";
import { ApiError } from "../lib/errors";
import { insertWhere } from "../db/insert-where";
import { newId } from "../lib/ids";
import { toPage } from "../lib/pagination";
import { announceBans } from "../realtime/outbox";
import { applyStatements } from "../ledger/executor";
import { checkGuards, guard } from "../ledger/guards";
import { userNotBanned } from "../users/users.guards";
import { notAboutThemselves } from "../lib/auth";
import { offsetMinutes } from "../lib/time";

type AlertRow = typeof fraudAlerts.$inferSelect;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const alertView = (a: AlertRow) => ({
  id: a.id,
  userId: a.userId,
  alertType: a.alertType,
  severity: a.severity,
  details: a.details,
  deviceFingerprint: a.deviceFingerprint,
  status: a.status,
  actionTaken: a.actionTaken,
  reviewedBy: a.reviewedBy,
  reviewedAt: iso(a.reviewedAt),
  createdAt: iso(a.createdAt)!,
});

export async function listAlerts(db: Db, q: { limit: number; before?: string; userId?: string; alertType?: string; severity?: AlertRow["severity"]; status?: AlertRow["status"] }) {
  const rows = await db
    .select()
    .from(fraudAlerts)
    .where(
      and(
        q.before ? sql`(${fraudAlerts.createdAt}, ${fraudAlerts.id}) < (select created_at, id from fraud_alerts where id = ${q.before})` : undefined,
        q.userId ? eq(fraudAlerts.userId, q.userId) : undefined,
        q.alertType ? eq(fraudAlerts.alertType, q.alertType) : undefined,
        q.severity ? eq(fraudAlerts.severity, q.severity) : undefined,
        q.status ? eq(fraudAlerts.status, q.status) : undefined,
      ),
    )
    .orderBy(desc(fraudAlerts.createdAt), desc(fraudAlerts.id))
    .limit(q.limit + 1);
  return toPage(rows, q.limit, alertView);
}

const USER_CHANGE = {
  warned: null,
  frozen: { status: "frozen" as const },
  banned: { status: "banned" as const },
  cleared: { status: "active" as const, verificationRequired: false },
};

/**
 * An admin's review: the alert's status and the action on its user, audited together. A ban is
 * permanent: clearing or freezing a banned user is refused.
 */
export async function reviewAlert(db: Db, adminId: string, input: { alertId: string; status: AlertRow["status"]; action: keyof typeof USER_CHANGE }) {
  const alert = await db.query.fraudAlerts.findFirst({ where: eq(fraudAlerts.id, input.alertId) });
  if (!alert) throw new ApiError("not_found", "No such alert.");
  notAboutThemselves(adminId, alert.userId, "review an alert");
  const user = alert.userId ? await db.query.users.findFirst({ where: eq(users.id, alert.userId) }) : undefined;
  if (input.action !== "warned" && !user) throw new ApiError("conflict", "This alert has no user to act on.");
  if (user?.status === "banned" && input.action !== "banned" && input.action !== "warned") throw new ApiError("conflict", "A ban is permanent.");
  const now = Date.now();
  const change = USER_CHANGE[input.action];
  // `cleared` undoes what this alert imposed, nothing else: it lifts a freeze only when this alert imposed it,
  // and not while another freeze stands — another alert's (open or resolved) or an admin's by hand, decided
  // after the user was last unfrozen by hand (one lifted by hand holds nothing). Decided at commit.
  const lastUnfrozen = sql`coalesce((select max(${auditLog.createdAt}) from ${auditLog} where ${auditLog.action} = 'user.unfrozen' and ${auditLog.subjectId} = ${alert.userId}), 0)`;
  const anotherFreezeStands = sql`(exists (select 1 from ${fraudAlerts} where ${fraudAlerts.userId} = ${alert.userId} and ${fraudAlerts.id} <> ${alert.id} and ${fraudAlerts.actionTaken} = 'frozen' and coalesce(${fraudAlerts.reviewedAt}, ${fraudAlerts.createdAt}) > ${lastUnfrozen})
    or exists (select 1 from ${auditLog} where ${auditLog.action} = 'user.frozen' and ${auditLog.subjectId} = ${alert.userId} and ${auditLog.createdAt} > ${lastUnfrozen}))`;
  const userChange =
    input.action !== "cleared"
      ? change
      : alert.actionTaken === "frozen"
        ? { ...USER_CHANGE.cleared, status: sql<"active" | "frozen">`case when ${anotherFreezeStands} then ${users.status} else 'active' end` }
        : { verificationRequired: false };
  // The action is decided anew when it changes, or when it changes the user again (frozen after being unfrozen by hand).
  const keepsDecision = input.action === "banned" || !change || !user || !("status" in change) || user.status === change.status;
  // A freeze or ban the user already has (through another alert, or a rule) is no new decision: metrics and
  // the admins' room count each once. Judged at commit, before this batch's update of the user.
  const target = input.action === "frozen" || input.action === "banned" ? input.action : null;
  const alreadySo = target && user ? sql`exists (select 1 from ${users} where ${users.id} = ${user.id} and ${users.status} = ${target})` : sql`0`;
  // A ban committed after the read above still stands: the batch refuses to clear or freeze a banned user.
  // Another review committed since this one read the alert (two admins at once): refused, so neither decision is lost silently.
  const unchanged = guard("alert_reviewed_meanwhile", sql`not exists (select 1 from ${fraudAlerts} where ${fraudAlerts.id} = ${alert.id} and ${fraudAlerts.reviewedAt} is ${alert.reviewedAt})`);
  const guards = [checkGuards(db, [unchanged, ...(change && user && input.action !== "banned" ? userNotBanned(user.id, "user_banned") : [])])];
  const [updated] = await applyStatements(db, [
    ...guards,
    // A ban is permanent, and so is its record on the alert (stats count bans from it): a later "warned" keeps "banned".
    // A review that keeps the action keeps when it was decided (metrics count a freeze or ban once, on that day).
    db
      .update(fraudAlerts)
      .set({
        status: input.status,
        actionTaken: sql`case when ${fraudAlerts.actionTaken} = 'banned' then 'banned' else ${input.action} end`,
        // Null beside an action means the action changed nothing (the user already was so): it stays none when reviewed again.
        actionDecidedAt: sql`case when ${fraudAlerts.actionTaken} = 'banned' or (${fraudAlerts.actionTaken} is ${input.action} and ${keepsDecision ? 1 : 0}) then ${fraudAlerts.actionDecidedAt} when ${alreadySo} then null else ${now} end`,
        reviewedBy: adminId,
        reviewedAt: now,
      })
      .where(eq(fraudAlerts.id, alert.id))
      .returning(),
    ...(userChange && user
      ? [announceBans(db.update(users).set({ ...userChange, updatedAt: now }).where(and(eq(users.id, user.id), target ? ne(users.status, target) : undefined)).returning({ id: users.id, status: users.status }), now)]
      : []),
    db.insert(auditLog).values({
      actorId: adminId,
      action: "fraud.review",
      subjectType: "fraud_alert",
      subjectId: alert.id,
      details: { userId: alert.userId, from: { status: alert.status, userStatus: user?.status ?? null }, to: { status: input.status, action: input.action } },
      createdAt: now,
    }),
  ]).then((results) => results.slice(guards.length) as [AlertRow[]]);
  return alertView(updated[0]!);
}

/**
 * Counts by type, severity and status; false-positive rate among reviewed alerts; freezes and bans per
 * business week (`%Y-W%W`, weeks start on Monday in BUSINESS_TZ_OFFSET), each counted where it was decided:
 * an alert reviewed `frozen`/`banned` about a user who already was is no second freeze or ban.
 */
export async function fraudStats(db: Db, offset: string) {
  const decided = (action: "frozen" | "banned") => and(eq(fraudAlerts.actionTaken, action), isNotNull(fraudAlerts.actionDecidedAt));
  const [byType, bySeverity, byStatus, [freezes], bans] = await db.batch([
    db.select({ key: fraudAlerts.alertType, n: sql<number>`count(*)` }).from(fraudAlerts).groupBy(fraudAlerts.alertType),
    db.select({ key: fraudAlerts.severity, n: sql<number>`count(*)` }).from(fraudAlerts).groupBy(fraudAlerts.severity),
    db.select({ key: fraudAlerts.status, n: sql<number>`count(*)` }).from(fraudAlerts).groupBy(fraudAlerts.status),
    db.select({ n: sql<number>`count(*)` }).from(fraudAlerts).where(decided("frozen")),
    db
      .select({ week: sql<string>`strftime('%Y-W%W', ${fraudAlerts.actionDecidedAt} / 1000, 'unixepoch', ${`${offsetMinutes(offset)} minutes`})`, n: sql<number>`count(*)` })
      .from(fraudAlerts)
      .where(decided("banned"))
      .groupBy(sql`1`)
      .orderBy(sql`1`),
  ]);
  const map = (rows: { key: string | null; n: number }[]) => Object.fromEntries(rows.filter((r) => r.key !== null).map((r) => [r.key, r.n]));
  const status = map(byStatus);
  const reviewed = (status.resolved ?? 0) + (status.false_positive ?? 0);
  return {
    total: byStatus.reduce((a, r) => a + r.n, 0),
    byType: map(byType),
    bySeverity: map(bySeverity),
    byStatus: status,
    falsePositiveRate: reviewed === 0 ? 0 : (status.false_positive ?? 0) / reviewed,
    freezes: freezes?.n ?? 0,
    bansPerWeek: Object.fromEntries(bans.map((b) => [b.week, b.n])),
  };
}

export async function addToWhitelist(db: Db, adminId: string, input: { userId?: string; deviceFingerprint?: string; reason: string; expiresAt?: string }) {
  notAboutThemselves(adminId, input.userId, "whitelist an account");
  if (input.deviceFingerprint) {
    const own = await db.query.deviceAccounts.findFirst({ where: and(eq(deviceAccounts.fingerprint, input.deviceFingerprint), eq(deviceAccounts.userId, adminId)) });
    if (own) notAboutThemselves(adminId, own.userId, "whitelist a device their own account uses");
  }
  const now = Date.now();
  const expiresAt = input.expiresAt ? Date.parse(input.expiresAt) : null;
  if (expiresAt !== null && expiresAt <= now) throw new ApiError("validation_failed", "expiresAt must be in the future.", { errors: [{ path: "json.expiresAt", message: "in the future" }] });
  const id = newId(now);
  // An entry about a user names one the service knows (as every admin action about a user does): an entry for
  // an id nobody holds yet would exempt whoever is first seen under it from every rule.
  const known = input.userId ? [checkGuards(db, [guard("user_missing", sql`not exists (select 1 from ${users} where ${users.id} = ${input.userId})`)])] : [];
  const [row] = (await applyStatements(db, [
    ...known,
    db.insert(fraudWhitelist).values({ id, userId: input.userId ?? null, deviceFingerprint: input.deviceFingerprint ?? null, reason: input.reason, expiresAt, createdBy: adminId, createdAt: now }).returning(),
    db.insert(auditLog).values({ actorId: adminId, action: "fraud.whitelist_added", subjectType: input.userId ? "user" : "device", subjectId: input.userId ?? input.deviceFingerprint!, details: { reason: input.reason, expiresAt }, createdAt: now }),
  ])).at(-2) as (typeof fraudWhitelist.$inferSelect)[];
  return whitelistView(row!);
}

const whitelistView = (row: typeof fraudWhitelist.$inferSelect) => ({
  id: row.id,
  userId: row.userId,
  deviceFingerprint: row.deviceFingerprint,
  reason: row.reason,
  expiresAt: iso(row.expiresAt),
  createdBy: row.createdBy,
  createdAt: iso(row.createdAt)!,
});

/** Whitelist entries newest first (`active`: only those in force at `now`), a page at a time. */
export async function listWhitelist(db: Db, q: { limit: number; before?: string; active?: boolean }, now: number) {
  const rows = await db
    .select()
    .from(fraudWhitelist)
    .where(
      and(
        q.before ? lt(fraudWhitelist.id, q.before) : undefined,
        q.active === undefined ? undefined : q.active ? or(isNull(fraudWhitelist.expiresAt), gt(fraudWhitelist.expiresAt, now)) : lte(fraudWhitelist.expiresAt, now),
      ),
    )
    .orderBy(desc(fraudWhitelist.id))
    .limit(q.limit + 1);
  return toPage(rows, q.limit, whitelistView);
}

/**
 * Ends an entry now (it stays listed, expired, for the record): the subject is judged by the rules again
 * from this moment. Audited; an entry already ended is 409.
 */
export async function revokeWhitelist(db: Db, adminId: string, id: string, now: number) {
  const [[row]] = await db.batch([
    db
      .update(fraudWhitelist)
      .set({ expiresAt: now })
      .where(and(eq(fraudWhitelist.id, id), or(isNull(fraudWhitelist.expiresAt), gt(fraudWhitelist.expiresAt, now))))
      .returning(),
    // changes(): the entry the update just ended (none: nothing to audit).
    insertWhere(
      db,
      auditLog,
      {
        actorId: adminId,
        action: "fraud.whitelist_revoked",
        subjectType: "whitelist",
        subjectId: id,
        // Whom the entry was about, so the audit log alone says whose exemption ended.
        details: sql`(select json_object('userId', ${fraudWhitelist.userId}, 'deviceFingerprint', ${fraudWhitelist.deviceFingerprint}, 'reason', ${fraudWhitelist.reason}) from ${fraudWhitelist} where ${fraudWhitelist.id} = ${id})`,
        createdAt: now,
      },
      sql`where changes() > 0`,
    ),
  ]);
  if (row) return whitelistView(row);
  const exists = await db.query.fraudWhitelist.findFirst({ where: eq(fraudWhitelist.id, id) });
  throw exists ? new ApiError("conflict", "This whitelist entry has already ended.") : new ApiError("not_found", "No such whitelist entry.");
}
