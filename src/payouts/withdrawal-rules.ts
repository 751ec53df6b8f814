import { systemAccountId } from "../ledger/accounts";
import type { Posting } from "../ledger/plan";
import { bpsOf, type Asset } from "../lib/money";

export interface WithdrawalBreakdown {
  grossIdr: number;
  platformFeeIdr: number;
  taxIdr: number;
  netIdr: number;
}

/**
 * SPEC §7: coins convert at COIN_VALUE_IDR; from the gross G the platform fee and the PPh tax are
 * each floor(G × bps / 10000); the user receives the rest. 1,000 coins → 100,000 / 10,000 / 2,000 / 88,000.
 */
export function withdrawalBreakdown(asset: Asset, amount: number, rates: { coinValueIdr: number; feeBps: number; taxBps: number }): WithdrawalBreakdown {
  const grossIdr = asset === "COIN" ? amount * rates.coinValueIdr : amount;
  const platformFeeIdr = bpsOf(grossIdr, rates.feeBps);
  const taxIdr = bpsOf(grossIdr, rates.taxBps);
  return { grossIdr, platformFeeIdr, taxIdr, netIdr: grossIdr - platformFeeIdr - taxIdr };
}

/**
 * Where a completed withdrawal's held amount goes: fee to platform revenue, tax to tax payable, net to
 * payout clearing (the bank transfer in flight). Coins are retired to issuance and the rupiah they
 * stood for leaves the issuance account, so every asset still sums to zero.
 */
export function withdrawalCredits(asset: Asset, amount: number, b: WithdrawalBreakdown): Posting[] {
  const rupiah: Posting[] = [
    { accountId: systemAccountId("platform_revenue", "IDR"), asset: "IDR", amount: b.platformFeeIdr },
    { accountId: systemAccountId("tax_payable", "IDR"), asset: "IDR", amount: b.taxIdr },
    { accountId: systemAccountId("payout_clearing", "IDR"), asset: "IDR", amount: b.netIdr },
  ];
  if (asset === "IDR") return rupiah;
  return [
    { accountId: systemAccountId("issuance", "COIN"), asset: "COIN", amount },
    { accountId: systemAccountId("issuance", "IDR"), asset: "IDR", amount: -b.grossIdr },
    ...rupiah,
  ];
}
