import type { Asset } from "../lib/money";

/** Account ids are derived, so no lookup is needed to address a wallet inside a batch. */
export const userAccountId = (userId: string, asset: Asset) => `usr:${userId}:${asset}`;

export type SystemAccount =
  | "issuance"
  | "gateway_clearing"
  | "payout_clearing"
  | "adjustments"
  | "platform_revenue"
  | "processing_fees"
  | "tax_payable"
  | "boost_revenue";

/** System accounts are seeded by migration 0001 for both assets. */
export const systemAccountId = (name: SystemAccount, asset: Asset) => `sys:${name}:${asset}`;
