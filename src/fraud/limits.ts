import type { Config } from "../config";
import type { Spend } from "../ledger/plan";

/**
 * SPEC §12: KYC-verified users may spend more, per transaction and per business day (rupiah value of
 * coins). Both tiers travel with the spend; the batch picks the spender's.
 */
export function spendLimits(config: Config): Spend["limits"] {
  return {
    verified: { perTxIdr: config.SPEND_LIMIT_TX_VERIFIED_IDR, dailyIdr: config.SPEND_LIMIT_DAILY_VERIFIED_IDR },
    unverified: { perTxIdr: config.SPEND_LIMIT_TX_UNVERIFIED_IDR, dailyIdr: config.SPEND_LIMIT_DAILY_UNVERIFIED_IDR },
  };
}
