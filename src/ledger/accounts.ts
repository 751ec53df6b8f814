import { sql, type SQL, type SQLWrapper } from "drizzle-orm";
import { accounts } from "../db/schema";
import type { Asset } from "../lib/money";

/** Account ids are derived, so no lookup is needed to address a wallet inside a batch. */
export const userAccountId = (userId: string, asset: Asset) => `usr:${userId}:${asset}`;

/** A user's recorded debt (may go negative): what a reversal could not take from the wallet. */
export const userDebtAccountId = (userId: string, asset: Asset) => `debt:${userId}:${asset}`;

/** An advertiser campaign's rupiah budget. */
export const campaignAccountId = (campaignId: string) => `cmp:${campaignId}:IDR`;

export type SystemAccount =
  | "issuance"
  | "gateway_clearing"
  | "payout_clearing"
  | "adjustments"
  | "platform_revenue"
  | "processing_fees"
  | "tax_payable"
  | "boost_revenue"
  | "marketplace_escrow";

/** System accounts are seeded by migration 0001 for both assets (marketplace escrow, COIN only, by 0013). */
export const systemAccountId = (name: SystemAccount, asset: Asset) => `sys:${name}:${asset}`;

/** An account's balance as SQL, read by SQLite where the statement runs (after earlier statements of the batch). */
export const balanceOf = (accountId: string | SQLWrapper): SQL => sql`(select ${accounts.balance} from ${accounts} where ${accounts.id} = ${accountId})`;
