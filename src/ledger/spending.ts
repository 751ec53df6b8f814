import type { Config } from "../config";
import type { Db } from "../db/client";
import { spendLimits } from "../fraud/limits";
import { businessDay } from "../lib/time";
import { callerMayMoveOut, firstSight } from "../users/users.guards";
import { transactionView, type TransactionView } from "../wallet/wallet.view";
import { userAccountId } from "./accounts";
import { applyPlan, type IdempotencyWrite, type Statement } from "./executor";
import type { Guard } from "./guards";
import { entryPlan, previewRow, type AuditEntry, type LedgerPlan, type Posting } from "./plan";

/**
 * A user spending coins on something (an unlock, a gift, a boost, a marketplace order): the one shape
 * every such movement has. The buyer's wallet gives `amount`; `credits` say where it goes (they sum to
 * it); the spend counts against the buyer's limits (rupiah value); the buyer must be allowed to move
 * money out (not banned, frozen, awaiting verification or in debt), decided inside the batch.
 */
export interface Spending {
  txId: string;
  buyerId: string;
  type: "purchase" | "gift" | "boost";
  amount: number;
  counterpartyId: string | null;
  metadata: Record<string, unknown>;
  credits: Posting[];
  audit: Omit<AuditEntry, "actorId">;
  deviceFingerprint: string | null;
  onceKeys?: string[];
}

export function spendingPlan(config: Config, s: Spending, now: number): LedgerPlan {
  const wallet = userAccountId(s.buyerId, "COIN");
  return entryPlan({
    tx: { id: s.txId, type: s.type, asset: "COIN", amount: s.amount, userId: s.buyerId, counterpartyId: s.counterpartyId, metadata: s.metadata, deviceFingerprint: s.deviceFingerprint },
    postings: [{ accountId: wallet, asset: "COIN", amount: -s.amount }, ...s.credits],
    sideAccountId: wallet,
    audit: { actorId: s.buyerId, ...s.audit },
    onceKeys: s.onceKeys,
    spend: { userId: s.buyerId, amountIdr: s.amount * config.COIN_VALUE_IDR, day: businessDay(now, config.BUSINESS_TZ_OFFSET), limits: spendLimits(config) },
    now,
  });
}

export interface SpendingContext<B> {
  buyerId: string;
  /** The response body around the transaction's view; `balancesAt` is where that view sits in it (JSON path). */
  body: (tx: TransactionView) => B;
  balancesAt: string;
  record?: (o: { status: 201; body: B }) => IdempotencyWrite | undefined;
  /** Statements that must precede the movement (e.g. a row whose unique index refuses a repeat). */
  before?: Statement[];
  guards?: Guard[];
  alongside?: Statement[];
}

/** Applies a spending plan as ONE batch: first sight of the buyer, their standing, the feature's guards and rows. */
export async function applySpending<B>(db: Db, plan: LedgerPlan, ctx: SpendingContext<B>): Promise<{ status: 201; body: B }> {
  // The buyer initiated it: the view is the outgoing side with the balances the transaction row records.
  const record = ctx.record?.({ status: 201, body: ctx.body(transactionView(previewRow(plan), ctx.buyerId)) });
  const row = await applyPlan(db, plan, {
    before: [firstSight(db, ctx.buyerId, plan.now), ...(ctx.before ?? [])],
    guards: [...callerMayMoveOut(ctx.buyerId), ...(ctx.guards ?? [])],
    alongside: ctx.alongside,
    idempotency: record && { ...record, balancesAt: ctx.balancesAt },
  });
  return { status: 201, body: ctx.body(transactionView(row, ctx.buyerId)) };
}
