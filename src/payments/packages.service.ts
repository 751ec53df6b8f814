import { and, asc, eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { coinPackages, type CoinPackageRow } from "../db/schema";
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

export async function createPackage(db: Db, input: Omit<CoinPackageRow, "id" | "createdAt" | "updatedAt">) {
  const now = Date.now();
  const [row] = await db
    .insert(coinPackages)
    .values({ ...input, id: `pkg_${newId(now).toLowerCase()}`, createdAt: now, updatedAt: now })
    .returning()
    .catch(uniqueOrder);
  return packageView(row!);
}

export async function updatePackage(db: Db, id: string, patch: Partial<Omit<CoinPackageRow, "id" | "createdAt" | "updatedAt">>) {
  const [row] = await db.update(coinPackages).set({ ...patch, updatedAt: Date.now() }).where(eq(coinPackages.id, id)).returning().catch(uniqueOrder);
  if (!row) throw new ApiError("not_found", "No coin package with that id.");
  return packageView(row);
}

/** Orders copy a package's coins and price, so deleting a package never changes a past order. */
export async function deletePackage(db: Db, id: string) {
  const [row] = await db.delete(coinPackages).where(eq(coinPackages.id, id)).returning();
  if (!row) throw new ApiError("not_found", "No coin package with that id.");
}
