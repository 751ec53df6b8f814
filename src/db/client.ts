import { createTableRelationsHelpers, extractTablesRelationalConfig, type ExtractTablesWithRelations, type RelationalSchemaConfig } from "drizzle-orm";
import { DrizzleD1Database, SQLiteD1Session } from "drizzle-orm/d1";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import { collect, type Outbox } from "../realtime/outbox";
import { schema } from "./schema";

type Tables = ExtractTablesWithRelations<typeof schema>;
export type Db = DrizzleD1Database<typeof schema> & { $client: D1Database };

/**
 * What `drizzle(d1, { schema, casing })` would rebuild on every call, built once per isolate: the
 * dialect (its cache of snake_case column names warms up) and the relational view of the schema. Both
 * are read-only after construction; each request gets its own session over its own binding.
 */
export const dialect = new SQLiteAsyncDialect({ casing: "snake_case" });
let relational: RelationalSchemaConfig<Tables> | undefined;
function relationalSchema(): RelationalSchemaConfig<Tables> {
  if (!relational) {
    const tables = extractTablesRelationalConfig(schema, createTableRelationsHelpers);
    relational = { fullSchema: schema, schema: tables.tables as Tables, tableNamesMap: tables.tableNamesMap };
  }
  return relational;
}

/**
 * The drizzle instance of one request (or queue message, or cron run). With an `outbox`, every batch
 * that commits hands the events its announcing statements produce to it (see realtime/outbox.ts).
 */
export function createDb(d1: D1Database, opts: { outbox?: Outbox } = {}): Db {
  const config = relationalSchema();
  const session = new SQLiteD1Session<typeof schema, Tables>(d1, dialect, config, {});
  // Built without the schema, so drizzle does not construct a relational query builder per table for
  // every request: `db.query` is built on first use (most requests never use it), over the same session.
  const db = new DrizzleD1Database<typeof schema>("async", dialect, session, undefined) as Db;
  Object.assign(db._, { schema: config.schema, fullSchema: config.fullSchema, tableNamesMap: config.tableNamesMap });
  Object.defineProperty(db, "query", {
    configurable: true,
    get() {
      const query = new DrizzleD1Database<typeof schema>("async", dialect, session, config).query;
      Object.defineProperty(db, "query", { value: query });
      return query;
    },
  });
  db.$client = d1;
  const { outbox } = opts;
  if (outbox) {
    const batch = db.batch.bind(db);
    db.batch = (async (statements: Parameters<typeof batch>[0]) => {
      const results = await batch(statements);
      collect(outbox, statements, results);
      return results;
    }) as unknown as typeof db.batch;
  }
  return db;
}

export interface D1Stats {
  roundTrips: number;
  /** SQL statements sent (a batch of five counts five). */
  statements: number;
  rowsRead: number;
  rowsWritten: number;
}

type Meta = { rows_read?: number; rows_written?: number };

/**
 * Wraps a D1 binding so each call that reaches the database counts one round trip (and its
 * statements) and adds the rows D1 reports in its result metadata. Used when D1_METRICS is on
 * (benchmarks) and by the tests that count round trips; `raw()` results carry no metadata, so reads
 * made through it count a round trip but no rows. (`exec` is not wrapped: only migrations use it.)
 */
export function meteredD1(d1: D1Database, stats: D1Stats): D1Database {
  const real = new WeakMap<object, D1PreparedStatement>();
  const add = (meta: Meta | undefined) => {
    stats.rowsRead += meta?.rows_read ?? 0;
    stats.rowsWritten += meta?.rows_written ?? 0;
  };
  const wrap = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...args: unknown[]) => wrap(target.bind(...args));
        if (prop === "all" || prop === "run") {
          return async () => {
            stats.roundTrips++;
            stats.statements++;
            const result = await target[prop]();
            add(result.meta as Meta);
            return result;
          };
        }
        if (prop === "first" || prop === "raw") {
          return async (...args: unknown[]) => {
            stats.roundTrips++;
            stats.statements++;
            return (target[prop] as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    real.set(proxy, stmt);
    return proxy;
  };
  return new Proxy(d1, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => wrap(target.prepare(query));
      if (prop === "batch") {
        return async (stmts: D1PreparedStatement[]) => {
          stats.roundTrips++;
          stats.statements += stmts.length;
          const results = await target.batch(stmts.map((s) => real.get(s) ?? s));
          for (const r of results) add(r.meta as Meta);
          return results;
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
