import { sql, type SQL } from "drizzle-orm";
import type { Config } from "../config";
import type { Severity } from "./alerts";

/**
 * Action levels (SPEC §12): 1 log + notify admins, 2 freeze (no money out until a review clears it),
 * 3 require additional verification before money out, 4 permanent ban.
 */
export type ActionLevel = 1 | 2 | 3 | 4;

/** What a rule looks at; each event carries only the facts its rules need. */
export type Facts =
  | { event: "value_request"; attemptsLastMinute: number }
  | { event: "gift"; coins: number; recipientAgeDays: number }
  /** Failures of the last hour not already behind an earlier alert of the rule (`previousAlertAt`, its time). */
  | { event: "payment_failed"; failedLastHour: number; previousAlertAt: number | null }
  | { event: "withdrawal"; grossIdr: number; medianPastGrossIdr: number | null }
  | { event: "device_seen"; accountsOnDevice: number }
  | { event: "referral"; affiliateSharesBuyerDevice: number };

/** The thresholds the rules read (what the user's Durable Object needs to evaluate velocity rules). */
export type RuleConfig = Pick<Config, "RAPID_TRANSACTIONS_PER_MINUTE" | "LARGE_GIFT_COINS" | "NEW_ACCOUNT_DAYS" | "FAILED_PAYMENTS_PER_HOUR" | "UNUSUAL_WITHDRAW_MULTIPLIER" | "DEVICE_MAX_ACCOUNTS">;

export const ruleConfig = (c: Config): RuleConfig => ({
  RAPID_TRANSACTIONS_PER_MINUTE: c.RAPID_TRANSACTIONS_PER_MINUTE,
  LARGE_GIFT_COINS: c.LARGE_GIFT_COINS,
  NEW_ACCOUNT_DAYS: c.NEW_ACCOUNT_DAYS,
  FAILED_PAYMENTS_PER_HOUR: c.FAILED_PAYMENTS_PER_HOUR,
  UNUSUAL_WITHDRAW_MULTIPLIER: c.UNUSUAL_WITHDRAW_MULTIPLIER,
  DEVICE_MAX_ACCOUNTS: c.DEVICE_MAX_ACCOUNTS,
});

/** A fact given as a SQL expression, for rules decided inside a batch (NULL where the plain fact is null). */
export type SqlFacts<F> = { [K in Exclude<keyof F, "event">]: SQL };

/**
 * Whom a rule judges: a user (what they did), or a device (how many accounts use it). A device whitelist
 * entry exempts only from the device rules: a fingerprint is a header any client can send.
 */
export type RuleSubject = "user" | "device";

interface Rule<E extends Facts["event"]> {
  id: string;
  event: E;
  about?: RuleSubject;
  severity: Severity;
  level: ActionLevel;
  params: (config: RuleConfig) => Record<string, number>;
  /**
   * What makes two findings the same alert (e.g. user and minute: a burst of requests is one finding,
   * not hundreds). Hashed into the alert's dedupe key; without it every finding is a new alert.
   */
  dedupe?: (facts: Extract<Facts, { event: E }>, subject: { userId: string; deviceFingerprint: string | null }, now: number) => (string | number | null)[];
  fires: (facts: Extract<Facts, { event: E }>, params: Record<string, number>) => boolean;
  /**
   * The same predicate in SQL, for rules whose facts live in D1 and are decided inside the movement's
   * batch (no earlier read). A test checks both renderings agree; a NULL fact never fires.
   */
  firesSql?: (facts: SqlFacts<Extract<Facts, { event: E }>>, params: Record<string, number>) => SQL;
}

const rule = <E extends Facts["event"]>(r: Rule<E>) => r;

