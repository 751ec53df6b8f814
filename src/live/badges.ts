import { desc, eq, sql } from "drizzle-orm";
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
 * that also crosses it inserts nothing).
 */
export function statStatements(db: Db, config: Config, userId: string, by: Partial<Record<Stat, number>>, transactionId: string, now: number): Statement[] {
  const moved = Object.entries(by).filter(([, n]) => n !== 0 && n !== undefined) as [Stat, number][];
  if (moved.length === 0) return [];
  const values = { userId, giftsReceived: by.giftsReceived ?? 0, coinsEarned: by.coinsEarned ?? 0, boostsBought: by.boostsBought ?? 0 };
  const set = Object.fromEntries(moved.map(([stat]) => [stat, sql`${userStats[stat]} + excluded.${sql.identifier(COLUMN[stat])}`]));
  const out: Statement[] = [db.insert(userStats).values(values).onConflictDoUpdate({ target: userStats.userId, set })];
  for (const b of BADGES.filter((b) => moved.some(([stat]) => stat === b.stat))) {
    out.push(
      db
        .insert(badges)
        .select(
          sql`select ${userId}, ${b.badge}, ${transactionId}, ${now} from ${userStats} where ${userStats.userId} = ${userId} and ${userStats[b.stat]} >= ${b.threshold(config)}`,
        )
        .onConflictDoNothing(),
    );
  }
  return out;
}

export async function badgesOf(db: Db, userId: string) {
  const rows = await db.select().from(badges).where(eq(badges.userId, userId)).orderBy(desc(badges.awardedAt));
  return rows.map((r) => ({ badge: r.badge, awardedAt: new Date(r.awardedAt).toISOString() }));
}
