import { z } from "zod";
import { PAYOUT_DAILY_CAP_IDR, signalDefaults, type ColumnDefaults } from "./activity/signals";
import { parseRanges } from "./lib/cidr";

/**
 * Every business parameter of the service with its default (SPEC §2). A parameter's key is the
 * name of the Worker var that overrides it. Vars arrive as strings, so numbers are coerced; a value
 * that does not parse stops the Worker with a message naming the var (see `loadConfig`).
 */
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);
const bps = (def: number) => int(def, 0, 10_000);
const bool = (def: boolean) =>
  z
    .enum(["true", "false", "1", "0"])
    .transform((v) => v === "true" || v === "1")
    .default(def);
const offset = z
  .string()
  .regex(/^[+-](0\d|1[0-4]):[0-5]\d$/, "expected an offset like +07:00")
  .default("+07:00");
const url = (def: string) => z.url().default(def);
const real = (def: number) => z.coerce.number().refine(Number.isFinite, "expected a number").default(def);
/** BOT_<COLUMN>_MU, _SIGMA, _SIGMA_MIN of one signal column. */
const columnVars = <N extends string>(name: N, d: ColumnDefaults) =>
  ({
    [`BOT_${name}_MU`]: real(d.mu),
    [`BOT_${name}_SIGMA`]: z.coerce.number().positive().default(d.sigma),
    [`BOT_${name}_SIGMA_MIN`]: z.coerce.number().positive().default(d.sigmaMin),
  }) as unknown as Record<`BOT_${N}_MU` | `BOT_${N}_SIGMA` | `BOT_${N}_SIGMA_MIN`, ReturnType<typeof real>>;

