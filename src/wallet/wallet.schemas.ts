import { z } from "@hono/zod-openapi";
import { USER_ID_PATTERN } from "../lib/auth";
import { MAX_AMOUNT } from "../lib/money";
import { transactions } from "../db/schema";

export const AssetSchema = z.enum(["COIN", "IDR"]);
export const TxTypeSchema = z.enum(transactions.type.enumValues);
export const UserIdSchema = z.string().regex(USER_ID_PATTERN, "1–64 characters of A–Z, a–z, 0–9, _ and -");

export const TransactionSchema = z
  .object({
    id: z.string(),
    type: TxTypeSchema,
    status: z.enum(["pending", "completed", "failed", "cancelled"]),
    asset: AssetSchema,
    amount: z.number().int().openapi({ description: "Always positive; `direction` says which way it moved for the viewer." }),
    direction: z.enum(["in", "out"]),
    counterpartyId: z.string().nullable(),
    balanceBefore: z.number().int().nullable().openapi({ description: "The viewer's balance of `asset` before the transaction." }),
    balanceAfter: z.number().int().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    deviceFingerprint: z.string().nullable(),
    createdAt: z.string().openapi({ format: "date-time" }),
    completedAt: z.string().nullable().openapi({ format: "date-time" }),
  })
  .openapi("Transaction");

export const BalanceSchema = z
  .object({
    balance: z.number().int(),
    lockedBalance: z.number().int(),
    availableBalance: z.number().int(),
    idrBalance: z.number().int(),
    idrLockedBalance: z.number().int(),
    debt: z.number().int().openapi({ description: "Coins of recorded debt (a claw-back or reversal the wallet could not cover). Every later coin credit settles it first; while it is above 0 no money leaves the account (422 `debt_outstanding`)." }),
    idrDebt: z.number().int().openapi({ description: "Rupiah of recorded debt, settled first by later rupiah credits." }),
    totalDeposited: z.number().int().openapi({ description: "Coins credited by settled deposits, bonus included, less what their refunds and chargebacks took back." }),
    totalWithdrawn: z.number().int().openapi({ description: "Gross rupiah of completed withdrawals." }),
    kycStatus: z.enum(["none", "pending", "verified", "rejected"]),
  })
  .openapi("Balance");

export const positiveAmount = z.number().int().min(1).max(MAX_AMOUNT);

export const TransferBodySchema = z
  .object({
    toUserId: UserIdSchema,
    amount: positiveAmount.openapi({ description: "Whole coins, 1 to 10^12." }),
    note: z.string().max(280).optional(),
  })
  .strict()
  .openapi({ example: { toUserId: "bob", amount: 120, note: "thanks!" } })
  .openapi("TransferRequest");
