import { DurableObject } from "cloudflare:workers";
import { evaluateRules, type Finding, type RuleConfig } from "../fraud/rules";
import { ratePerMinute, type ActivityType, type Weights } from "../activity/bot-rules";
import { daySignals, type DaySignals } from "../activity/signals";
import { addDays, businessDay } from "../lib/time";
import { closeSocket, EventLog, type Retention } from "../realtime/event-log";
import type { DeliveredEvent } from "../realtime/outbox";

export interface ActivityEvent {
  id?: string;
  type: ActivityType;
  campaignId?: string;
  at: number;
  count: number;
}

/** A day's activity shape (R̄, volume, regularity: `daySignals`) and units per campaign. */
export interface DaySummary extends DaySignals {
  day: string;
  campaignUnits: Record<string, number>;
}

export interface RateResult {
  allowed: boolean;
  retryAfterSeconds: number;
  attemptsInWindow: number;
  /** The request's device was never seen for this user before (its record and the shared-device rule go to D1 now). */
  newDevice: boolean;
}

export interface GateResult extends RateResult {
  /** Rule findings raised for the first time in their window (to be written to D1 now). */
  findings: Finding[];
}

export interface RecordOptions {
  tzOffset: string;
  retentionDays: number;
  now: number;
  maxCampaignsPerDay: number;
}

export type RecordResult = { accepted: number; duplicates: number; newDays: string[]; refused?: undefined } | { refused: "day_closed" | "too_many_campaigns"; days: string[] };

export interface MinuteRate {
  minute: number;
  rate: number;
}

/**
 * One per user (named by user id): per-minute counts per activity type and campaign for the recent
 * business days, event-id dedupe, and nothing older than ACTIVITY_RETENTION_DAYS. SQLite-backed, RPC only.
 */

