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

/** A package's fields as an admin may set them (no defaults: an update changes only what it names). */
const packageFields = {
  coins: whole(100_000_000).min(1),
  price: whole(1_000_000_000).min(1),
  bonusCoins: whole(100_000_000),
  currency: z.literal("IDR"),
  isActive: z.boolean(),
  displayOrder: whole(10_000),
  badge: z.string().trim().min(1).max(40).nullable(),
};

export const PackageCreateSchema = z
  .object({
    ...packageFields,
    bonusCoins: packageFields.bonusCoins.default(0),
    currency: packageFields.currency.default("IDR"),
    isActive: packageFields.isActive.default(true),
    badge: packageFields.badge.default(null),
  })
  .strict()
  .openapi("CoinPackageCreate", { example: { coins: 2000, price: 160000, bonusCoins: 300, displayOrder: 5, badge: "new" } });

// Not `PackageCreateSchema.partial()`: zod still applies a field's default inside `.partial()`, so an update
// naming only the price would have reset the bonus, the badge and an inactive package's state.
export const PackageUpdateSchema = z
  .object(packageFields)
  .partial()
  .strict()
  .refine((b) => Object.keys(b).length > 0, "at least one field to change")
  .openapi("CoinPackageUpdate", { example: { price: 150000, isActive: false } });