/** The rules as data: thresholds come from configuration and are recorded with every alert. */
export const RULES = [
  rule({
    id: "rapid_transactions",
    event: "value_request",
    severity: "medium",
    level: 1,
    params: (c) => ({ maxPerMinute: c.RAPID_TRANSACTIONS_PER_MINUTE }),
    dedupe: (_f, s, now) => [s.userId, Math.floor(now / 60_000)],
    fires: (f, p) => f.attemptsLastMinute > p.maxPerMinute!,
  }),
  rule({
    id: "large_gift_to_new_account",
    event: "gift",
    severity: "high",
    level: 1,
    params: (c) => ({ minCoins: c.LARGE_GIFT_COINS, maxAgeDays: c.NEW_ACCOUNT_DAYS }),
    fires: (f, p) => f.coins >= p.minCoins! && f.recipientAgeDays < p.maxAgeDays!,
    firesSql: (f, p) => sql`(${f.coins} >= ${p.minCoins!} and ${f.recipientAgeDays} < ${p.maxAgeDays!})`,
  }),
  rule({
    id: "multiple_failed_payments",
    event: "payment_failed",
    severity: "high",
    level: 2,
    params: (c) => ({ minFailures: c.FAILED_PAYMENTS_PER_HOUR }),
    // Failures past the threshold are one finding until it is raised; the next one needs as many new failures.
    dedupe: (f, s) => [s.userId, f.previousAlertAt ?? 0],
    fires: (f, p) => f.failedLastHour >= p.minFailures!,
    firesSql: (f, p) => sql`(${f.failedLastHour} >= ${p.minFailures!})`,
  }),
  rule({
    id: "unusual_withdraw_pattern",
    event: "withdrawal",
    severity: "high",
    level: 3,
    params: (c) => ({ multiplier: c.UNUSUAL_WITHDRAW_MULTIPLIER }),
    fires: (f, p) => f.medianPastGrossIdr !== null && f.medianPastGrossIdr > 0 && f.grossIdr >= p.multiplier! * f.medianPastGrossIdr,
    firesSql: (f, p) => sql`(${f.medianPastGrossIdr} > 0 and ${f.grossIdr} >= ${p.multiplier!} * ${f.medianPastGrossIdr})`,
  }),
  rule({
    id: "suspicious_device",
    event: "device_seen",
    about: "device",
    severity: "medium",
    level: 1,
    params: (c) => ({ maxAccounts: c.DEVICE_MAX_ACCOUNTS }),
    fires: (f, p) => f.accountsOnDevice > p.maxAccounts!,
    // Once per device and account count, however many requests see it.
    dedupe: (f, s) => [s.deviceFingerprint, f.accountsOnDevice],
    firesSql: (f, p) => sql`(${f.accountsOnDevice} > ${p.maxAccounts!})`,
  }),
  rule({
    // Self-referral: the affiliate's account was seen on the buyer's device (1) or not (0).
    id: "suspicious_device",
    event: "referral",
    about: "device",
    severity: "medium",
    level: 1,
    params: () => ({}),
    fires: (f) => f.affiliateSharesBuyerDevice > 0,
    firesSql: (f) => sql`(${f.affiliateSharesBuyerDevice} > 0)`,
  }),
] as const;

/** The rule with this id (rules are data; a typo is a programming error). */
export function ruleById<E extends Facts["event"]>(id: string, event: E): Rule<E> {
  const found = RULES.find((r) => r.id === id && r.event === event);
  if (!found) throw new Error(`no rule ${id} for ${event}`);
  // Matched on id and event just above, so it is a rule of event E.
  return found as unknown as Rule<E>;
}

export interface Finding {
  ruleId: string;
  about: RuleSubject;
  /** The parts the alert's dedupe key is hashed from (rule id included), or none. */
  dedupe?: (string | number | null)[];
  severity: Severity;
  level: ActionLevel;
  params: Record<string, number>;
  facts: Facts;
}

type AnyRule = Rule<Facts["event"]> & { fires: (f: Facts, p: Record<string, number>) => boolean; dedupe?: (f: Facts, s: Subject, now: number) => (string | number | null)[] };
type Subject = { userId: string; deviceFingerprint: string | null };

/** Pure: which rules fire for these facts under this configuration (subject and time only shape dedupe keys). */
export function evaluateRules(facts: Facts, config: RuleConfig, subject: Subject = { userId: "", deviceFingerprint: null }, now = 0): Finding[] {
  const findings: Finding[] = [];
  // RULES mixes events; each rule is only ever called with facts of its own event (checked first).
  for (const r of RULES as readonly unknown[] as readonly AnyRule[]) {
    if (r.event !== facts.event) continue;
    const params = r.params(config);
    if (r.fires(facts, params)) {
      findings.push({ ruleId: r.id, about: r.about ?? "user", severity: r.severity, level: r.level, params, facts, ...(r.dedupe ? { dedupe: [r.id, ...r.dedupe(facts, subject, now)] } : {}) });
    }
  }
  return findings;
}
