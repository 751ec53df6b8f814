import { DurableObject } from "cloudflare:workers";
import { meanRate, ratePerMinute, type ActivityType, type Weights } from "../activity/bot-rules";
import { addDays, businessDay } from "../lib/time";

export interface ActivityEvent {
  id?: string;
  type: ActivityType;
  campaignId?: string;
  at: number;
  count: number;
}

export interface DaySummary {
  day: string;
  activeMinutes: number;
  weightedUnits: number;
  rbar: number;
  campaignUnits: Record<string, number>;
}

export interface MinuteRate {
  minute: number;
  rate: number;
}

/**
 * One per user (named by user id): per-minute counts per activity type and campaign for the recent
 * business days, event-id dedupe, and nothing older than ACTIVITY_RETENTION_DAYS. SQLite-backed, RPC only.
 */
export class UserActivity extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS minute_counts (
        day TEXT NOT NULL, minute INTEGER NOT NULL, type TEXT NOT NULL, campaign TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (day, minute, type, campaign));
      CREATE TABLE IF NOT EXISTS seen_events (id TEXT PRIMARY KEY, day TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS days (day TEXT PRIMARY KEY);
      CREATE TABLE IF NOT EXISTS attempts (at INTEGER NOT NULL, allowed INTEGER NOT NULL);`);
  }

  /** Adds events; returns how many were new, how many were repeats, and which business days are new for this user. */
  record(events: ActivityEvent[], opts: { tzOffset: string; retentionDays: number; now: number }): { accepted: number; duplicates: number; newDays: string[] } {
    let accepted = 0;
    let duplicates = 0;
    const newDays: string[] = [];
    this.ctx.storage.transactionSync(() => {
      for (const e of events) {
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
      for (const table of ["minute_counts", "seen_events", "days"]) this.sql.exec(`DELETE FROM ${table} WHERE day < ?`, oldest);
    });
    return { accepted, duplicates, newDays };
  }

  /**
   * The per-user rate limiter (sliding 60-second window) and the velocity counter the fraud rules
   * read: every attempt is counted, only admitted ones use up the limit.
   */
  admit(now: number, limitPerMinute: number): { allowed: boolean; retryAfterSeconds: number; attemptsLastMinute: number } {
    const since = now - 60_000;
    this.sql.exec("DELETE FROM attempts WHERE at <= ?", since);
    const admitted = this.sql.exec<{ n: number; oldest: number | null }>("SELECT COUNT(*) AS n, MIN(at) AS oldest FROM attempts WHERE allowed = 1").one();
    const allowed = admitted.n < limitPerMinute;
    this.sql.exec("INSERT INTO attempts (at, allowed) VALUES (?, ?)", now, allowed ? 1 : 0);
    const attempts = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM attempts").one().n;
    const retryAfterSeconds = allowed ? 0 : Math.max(1, Math.ceil(((admitted.oldest ?? now) + 60_000 - now) / 1000));
    return { allowed, retryAfterSeconds, attemptsLastMinute: attempts };
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

  /** What the daily batch needs of a day: active minutes, weighted units, R̄ and units per campaign. */
  summary(day: string, weights: Weights): DaySummary {
    const minutes = this.minuteRates(day, weights);
    const weightedUnits = minutes.reduce((sum, m) => sum + m.rate, 0);
    const campaignUnits: Record<string, number> = {};
    const rows = this.sql.exec<{ campaign: string; type: string; count: number }>("SELECT campaign, type, SUM(count) AS count FROM minute_counts WHERE day = ? AND campaign != '' GROUP BY campaign, type", day).toArray();
    for (const r of rows) campaignUnits[r.campaign] = (campaignUnits[r.campaign] ?? 0) + ratePerMinute({ [r.type]: r.count }, weights);
    return { day, activeMinutes: minutes.length, weightedUnits, rbar: meanRate(minutes.map((m) => m.rate)), campaignUnits };
  }
}
