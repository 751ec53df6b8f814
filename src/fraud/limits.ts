import type { Config } from "../config";

export interface SpendLimits {
  perTxIdr: number;
  dailyIdr: number;
}

/** SPEC §12: KYC-verified users may spend more, per transaction and per business day (rupiah value of coins). */
export function spendLimits(kycStatus: string, config: Config): SpendLimits {
  return kycStatus === "verified"
    ? { perTxIdr: config.SPEND_LIMIT_TX_VERIFIED_IDR, dailyIdr: config.SPEND_LIMIT_DAILY_VERIFIED_IDR }
    : { perTxIdr: config.SPEND_LIMIT_TX_UNVERIFIED_IDR, dailyIdr: config.SPEND_LIMIT_DAILY_UNVERIFIED_IDR };
}
