import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";
import { pageLimit } from "./query";

export const paginationQuery = {
  limit: pageLimit(20),
  cursor: z.string().max(200).optional().openapi({ description: "The `nextCursor` of the previous page." }),
};

export const pageSchema = <T extends z.ZodTypeAny>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

/** Cursors are opaque to clients: base64url of the last item's sortable id. */
export function encodeCursor(id: string): string {
  return btoa(id).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** A ULID, or one followed by "S<n>" (a debt settlement sorts right after the transaction that caused it). */
const ULID_CURSOR = /^[0-9A-Z]{26}(S\d{1,2})?$/;

/** The id a cursor stands for, if it is one this API issued: `pattern` is what such ids look like (ULIDs by default). */
export function decodeCursor(cursor: string | undefined, pattern: RegExp = ULID_CURSOR): string | undefined {
  if (cursor === undefined) return undefined;
  try {
    const id = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    if (pattern.test(id)) return id;
  } catch {
    // fall through to the error below
  }
  throw new ApiError("validation_failed", "The cursor is not one this API issued.", { errors: [{ path: "query.cursor", message: "invalid cursor" }] });
}

/** Newest first by id; fetch `limit + 1` rows and pass them here to cut the page and its cursor. */
export function toPage<T extends { id: string }, V>(rows: T[], limit: number, view: (row: T) => V) {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { items: page.map(view), nextCursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}
