import type { Config } from "../config";
import { eq, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { contentRefundRuns } from "../db/schema";
import { livePurchases, refundChunk } from "../content/content.service";
import type { FanoutSource } from "./fanout";

/** A chunk of a content item's refund run: at most 50 purchases, each refunded in its own batch. */
export type ContentRefundMessage = { kind: "content_refund"; contentId: string; purchaseIds: string[] };

/**
 * The item's unrefunded purchases, fanned out in bounded chunks, so any number of buyers is refunded
 * without one invocation doing unbounded work. Resuming a run simply fans out what is still unrefunded;
 * a purchase is refunded at most once.
 */
export const contentRefundSource: FanoutSource<ContentRefundMessage> = {
  chunk: () => 50,
  page: async (db, contentId, after, limit) => (await livePurchases(db, contentId, after, limit)).map((p) => p.id),
  message: (contentId, purchaseIds) => ({ kind: "content_refund", contentId, purchaseIds }),
  sent: async (db, contentId, messages) => {
    await db.update(contentRefundRuns).set({ queueMessages: sql`${contentRefundRuns.queueMessages} + ${messages}` }).where(eq(contentRefundRuns.contentId, contentId));
  },
};

export async function handleContentRefundMessage(db: Db, config: Config, message: ContentRefundMessage, now: number): Promise<void> {
  await refundChunk(db, config, message.contentId, message.purchaseIds, now);
}
