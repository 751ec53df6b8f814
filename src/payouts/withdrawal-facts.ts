import { sql, type SQL } from "drizzle-orm";
import { withdrawals } from "../db/schema";

/**
 * The median gross of a user's completed withdrawals, as a SQL expression (NULL without any), so the
 * unusual-withdrawal rule is decided inside the withdrawal's own batch. With an even count it is the
 * mean of the two middle values, as `median()` in bot-rules.ts computes it.
 */
export function medianCompletedGrossSql(userId: string): SQL {
  const completed = sql`${withdrawals.userId} = ${userId} and ${withdrawals.status} = 'completed'`;
  const n = sql`(select count(*) from ${withdrawals} where ${completed})`;
  return sql`(select avg(g) from (select ${withdrawals.grossIdr} as g from ${withdrawals} where ${completed} order by ${withdrawals.grossIdr} limit 2 - ${n} % 2 offset (${n} - 1) / 2))`;
}
