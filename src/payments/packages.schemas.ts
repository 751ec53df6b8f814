import { z } from "@hono/zod-openapi";

const whole = (max: number) => z.number().int().min(0).max(max);

export const PackageSchema = z
  .object({
    id: z.string(),
    coins: z.number().int(),
    price: z.number().int().openapi({ description: "Rupiah" }),
    bonusCoins: z.number().int(),
    currency: z.literal("IDR"),
    isActive: z.boolean(),
    displayOrder: z.number().int(),
    badge: z.string().nullable(),
  })
  .openapi("CoinPackage");

export const PackageCreateSchema = z
  .object({
    coins: whole(100_000_000).min(1),
    price: whole(1_000_000_000).min(1),
    bonusCoins: whole(100_000_000).default(0),
    currency: z.literal("IDR").default("IDR"),
    isActive: z.boolean().default(true),
    displayOrder: whole(10_000),
    badge: z.string().trim().min(1).max(40).nullable().default(null),
  })
  .strict()
  .openapi("CoinPackageCreate", { example: { coins: 2000, price: 160000, bonusCoins: 300, displayOrder: 5, badge: "new" } });

export const PackageUpdateSchema = PackageCreateSchema.partial().strict().openapi("CoinPackageUpdate", { example: { price: 150000, isActive: false } });
