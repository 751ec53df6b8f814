import { and, count, eq, sql, type SQLWrapper } from "drizzle-orm";
import type { Db } from "../db/client";
import { contentPurchases } from "../db/schema";
import { ApiError } from "../lib/errors";
import { findContent } from "./content.service";

/**
 * An item's revenue as the ledger holds it after refunds, from the split frozen on each purchase: a full
 * refund took back every share, an admin removal only the creator's. Its creator sees their own sales of
 * it (the creator is frozen on each purchase): after a reassignment, not what the previous creator earned.
 */
export async function contentRevenue(db: Db, id: string, callerId: string) {
  const item = await findContent(db, id);
  if (!item) throw new ApiError("not_found", "No content with that id.");
  if (item.creatorId !== callerId) throw new ApiError("forbidden", "Only the content's creator sees its revenue.");
  const p = contentPurchases;
  // Platform and processing keep their shares unless a full refund took them back.
  const kept = (share: SQLWrapper) => sql<number>`coalesce(sum(case when ${p.refundKind} is 'full' then 0 else ${share} end), 0)`;
  const [row] = await db
    .select({
      purchases: count(),
      creator: sql<number>`coalesce(sum(case when ${p.refundedAt} is null then ${p.creatorShare} else 0 end), 0)`,
      platform: kept(p.platformShare),
      processing: kept(p.processingShare),
      refunds: sql<number>`count(${p.refundedAt})`,
      refunded: sql<number>`coalesce(sum(${p.refundAmount}), 0)`,
    })
    .from(p)
    .where(and(eq(p.contentId, id), eq(p.creatorId, callerId)));
  const r = row ?? { purchases: 0, creator: 0, platform: 0, processing: 0, refunds: 0, refunded: 0 };
  return {
    purchaseCount: r.purchases,
    revenue: { total: r.creator + r.platform + r.processing, creator: r.creator, platform: r.platform, processing: r.processing },
    refunds: { count: r.refunds, total: r.refunded },
  };
}
