import { getTableColumns, is, sql, SQL, type InferInsertModel, type Placeholder } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import type { Db } from "./client";

type Values<T extends SQLiteTable> = { [K in keyof InferInsertModel<T>]?: InferInsertModel<T>[K] | SQL | Placeholder };

/**
 * `INSERT INTO table SELECT <values> <tail>`: a row that is written only if `tail` (e.g. `WHERE ...`
 * or `FROM ... WHERE ...`) yields one, decided by SQLite inside the batch. Values may be SQL (columns of
 * the tail's FROM). drizzle inserts a SELECT into every column in schema order, so the list is built in
 * that order here, with column defaults (encoded as the column encodes them) for what is not given.
 * A value may be a placeholder (db/template.ts): it is bound through its column's encoder.
 * (drizzle's D1 batch cannot run raw statements with parameters, so this stays a query builder.)
 */
export function insertWhere<T extends SQLiteTable>(db: Db, table: T, values: Values<T>, tail: SQL) {
  const given = values as Record<string, unknown>;
  const list = Object.entries(getTableColumns(table)).map(([key, column]) => {
    const value = key in given ? given[key] : column.hasDefault ? column.default : null;
    if (is(value, SQL)) return value;
    return value === null || value === undefined ? sql`null` : sql.param(value, column);
  });
  return db.insert(table).select(sql`select ${sql.join(list, sql`, `)} ${tail}`);
}
