import type { Config } from "../config";
import { bpsOf, splitAmount } from "../lib/money";

/** SPEC §10: a gift's coins split streamer / platform / payment processing; the remainder goes to the platform. */
export function giftSplit(amount: number, config: Pick<Config, "GIFT_STREAMER_BPS" | "GIFT_PLATFORM_BPS" | "GIFT_PROCESSING_BPS">) {
  return splitAmount(amount, { streamer: config.GIFT_STREAMER_BPS, platform: config.GIFT_PLATFORM_BPS, processing: config.GIFT_PROCESSING_BPS }, "platform");
}

export type BoostLevel = "basic" | "premium";

type BoostConfig = Pick<Config, "BOOST_BASIC_COINS" | "BOOST_PREMIUM_COINS" | "BOOST_BASIC_HOURS" | "BOOST_PREMIUM_HOURS" | "BOOST_DEMAND_STEP_BPS" | "BOOST_MAX_MULTIPLIER_BPS">;

/** What a boost level gives: how long the stream is featured, and whether it is on the homepage. */
export function boostTerms(level: BoostLevel, config: BoostConfig) {
  return level === "basic"
    ? { baseCoins: config.BOOST_BASIC_COINS, durationMs: config.BOOST_BASIC_HOURS * 3_600_000, homepage: false }
    : { baseCoins: config.BOOST_PREMIUM_COINS, durationMs: config.BOOST_PREMIUM_HOURS * 3_600_000, homepage: true };
}

/**
 * Demand pricing: the base price × (1 + step × active boosts of that level), the multiplier capped at
 * BOOST_MAX_MULTIPLIER_BPS, rounded down to whole coins (never below the base price).
 */
export function boostPrice(level: BoostLevel, activeBoosts: number, config: BoostConfig) {
  const { baseCoins } = boostTerms(level, config);
  const multiplierBps = Math.min(10_000 + config.BOOST_DEMAND_STEP_BPS * activeBoosts, config.BOOST_MAX_MULTIPLIER_BPS);
  return { level, activeBoosts, baseCoins, multiplierBps, price: bpsOf(baseCoins, multiplierBps) };
}
