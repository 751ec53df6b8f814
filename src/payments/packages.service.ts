import { and, asc, eq, sql, type SQL } from "drizzle-orm";
import type { Db } from "../db/client";
import { insertWhere } from "../db/insert-where";
import { auditLog, coinPackages, type CoinPackageRow } from "../db/schema";
import { ApiError } from "../lib/errors";
import { newId } from "../lib/ids";

export const packageView = (p: CoinPackageRow) => ({
  id: p.id,
  coins: p.coins,
  price: p.price,
  bonusCoins: p.bonusCoins,
  currency: p.currency,
  isActive: p.isActive,
  displayOrder: p.displayOrder,
  badge: p.badge,
});

export async function listPackages(db: Db, onlyActive: boolean) {
  const rows = await db.select().from(coinPackages).where(onlyActive ? eq(coinPackages.isActive, true) : undefined).orderBy(asc(coinPackages.displayOrder));
  return rows.map(packageView);
}

export async function activePackage(db: Db, id: string): Promise<CoinPackageRow> {
  const row = await db.query.coinPackages.findFirst({ where: and(eq(coinPackages.id, id), eq(coinPackages.isActive, true)) });
  if (!row) throw new ApiError("not_found", "No active coin package with that id.");
  return row;
}

function uniqueOrder(error: unknown): never {
  const message = error instanceof Error ? `${error.message} ${String(error.cause ?? "")}` : String(error);
  if (message.includes("coin_packages.display_order")) throw new ApiError("conflict", "Another package already has that displayOrder.");
  throw error;
}

/** The audit entry of a catalogue change, inserted only when `happened` holds after the change (in its batch). */
const audited = (db: Db, adminId: string, action: "created" | "updated" | "deleted", id: string, details: Record<string, unknown>, now: number, happened: SQL) =>
  insertWhere(db, auditLog, { actorId: adminId, action: `coin_package.${action}`, subjectType: "coin_package", subjectId: id, details, createdAt: now }, sql`where ${happened}`);

const exists = (id: string) => sql`exists (select 1 from ${coinPackages} where ${coinPackages.id} = ${id})`;

export async function createPackage(db: Db, adminId: string, input: Omit<CoinPackageRow, "id" | "createdAt" | "updatedAt">) {
  const now = Date.now();
  const id = `pkg_${newId(now).toLowerCase()}`;
  const [[row]] = await db
    .batch([db.insert(coinPackages).values({ ...input, id, createdAt: now, updatedAt: now }).returning(), audited(db, adminId, "created", id, input, now, exists(id))])
    .catch(uniqueOrder);
  return packageView(row!);
}

export async function updatePackage(db: Db, adminId: string, id: string, patch: Partial<Omit<CoinPackageRow, "id" | "createdAt" | "updatedAt">>) {
  const now = Date.now();
  const [[row]] = await db
    .batch([db.update(coinPackages).set({ ...patch, updatedAt: now }).where(eq(coinPackages.id, id)).returning(), audited(db, adminId, "updated", id, patch, now, exists(id))])
    .catch(uniqueOrder);
  if (!row) throw new ApiError("not_found", "No coin package with that id.");
  return packageView(row);
}

/** Orders copy a package's coins and price, so deleting a package never changes a past order. */
export async function deletePackage(db: Db, adminId: string, id: string) {
  const now = Date.now();
  const before = await db.query.coinPackages.findFirst({ where: eq(coinPackages.id, id) });
  if (!before) throw new ApiError("not_found", "No coin package with that id.");
  const [deleted] = await db.batch([
    db.delete(coinPackages).where(eq(coinPackages.id, id)).returning(),
    // changes(): the rows the DELETE just before it removed (0 when a concurrent delete won).
    audited(db, adminId, "deleted", id, packageView(before), now, sql`changes() > 0`),
  ]);
  if (deleted.length === 0) throw new ApiError("not_found", "No coin package with that id.");
}