export const configSchema = z.object({
  // money basics (§3)
  COIN_VALUE_IDR: int(100, 1),
  BUSINESS_TZ_OFFSET: offset,
  MAX_TRANSFER_NOTE_LENGTH: int(280, 0, 2000),
  IDEMPOTENCY_TTL_HOURS: int(48, 24),
  MAX_BODY_BYTES: int(64 * 1024, 1024),
  /** An activity report is up to 500 events of up to about 200 bytes each (64-character ids). */
  ACTIVITY_MAX_BODY_BYTES: int(256 * 1024, 1024),
  /** A KYC submission is two photos of at most KYC_MAX_PHOTO_BYTES each plus the form. */
  KYC_MAX_BODY_BYTES: int(11 * 1024 * 1024, 1024),
  // withdrawals and payouts (§7)
  WITHDRAW_PLATFORM_FEE_BPS: bps(1000),
  WITHDRAW_PPH_BPS: bps(200),
  WITHDRAW_MIN_GROSS_IDR: int(50_000, 0),
  CREATOR_PAYOUT_FEE_BPS: bps(1000),
  WITHDRAW_RECONCILE_AFTER_MINUTES: int(30, 1),
  /** Iris keeps an X-Idempotency-Key 24 h; reconciliation repeats a create with the same key only within this window. */
  IRIS_IDEMPOTENCY_WINDOW_HOURS: int(20, 1, 23),
  /** A payout Iris accepted with no outcome (never approved, or its status never readable) this long after the request goes to a person. */
  WITHDRAW_REVIEW_AFTER_HOURS: int(48, 1),
  WITHDRAW_METHOD_COOLDOWN_HOURS: int(24, 0),
  // KYC (§5)
  KYC_MAX_PHOTO_BYTES: int(5 * 1024 * 1024, 1024),
  KYC_REJECTED_RETENTION_DAYS: int(30, 1),
  // activity and bot detection (§8)
  ACTIVITY_WEIGHT_VIEW: int(1),
  ACTIVITY_WEIGHT_LIKE: int(1),
  ACTIVITY_WEIGHT_COMMENT: int(1),
  BOT_PARAMS_MODE: z.enum(["robust", "fixed"]).default("robust"),
  BOT_K_A: z.coerce.number().positive().default(3),
  BOT_K_B: z.coerce.number().positive().default(2),
  BOT_MU: z.coerce.number().nonnegative().default(4),
  BOT_SIGMA: z.coerce.number().positive().default(2),
  /** Robust mode's σ of R̄ is never below this (accounts colluding on one R̄ cannot shrink it onto ordinary users). */
  BOT_SIGMA_MIN: z.coerce.number().positive().default(1),
  BOT_MIN_POPULATION: int(30, 1),
  /** R̄'s z counts the user's own standard error up to this many σ (activity/signals.ts); 0: SPEC §8 to the letter. */
  BOT_RBAR_SE_MAX_SIGMA: z.coerce.number().min(0).max(10).default(2),
  /** Beyond this many active minutes that allowance shrinks as √(minutes it / active minutes) (activity/signals.ts, seAllowance). */
  BOT_RBAR_SE_FULL_MINUTES: int(30, 1, 1440),
  // Volume and regularity (issue #15): k per signal, and per column the μ/σ used where robust statistics
  // cannot be (fixed mode, small population, zero MAD) and the floor of σ (see activity/signals.ts).
  BOT_VOLUME_K_A: z.coerce.number().positive().default(signalDefaults.volume.a),
  BOT_VOLUME_K_B: z.coerce.number().positive().default(signalDefaults.volume.b),
  BOT_REGULARITY_K_A: z.coerce.number().positive().default(signalDefaults.regularity.a),
  BOT_REGULARITY_K_B: z.coerce.number().positive().default(signalDefaults.regularity.b),
  BOT_REGULARITY_MIN_MINUTES: int(signalDefaults.minMinutes, 2, 1440),
  ...columnVars("ACTIVE_MINUTES", signalDefaults.columns.activeMinutes),
  ...columnVars("ACTIVE_HOURS", signalDefaults.columns.activeHours),
  ...columnVars("RATE_DISPERSION", signalDefaults.columns.rateDispersion),
  ...columnVars("CADENCE", signalDefaults.columns.cadence),
  /** Rupiah one user can earn from activity payouts in a day; the rest is recorded `capped`, never paid. */
  PAYOUT_DAILY_CAP_IDR: int(PAYOUT_DAILY_CAP_IDR, 1),
  RATE_FEE_IDR: int(5, 0),
  RATE_FEE_MAX_IDR: int(100, 1),
  ACTIVITY_MAX_CAMPAIGNS_PER_DAY: int(50, 1, 1000),
  ACTIVITY_REQUESTS_PER_MINUTE: int(60, 1),
  ACTIVITY_RETENTION_DAYS: int(7, 2, 60),
  BATCH_CHUNK_USERS: int(100, 1, 1000),
  // A run still collecting or paying this long after it (re)started, and making no progress, is resumed by housekeeping.
  BATCH_STALL_MINUTES: int(60, 15, 24 * 60),
  /** Ids one fan-out step reads and sends as work messages (then it sends the next step). */
  QUEUE_FANOUT_PAGE: int(1000, 1, 5000),
  // usage-based pricing (§8.1)
  USAGE_UNIT_PRICE_IDR: int(10, 0),
  USAGE_OVERAGE_PRICE_IDR: int(15, 0),
  USAGE_CREDIT_LIMIT_UNITS: int(1_000_000, 0),
  /** Volume discounts on the month's total units, "minUnits:bps" pairs, e.g. "100000:1000,1000000:2000". */
  USAGE_TIERS: z
    .string()
    .regex(/^(\d+:\d+)(,\d+:\d+)*$/, 'expected "minUnits:bps" pairs, e.g. 100000:1000,1000000:2000')
    .transform((text) =>
      text
        .split(",")
        .map((pair) => pair.split(":").map(Number) as [number, number])
        .map(([minUnits, discountBps]) => ({ minUnits, discountBps }))
        .sort((a, b) => a.minUnits - b.minUnits),
    )
    .refine((tiers) => tiers.every((t) => t.discountBps <= 10_000), "a discount cannot exceed 10000 bps")
    .refine((tiers) => tiers.every((t) => Number.isSafeInteger(t.minUnits)), "a tier's minUnits must be a whole number below 2^53")
    .prefault("100000:1000,1000000:2000"),
  // premium content, gifts, marketplace splits (§9–§11)
  CONTENT_CREATOR_BPS: bps(7000),
  CONTENT_PLATFORM_BPS: bps(2500),
  CONTENT_PROCESSING_BPS: bps(500),
  GIFT_STREAMER_BPS: bps(7000),
  GIFT_PLATFORM_BPS: bps(2500),
  GIFT_PROCESSING_BPS: bps(500),
  MARKETPLACE_PROCESSING_BPS: bps(300),
  MARKETPLACE_BASIC_COMMISSION_BPS: bps(1200),
  MARKETPLACE_VERIFIED_COMMISSION_BPS: bps(800),
  MARKETPLACE_PREMIUM_COMMISSION_BPS: bps(500),
  MARKETPLACE_AFFILIATE_BPS: bps(500),
  /** Sales in the last 30 days (and business verification) for the Verified Business and Premium Partner tiers. */
  MARKETPLACE_VERIFIED_MIN_SALES: int(100, 1),
  MARKETPLACE_PREMIUM_MIN_SALES: int(1000, 1),
  MARKETPLACE_ESCROW_DAYS: int(7, 0, 90),
  // boosts and badges (§10)
  BOOST_BASIC_COINS: int(100, 1),
  BOOST_PREMIUM_COINS: int(500, 1),
  BOOST_BASIC_HOURS: int(1, 1, 720),
  BOOST_PREMIUM_HOURS: int(24, 1, 720),
  /** Demand pricing: each active boost of a level adds this to the price's multiplier (1000 = +10 %)... */
  BOOST_DEMAND_STEP_BPS: int(1000, 0, 100_000),
  /** ...up to this multiplier (30000 = 3×). */
  BOOST_MAX_MULTIPLIER_BPS: int(30_000, 10_000, 1_000_000),
  BADGE_RISING_STAR_GIFTS: int(100, 1),
  BADGE_TOP_EARNER_COINS: int(10_000, 1),
  BADGE_SUPER_BOOSTER_BOOSTS: int(10, 1),
  // realtime (§13)
  REALTIME_REPLAY_EVENTS: int(500, 1, 10_000),
  REALTIME_REPLAY_HOURS: int(24, 1, 168),
  REALTIME_MAX_SOCKETS_PER_USER: int(10, 1, 100),
  /** Lobby sockets per shard before the oldest is closed; shards spread the lobby over several objects. */
  REALTIME_MAX_SOCKETS_PER_ROOM: int(5_000, 1, 32_000),
  REALTIME_LOBBY_SHARDS: int(8, 1, 256),
  REALTIME_TICKET_SECONDS: int(60, 5, 600),
  // anti-fraud (§12)
  SPEND_LIMIT_DAILY_UNVERIFIED_IDR: int(100_000, 0),
  SPEND_LIMIT_TX_UNVERIFIED_IDR: int(50_000, 0),
  SPEND_LIMIT_DAILY_VERIFIED_IDR: int(1_000_000, 0),
  SPEND_LIMIT_TX_VERIFIED_IDR: int(500_000, 0),
  DEVICE_MAX_ACCOUNTS: int(3, 1),
  RAPID_TRANSACTIONS_PER_MINUTE: int(10, 1),
  LARGE_GIFT_COINS: int(1000, 1),
  NEW_ACCOUNT_DAYS: int(7, 0),
  FAILED_PAYMENTS_PER_HOUR: int(5, 1),
  UNUSUAL_WITHDRAW_MULTIPLIER: int(10, 1),
  RATE_LIMIT_PER_MINUTE: int(10, 1),
  KYC_SUBMITS_PER_HOUR: int(5, 1),
  CAMPAIGNS_PER_HOUR: int(20, 1),
  WITHDRAW_METHOD_CHANGES_PER_DAY: int(5, 1),
  // gateways (§6)
  MIDTRANS_IS_PRODUCTION: bool(false),
  MIDTRANS_VERIFY_STATUS: bool(true),
  // CIDR ranges (comma-separated); empty: any source. A bad entry stops the Worker rather than locking every notification out.
  MIDTRANS_ALLOWED_IPS: z.string().default("").refine((list) => parseRanges(list) !== null, "expected comma-separated IPv4/IPv6 addresses or CIDR ranges"),
  GATEWAY_TIMEOUT_MS: int(10_000, 100, 60_000),
  CAMPAIGN_MIN_DEPOSIT_IDR: int(10_000, 1),
  MIDTRANS_SNAP_BASE_URL: url("https://app.sandbox.midtrans.com/snap/v1"),
  MIDTRANS_API_BASE_URL: url("https://api.sandbox.midtrans.com"),
  MIDTRANS_IRIS_BASE_URL: url("https://app.sandbox.midtrans.com/iris/api/v1"),
  XENDIT_API_BASE_URL: url("https://api.xendit.co"),
  // observability: adds a Server-Timing header with D1 round trips and rows (benchmarks only)
  D1_METRICS: bool(false),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid configuration: ${issues.join("; ")}`);
    this.name = "ConfigError";
  }
}

/** Reads every parameter from the Worker's vars; throws ConfigError naming each bad var. */
export function loadConfig(vars: object): Config {
  const source = vars as Record<string, unknown>;
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = source[key];
    if (value !== undefined && value !== "") picked[key] = value;
  }
  const parsed = configSchema.safeParse(picked);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
  }
  const config = parsed.data;
  const splits: [string, number][] = [
    ["CONTENT_*_BPS", config.CONTENT_CREATOR_BPS + config.CONTENT_PLATFORM_BPS + config.CONTENT_PROCESSING_BPS],
    ["GIFT_*_BPS", config.GIFT_STREAMER_BPS + config.GIFT_PLATFORM_BPS + config.GIFT_PROCESSING_BPS],
    ["MARKETPLACE_*_BPS", config.MARKETPLACE_PROCESSING_BPS + config.MARKETPLACE_AFFILIATE_BPS + Math.max(config.MARKETPLACE_BASIC_COMMISSION_BPS, config.MARKETPLACE_VERIFIED_COMMISSION_BPS, config.MARKETPLACE_PREMIUM_COMMISSION_BPS)],
    ["WITHDRAW_*_BPS", config.WITHDRAW_PLATFORM_FEE_BPS + config.WITHDRAW_PPH_BPS],
  ];
  const over = splits.filter(([, sum]) => sum > 10_000).map(([name]) => `${name}: shares add up to more than 10000 bps`);
  if (config.BOT_K_B > config.BOT_K_A) over.push("BOT_K_B: must not exceed BOT_K_A");
  if (config.BOT_VOLUME_K_B > config.BOT_VOLUME_K_A) over.push("BOT_VOLUME_K_B: must not exceed BOT_VOLUME_K_A");
  if (config.BOT_REGULARITY_K_B > config.BOT_REGULARITY_K_A) over.push("BOT_REGULARITY_K_B: must not exceed BOT_REGULARITY_K_A");
  if (over.length > 0) throw new ConfigError(over);
  return config;
}
