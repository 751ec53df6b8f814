import { fillPlaceholders, sql, type Placeholder, type Query, type SQL, type SQLWrapper } from "drizzle-orm";
import type { BatchItem } from "drizzle-orm/batch";
import { dialect, type Db } from "./client";

/** What `build` returns: any drizzle statement (its public `prepare()` renders it). */
interface Preparable {
  prepare(): { getQuery(): Query; mapResult(response: unknown, isFromBatch?: boolean): unknown };
}

interface Rendered {
  query: Query;
  mapResult(response: unknown, isFromBatch?: boolean): unknown;
}

/** A value bound per use; `build` writes `slot("name")` wherever the statement's values go. */
export const slot = (name: string) => sql.placeholder(name);

/**
 * Statements of the hot paths, rendered by drizzle once per isolate and shape, then bound per use.
 * Rendering (walking the statement's chunks, quoting names, casing columns) is most of what drizzle
 * costs a request; binding is a copy of the parameter list with each value through its column's encoder
 * (drizzle's own `fillPlaceholders`). `build(db, shape)` writes the statement with `slot(name)` for
 * every value that varies; `shape` is whatever changes the SQL text (a row count, a variant), so the
 * same text is never reused for a different statement.
 *
 * `db.batch` renders every item it is given and does not fill placeholders, so a bound statement is
 * handed to it as an item whose rendering is already done: the one place that relies on drizzle's batch
 * protocol (`_prepare()` → `getQuery()`, `stmt`, `mapResult`; drizzle-orm is pinned).
 */
export function template<Shape extends string | number = never>(build: (db: Db, shape: Shape) => Preparable) {
  const rendered = new Map<Shape | undefined, Rendered>();
  // A statement of one shape takes no shape argument; one with shapes requires it.
  return (db: Db, values: Record<string, unknown>, ...[shape]: [Shape] extends [never] ? [] : [Shape]): BatchItem<"sqlite"> => {
    let r = rendered.get(shape);
    if (!r) {
      const prepared = build(db, shape as Shape).prepare();
      r = { query: prepared.getQuery(), mapResult: prepared.mapResult.bind(prepared) };
      rendered.set(shape, r);
    }
    return bound(db, r.query.sql, fillPlaceholders(r.query.params, values), r.mapResult);
  };
}

/** A rendered statement as an item of `db.batch` (drizzle's batch protocol: `_prepare()` → `getQuery()`, `stmt`, `mapResult`). */
function bound(db: Db, text: string, params: unknown[], mapResult: Rendered["mapResult"]): BatchItem<"sqlite"> {
  const ready = { getQuery: () => ({ sql: text, params }), stmt: db.$client.prepare(text), mapResult };
  return { _prepare: () => ready } as unknown as BatchItem<"sqlite">;
}

/** A write already rendered (text and parameters) as a batch item: what it returns is D1's run result. */
export function writeStatement(db: Db, statement: Query): BatchItem<"sqlite"> {
  return bound(db, statement.sql, statement.params, (result) => result);
}

/**
 * A condition or expression that many statements embed (a guard, a limit), rendered once: its text is
 * kept with the positions of its values, and each use is plain text and parameters again (a
 * `BoundFragment`), so a statement made of fragments is joined as text instead of walked as a tree.
 * `build` names its values by `slot(name)`.
 */
export function fragment<Name extends string>(build: (slots: Record<Name, Placeholder>) => SQL): (values: Record<Name, unknown>) => BoundFragment {
  let rendered: Query | undefined;
  return (values) => {
    if (!rendered) {
      const slots = new Proxy({} as Record<Name, Placeholder>, { get: (_, name) => slot(String(name)) });
      rendered = dialect.sqlToQuery(build(slots));
      if (rendered.sql.split("?").length !== rendered.params.length + 1) throw new Error(`a fragment's text has a literal "?": ${rendered.sql}`);
    }
    return new BoundFragment(rendered.sql, fillPlaceholders(rendered.params, values));
  };
}

/**
 * A fragment with its values: SQL text with one `?` per parameter (a drizzle `Query`). Statements
 * written as text join it as it is; inside a drizzle `sql` template it is an SQLWrapper like any other.
 */
export class BoundFragment implements Query, SQLWrapper {
  constructor(
    readonly sql: string,
    readonly params: unknown[],
  ) {}

  getSQL(): SQL {
    const texts = this.sql.split("?");
    const chunks: SQL[] = [sql.raw(texts[0]!)];
    this.params.forEach((value, i) => chunks.push(sql`${value}`, sql.raw(texts[i + 1]!)));
    return sql.join(chunks);
  }
}
