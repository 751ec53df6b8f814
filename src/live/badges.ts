import { and, desc, eq, sql } from "drizzle-orm";
import type { Config } from "../config";
import type { Db } from "../db/client";
import { badges, userStats } from "../db/schema";
import type { Statement } from "../ledger/executor";

type Stat = "giftsReceived" | "coinsEarned" | "boostsBought";
/** The counters' SQL column names (for `excluded.<column>` in the upsert). */
const COLUMN: Record<Stat, string> = { giftsReceived: "gifts_received", coinsEarned: "coins_earned", boostsBought: "boosts_bought" };
export type Badge = (typeof badges.$inferSelect)["badge"];

/** SPEC §10: each badge is earned by one counter reaching its threshold. */
const BADGES: { badge: Badge; stat: Stat; threshold: (c: Config) => number }[] = [
  { badge: "rising_star", stat: "giftsReceived", threshold: (c) => c.BADGE_RISING_STAR_GIFTS },
  { badge: "top_earner", stat: "coinsEarned", threshold: (c) => c.BADGE_TOP_EARNER_COINS },
  { badge: "super_booster", stat: "boostsBought", threshold: (c) => c.BADGE_SUPER_BOOSTER_BOOSTS },
];

/**
 * For a movement's batch: moves the user's counters, then awards each badge whose counter now reaches
 * its threshold — decided by SQLite at commit time, once per user (the primary key; a concurrent twin
 * that also crosses it inserts nothing). A negative move (a claw-back of earnings) lowers the counter,
 * never below 0, and takes back a badge whose counter it brings under the threshold: a badge stands for
 * what stands, so unlocks that are then refunded cannot farm one.
 */
export function statStatements(db: Db, config: Config, userId: string, by: Partial<Record<Stat, number>>, transactionId: string, now: number): Statement[] {
  const moved = Object.entries(by).filter(([, n]) => n !== 0 && n !== undefined) as [Stat, number][];
  if (moved.length === 0) return [];
  const values = { userId, giftsReceived: Math.max(0, by.giftsReceived ?? 0), coinsEarned: Math.max(0, by.coinsEarned ?? 0), boostsBought: Math.max(0, by.boostsBought ?? 0) };
  const set = Object.fromEntries(moved.map(([stat, n]) => [stat, sql`max(0, ${userStats[stat]} + ${n})`]));
  const out: Statement[] = [db.insert(userStats).values(values).onConflictDoUpdate({ target: userStats.userId, set })];
  for (const b of BADGES) {
    const move = moved.find(([stat]) => stat === b.stat)?.[1];
    if (move === undefined) continue;
    const reached = sql`${userStats[b.stat]} >= ${b.threshold(config)}`;
    out.push(
      move > 0
        ? db
            .insert(badges)
            .select(sql`select ${userId}, ${b.badge}, ${transactionId}, ${now} from ${userStats} where ${userStats.userId} = ${userId} and ${reached}`)
            .onConflictDoNothing()
        : db.delete(badges).where(and(eq(badges.userId, userId), eq(badges.badge, b.badge), sql`not exists (select 1 from ${userStats} where ${userStats.userId} = ${userId} and ${reached})`)),
    );
  }
  return out;
}

export async function badgesOf(db: Db, userId: string) {
  const rows = await db.select().from(badges).where(eq(badges.userId, userId)).orderBy(desc(badges.awardedAt));
  return rows.map((r) => ({ badge: r.badge, awardedAt: new Date(r.awardedAt).toISOString() }));
}
