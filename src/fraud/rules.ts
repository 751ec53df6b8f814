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
  | { event: "payment_failed"; failedLastHour: number }
  | { event: "withdrawal"; grossIdr: number; medianPastGrossIdr: number | null };

interface Rule<E extends Facts["event"]> {
  id: string;
  event: E;
  severity: Severity;
  level: ActionLevel;
  params: (config: Config) => Record<string, number>;
  /** At most one alert per user and window (a burst of requests is one finding, not hundreds). */
  dedupeWindowMs?: number;
  fires: (facts: Extract<Facts, { event: E }>, params: Record<string, number>) => boolean;
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
    dedupeWindowMs: 60_000,
    fires: (f, p) => f.attemptsLastMinute > p.maxPerMinute!,
  }),
  rule({
    id: "large_gift_to_new_account",
    event: "gift",
    severity: "high",
    level: 1,
    params: (c) => ({ minCoins: c.LARGE_GIFT_COINS, maxAgeDays: c.NEW_ACCOUNT_DAYS }),
    fires: (f, p) => f.coins >= p.minCoins! && f.recipientAgeDays < p.maxAgeDays!,
  }),
  rule({
    id: "multiple_failed_payments",
    event: "payment_failed",
    severity: "high",
    level: 2,
    params: (c) => ({ minFailures: c.FAILED_PAYMENTS_PER_HOUR }),
    fires: (f, p) => f.failedLastHour >= p.minFailures!,
  }),
  rule({
    id: "unusual_withdraw_pattern",
    event: "withdrawal",
    severity: "high",
    level: 3,
    params: (c) => ({ multiplier: c.UNUSUAL_WITHDRAW_MULTIPLIER }),
    fires: (f, p) => f.medianPastGrossIdr !== null && f.medianPastGrossIdr > 0 && f.grossIdr >= p.multiplier! * f.medianPastGrossIdr,
  }),
] as const;

export interface Finding {
  ruleId: string;
  dedupeWindowMs?: number;
  severity: Severity;
  level: ActionLevel;
  params: Record<string, number>;
  facts: Facts;
}

/** Pure: which rules fire for these facts under this configuration. */
export function evaluateRules(facts: Facts, config: Config): Finding[] {
  const findings: Finding[] = [];
  for (const r of RULES) {
    if (r.event !== facts.event) continue;
    const params = r.params(config);
    if ((r.fires as (f: Facts, p: Record<string, number>) => boolean)(facts, params)) {
      findings.push({ ruleId: r.id, severity: r.severity, level: r.level, params, facts, ...("dedupeWindowMs" in r ? { dedupeWindowMs: r.dedupeWindowMs } : {}) });
    }
  }
  return findings;
}