/** Devices a user's object remembers (the most recently first seen). */
const DEVICES_KEPT = 200;
export class UserActivity extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly log: EventLog;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.log = new EventLog(ctx, this.sql);
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS minute_counts (
        day TEXT NOT NULL, minute INTEGER NOT NULL, type TEXT NOT NULL, campaign TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (day, minute, type, campaign));
      CREATE TABLE IF NOT EXISTS seen_events (id TEXT PRIMARY KEY, day TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS closed_days (day TEXT PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS kept_from (id INTEGER PRIMARY KEY CHECK (id = 1), day TEXT NOT NULL);
      DROP TABLE IF EXISTS attempts;
      DROP TABLE IF EXISTS rate_attempts;
      CREATE TABLE IF NOT EXISTS rate_window (bucket TEXT NOT NULL, ends INTEGER NOT NULL, attempts INTEGER NOT NULL, admitted INTEGER NOT NULL, PRIMARY KEY (bucket, ends));
      CREATE TABLE IF NOT EXISTS devices (fingerprint TEXT PRIMARY KEY, first_seen INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS raised_alerts (key TEXT PRIMARY KEY, at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS realtime_tickets (ticket TEXT PRIMARY KEY, role TEXT NOT NULL, expires_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS realtime_owner (id INTEGER PRIMARY KEY CHECK (id = 1), user_id TEXT NOT NULL);`);
  }

  /**
   * The user's realtime socket (SPEC §13): the Worker has authenticated the caller and forwards the
   * upgrade with their id; several sockets per user, the oldest closed beyond the limit.
   */
  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const userId = request.headers.get("x-realtime-user") ?? "";
    const since = url.searchParams.get("since");
    const now = Date.now();
    const awayResyncMs = Number(request.headers.get("x-realtime-away-resync-ms") ?? 86_400_000);
    // Present first, then accepted: a batch that commits before the write skipped this user, and the socket
    // then either replays from the log or gets `resync` (re-read after the commit); one that commits after
    // it publishes here. Accepted first, a commit in between would be lost to a live socket.
    await this.presence(userId, true, now);
    return this.log.accept(userId, since === null ? null : Number(since), Number(request.headers.get("x-realtime-max-sockets") ?? 10), now, { awayResyncMs });
  }

  /** Presence writes, one at a time and in order (see `presence`). */
  private presenceWrites: Promise<void> = Promise.resolve();

  /**
   * The user's presence in D1, which announcing statements read (`seenAtSql`) so events go only to users
   * present. Writes run one after another; `connected: "sockets"` is decided when the write runs, from
   * the sockets open then. So a close whose write was overtaken by a reload's accept still ends in
   * "connected", and the last write always follows the last change.
   */
  private presence(userId: string, connected: true | "sockets", now: number): Promise<void> {
    if (!userId) return Promise.resolve();
    this.sql.exec("INSERT OR REPLACE INTO realtime_owner (id, user_id) VALUES (1, ?)", userId);
    const write = this.presenceWrites.then(async () => {
      const on = connected === true || this.log.sockets() > 0;
      await this.env.DB.prepare("INSERT INTO realtime_presence (user_id, connected, last_seen) VALUES (?1, ?2, ?3) ON CONFLICT (user_id) DO UPDATE SET connected = excluded.connected, last_seen = excluded.last_seen")
        .bind(userId, on ? 1 : 0, now)
        .run();
    });
    this.presenceWrites = write.catch(() => undefined);
    return write;
  }

  /** Events for this user, after the batch that caused them committed: numbered, kept for replay, sent. */
  publish(events: { type: string; at: number; data: Record<string, unknown> }[], retention: Retention): DeliveredEvent[] {
    return this.log.append(events, retention, Date.now());
  }

  /** A one-time ticket for a browser's WebSocket (which cannot carry a bearer header), with the caller's role. */
  issueTicket(ticket: string, role: "user" | "admin", now: number, ttlMs: number): number {
    this.sql.exec("DELETE FROM realtime_tickets WHERE expires_at <= ?", now);
    this.sql.exec("INSERT INTO realtime_tickets (ticket, role, expires_at) VALUES (?, ?, ?)", ticket, role, now + ttlMs);
    return now + ttlMs;
  }

  /** The ticket's role, once per ticket and before it expires; null otherwise. */
  consumeTicket(ticket: string, now: number): "user" | "admin" | null {
    const row = this.sql.exec<{ role: "user" | "admin"; expires_at: number }>("DELETE FROM realtime_tickets WHERE ticket = ? RETURNING role, expires_at", ticket).toArray()[0];
    return row !== undefined && row.expires_at > now ? row.role : null;
  }

  override webSocketMessage(): void {
    // Clients only listen; "ping" is answered by the auto-response without waking the object.
  }

  /** A socket that failed (a reset, the runtime dropping it) is gone as surely as a closed one: same bookkeeping. */
  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.webSocketClose(ws, 1011, "socket error");
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeSocket(ws, code, reason);
    const now = Date.now();
    if (!this.log.closed(ws, now)) return;
    const owner = this.sql.exec<{ user_id: string }>("SELECT user_id FROM realtime_owner WHERE id = 1").toArray()[0]?.user_id;
    if (owner) await this.presence(owner, "sockets", now);
  }

  /**
   * Adds events, all or none; returns how many were new, how many were repeats, and which business days
   * are new for this user. Refused whole (nothing recorded) when it would add activity to a day whose
   * collection has started (it could never be paid) or attribute a day to more than `maxCampaignsPerDay`
   * distinct campaigns.
   */
  record(events: ActivityEvent[], opts: RecordOptions): RecordResult {
    let accepted = 0;
    let duplicates = 0;
    const newDays: string[] = [];
    return this.ctx.storage.transactionSync((): RecordResult => {
      // Events already recorded (a client's retry of a report whose answer it lost) are duplicates whatever
      // else holds: only new ones are judged against a closed day or the campaign cap.
      const fresh = events.filter((e) => e.id === undefined || this.sql.exec("SELECT 1 FROM seen_events WHERE id = ?", e.id).toArray().length === 0);
      duplicates = events.length - fresh.length;
      const days = [...new Set(fresh.map((e) => businessDay(e.at, opts.tzOffset)))];
      const closed = days.filter((day) => this.sql.exec("SELECT 1 FROM closed_days WHERE day = ?", day).toArray().length > 0);
      if (closed.length > 0) return { refused: "day_closed", days: closed };
      for (const day of days) {
        const campaigns = new Set(this.sql.exec<{ campaign: string }>("SELECT DISTINCT campaign FROM minute_counts WHERE day = ? AND campaign != ''", day).toArray().map((r) => r.campaign));
        for (const e of fresh) if (e.campaignId && businessDay(e.at, opts.tzOffset) === day) campaigns.add(e.campaignId);
        if (campaigns.size > opts.maxCampaignsPerDay) return { refused: "too_many_campaigns", days: [day] };
      }
      for (const e of fresh) {
        const day = businessDay(e.at, opts.tzOffset);
        if (e.id !== undefined) {
          const inserted = this.sql.exec("INSERT OR IGNORE INTO seen_events (id, day) VALUES (?, ?)", e.id, day).rowsWritten;
          if (inserted === 0) {
            duplicates++;
            continue;
          }
        }
        this.sql.exec(
          `INSERT INTO minute_counts (day, minute, type, campaign, count) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (day, minute, type, campaign) DO UPDATE SET count = count + excluded.count`,
          day,
          Math.floor(e.at / 60_000),
          e.type,
          e.campaignId ?? "",
          e.count,
        );
        if (this.sql.exec("INSERT OR IGNORE INTO days (day) VALUES (?)", day).rowsWritten > 0) newDays.push(day);
        accepted++;
      }
      const oldest = addDays(businessDay(opts.now, opts.tzOffset), -opts.retentionDays);
      for (const table of ["minute_counts", "seen_events", "days", "closed_days"]) this.sql.exec(`DELETE FROM ${table} WHERE day < ?`, oldest);
      // Days before it are gone: a summary of one says so rather than describe it as empty.
      this.sql.exec("INSERT INTO kept_from (id, day) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET day = max(day, excluded.day)", oldest);
      return { accepted, duplicates, newDays };
    });
  }

  /**
   * The per-user rate limiter (a sliding window per bucket: value-moving requests, activity reports,
   * KYC submissions, ...) and the velocity counter the fraud rules read: every attempt is counted, only
   * admitted ones use up the limit. With `device`, whether an admitted request's device is new for this user.
   */
  admit(bucket: string, now: number, limit: number, windowMs = 60_000, device: string | null = null): RateResult {
    return this.ctx.storage.transactionSync(() => {
      const limited = this.count(bucket, now, limit, windowMs);
      return { ...limited, newDevice: limited.allowed && this.rememberDevice(device, now) };
    });
  }

  /**
   * The window is kept as counts per slice of time (a second, or a sixtieth of a longer window), so a
   * client hammering refused requests adds to a count instead of a row: at most ~60 rows per bucket. An
   * attempt counts as if made at the end of its slice, so it leaves the window up to one slice late and
   * `Retry-After` is never early.
   */
  /**
   * Remembers an admitted request's device; true when it is new for this user. Only admitted requests'
   * devices are remembered (and so written to D1): a refused one costs D1 nothing whatever device it names.
   * The object keeps the last DEVICES_KEPT; one forgotten and seen again is written again, which D1 ignores
   * (the pair's record and its alert are once each).
   */
  private rememberDevice(device: string | null, now: number): boolean {
    if (device === null || this.sql.exec("INSERT OR IGNORE INTO devices (fingerprint, first_seen) VALUES (?, ?)", device, now).rowsWritten === 0) return false;
    this.sql.exec("DELETE FROM devices WHERE fingerprint IN (SELECT fingerprint FROM devices ORDER BY first_seen DESC LIMIT -1 OFFSET ?)", DEVICES_KEPT);
    return true;
  }

  private count(bucket: string, now: number, limit: number, windowMs: number): Omit<RateResult, "newDevice"> {
    const slice = Math.max(1000, Math.floor(windowMs / 60));
    const ends = now - (now % slice) + slice - 1;
    // The limit counts every slice that reaches into the window (never admitting early); the velocity rules
    // count only slices wholly inside it (never alerting on more than the window: at most a slice short).
    const window = this.sql
      .exec<{ attempts: number; admitted: number; oldest: number | null }>(
        "SELECT COALESCE(SUM(CASE WHEN ends - ? >= ? THEN attempts END), 0) AS attempts, COALESCE(SUM(admitted), 0) AS admitted, MIN(CASE WHEN admitted > 0 THEN ends END) AS oldest FROM rate_window WHERE bucket = ? AND ends > ?",
        slice - 1,
        now - windowMs,
        bucket,
        now - windowMs,
      )
      .one();
    const allowed = window.admitted < limit;
    const { attempts } = this.sql
      .exec<{ attempts: number }>(
        "INSERT INTO rate_window (bucket, ends, attempts, admitted) VALUES (?, ?, 1, ?) ON CONFLICT (bucket, ends) DO UPDATE SET attempts = attempts + 1, admitted = admitted + excluded.admitted RETURNING attempts",
        bucket,
        ends,
        allowed ? 1 : 0,
      )
      .one();
    // A slice's first attempt clears the slices that have left the window: once per slice, not per request.
    if (attempts === 1) this.sql.exec("DELETE FROM rate_window WHERE bucket = ? AND ends <= ?", bucket, now - windowMs);
    const retryAfterSeconds = allowed ? 0 : Math.max(1, Math.ceil(((window.oldest ?? ends) + windowMs - now) / 1000));
    return { allowed, retryAfterSeconds, attemptsInWindow: window.attempts + 1 };
  }

  /**
   * The gate of every value-moving request, in one call: the rate limit, the velocity rules on this
   * user's attempts (a finding is returned only the first time in its window, so a burst raises one
   * alert), and whether the request's device is new for this user. The Worker writes to D1 only what
   * comes back; a request refused here costs D1 nothing unless it raises an alert for the first time.
   */
  gate(req: { userId: string; now: number; limitPerMinute: number; rules: RuleConfig; device: string | null }): GateResult {
    const { now, rules: config } = req;
    return this.ctx.storage.transactionSync((): GateResult => {
      const limit = this.count("value", now, req.limitPerMinute, 60_000);
      const subject = { userId: req.userId, deviceFingerprint: req.device };
      const found = evaluateRules({ event: "value_request", attemptsLastMinute: limit.attemptsInWindow }, config, subject, now);
      // Keys of alerts raised over two hours ago are forgotten (only when something might be raised again).
      if (found.length > 0) this.sql.exec("DELETE FROM raised_alerts WHERE at < ?", now - 2 * 3_600_000);
      const findings = found.filter((f) => !f.dedupe || this.sql.exec("INSERT OR IGNORE INTO raised_alerts (key, at) VALUES (?, ?)", JSON.stringify(f.dedupe), now).rowsWritten > 0);
      return { ...limit, findings, newDevice: limit.allowed && this.rememberDevice(req.device, now) };
    });
  }

  /** Weighted rate of every active minute of a day, oldest first. */
  minuteRates(day: string, weights: Weights): MinuteRate[] {
    const rows = this.sql.exec<{ minute: number; type: string; count: number }>("SELECT minute, type, SUM(count) AS count FROM minute_counts WHERE day = ? GROUP BY minute, type ORDER BY minute", day).toArray();
    const byMinute = new Map<number, Partial<Record<ActivityType, number>>>();
    for (const r of rows) {
      const counts = byMinute.get(r.minute) ?? {};
      counts[r.type as ActivityType] = r.count;
      byMinute.set(r.minute, counts);
    }
    return [...byMinute].map(([minute, counts]) => ({ minute, rate: ratePerMinute(counts, weights) })).filter((m) => m.rate > 0);
  }

  /**
   * What the daily batch needs of a day: its signals (active minutes, weighted units, R̄, active hours,
   * rate dispersion, cadence) and units per campaign. The day is closed from this moment: later events
   * for it are refused, never silently left unpaid. A day older than what the object keeps (its retention
   * moved past it) fails: an empty summary would pay its activity as nothing.
   */
  summary(day: string, weights: Weights, opts: { minMinutes?: number } = {}): DaySummary {
    const keptFrom = this.sql.exec<{ day: string }>("SELECT day FROM kept_from").toArray()[0]?.day;
    if (keptFrom !== undefined && day < keptFrom) throw new Error(`activity of ${day} is no longer kept (this object keeps days from ${keptFrom}, ACTIVITY_RETENTION_DAYS)`);
    this.sql.exec("INSERT OR IGNORE INTO closed_days (day) VALUES (?)", day);
    const minutes = this.minuteRates(day, weights);
    const campaignUnits: Record<string, number> = {};
    const rows = this.sql.exec<{ campaign: string; type: string; count: number }>("SELECT campaign, type, SUM(count) AS count FROM minute_counts WHERE day = ? AND campaign != '' GROUP BY campaign, type", day).toArray();
    for (const r of rows) campaignUnits[r.campaign] = (campaignUnits[r.campaign] ?? 0) + ratePerMinute({ [r.type]: r.count }, weights);
    return { day, ...daySignals(minutes, opts), campaignUnits };
  }
}
