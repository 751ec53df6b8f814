import { z } from "@hono/zod-openapi";

/** A whole number in a query string, decimal digits only: z.coerce would take "", " 5", "5.0", "1e1" or "0x10". */
export const wholeQuery = (min: number, max: number, description: string) =>
  z
    .string()
    .regex(/^\d{1,16}$/, "a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `at least ${min}`).max(max, `at most ${max}`))
    // Described as what it means (query strings are text either way); digits only, as the regex says.
    .openapi({ type: "integer", minimum: min, maximum: max, description });

/** A page size, 1–100. */
export const pageLimit = (byDefault: number) => wholeQuery(1, 100, `Page size, 1–100 (default ${byDefault}).`).default(byDefault).openapi({ default: byDefault });
