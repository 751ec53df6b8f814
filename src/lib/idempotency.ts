import { and, eq, lt } from "drizzle-orm";
import type { Context } from "hono";
import type { Db } from "../db/client";
import { idempotencyKeys } from "../db/schema";
import type { AppEnv } from "../env";
import { IdempotencyRaceError, type IdempotencyWrite, type Statement } from "../ledger/executor";
import { digestHex } from "./crypto";
import { deviceFingerprint } from "./request";
import { ApiError, problemBody, rebuilt, type ErrorCode, type FieldError } from "./errors";

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** How long a claimed key waits for its request's answer before the same request may take it over. */
const CLAIM_MS = 60_000;
/** The status of a key claimed by answerOnce whose answer is not recorded yet. */
const CLAIMED = 0;

export interface IdempotencyScope {
  userId: string;
  key: string;
  requestHash: string;
}

export interface Outcome {
  status: 200 | 201 | 202;
  body: object;
}

/** Stable JSON: object keys sorted, so the same body always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}


/** Reads and validates the Idempotency-Key header; undefined when the client sent none. */
export async function idempotencyScope(c: Context<AppEnv>, body: unknown): Promise<IdempotencyScope | undefined> {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return undefined;
  if (!KEY_PATTERN.test(key)) throw new ApiError("validation_failed", "Idempotency-Key must be 1–255 visible ASCII characters.", { errors: [{ path: "header.Idempotency-Key", message: "1–255 visible ASCII characters" }] });
  const requestHash = await digestHex("SHA-256", `${c.req.method} ${c.req.path}\n${canonical(body)}`);
  return { userId: c.var.user.id, key, requestHash };
}

/** The remembered answer for this key, or undefined; a different body under the same key is a conflict. */
async function storedOutcome<O extends Outcome>(c: Context<AppEnv>, scope: IdempotencyScope): Promise<O | undefined> {
  const row = await c.var.db.query.idempotencyKeys.findFirst({
    where: and(eq(idempotencyKeys.userId, scope.userId), eq(idempotencyKeys.key, scope.key)),
  });
  if (!row) return undefined;
  if (row.requestHash !== scope.requestHash) {
    throw new ApiError("idempotency_conflict", "This Idempotency-Key was already used with a different request.");
  }
  const now = Date.now();
  if (row.statusCode === CLAIMED || (row.settlesAt !== null && now < row.settlesAt)) {
    // Its request is still waiting on a gateway whose reply may change the answer: not a provisional one.
    throw new ApiError("conflict", "A request with this Idempotency-Key is still in progress; retry shortly.", {
      transient: true,
      headers: { "retry-after": String(Math.max(1, Math.ceil(((row.settlesAt ?? now) - now) / 1000))) },
    });
  }
  c.header("idempotent-replayed", "true");
  const body = JSON.parse(row.responseBody) as unknown;
  if (row.statusCode >= 400) {
    const problem = body as { code: ErrorCode; detail: string; errors?: FieldError[] };
    throw new ApiError(...rebuilt(problem.code, problem.detail, { errors: problem.errors, headers: { "idempotent-replayed": "true" } }));
  }
  // Stored by this module from an outcome of the same route (same user, key and request hash).
  return { status: row.statusCode, body } as O;
}

/**
 * Runs a value-moving operation at most once per (user, Idempotency-Key). `run` receives the record
 * to write inside its own ledger batch, where the key is the first statement: a repeat aborts that
 * batch before anything moves and is answered from the stored record (the only extra round trip, on
 * repeats). So the movement and its remembered answer commit together, in one round trip. A business
 * refusal (insufficient funds, limits) is remembered too, so every repeat gets the same answer;
 * validation errors are not, since they never reach this point, nor are transient ones (concurrent
 * requests kept changing what this one decides from: the same key may try again).
 */
export async function idempotent<O extends Outcome>(
  c: Context<AppEnv>,
  scope: IdempotencyScope | undefined,
  run: (record: (outcome: O) => IdempotencyWrite | undefined) => Promise<O>,
): Promise<O> {
  if (!scope) return run(() => undefined);
  try {
    return await run((o) => ({ ...scope, statusCode: o.status, body: o.body }));
  } catch (error) {
    if (error instanceof IdempotencyRaceError) {
      const winner = await storedOutcome<O>(c, scope);
      if (winner) return winner;
      throw error;
    }
    if (error instanceof ApiError && error.status < 500 && !error.extra.transient) {
      // Remember the refusal unless a concurrent twin already stored its answer; then answer as it did.
      const [mine] = await c.var.db
        .insert(idempotencyKeys)
        .values({ ...scope, statusCode: error.status, responseBody: JSON.stringify(problemBody(error.code, error.detail, error.extra.errors)), createdAt: Date.now() })
        .onConflictDoNothing()
        .returning({ key: idempotencyKeys.key });
      if (mine) throw error;
      const stored = await storedOutcome<O>(c, scope);
      if (stored) return stored;
    }
    throw error;
  }
}

/**
 * A decision that moves value (a refund, a release, a settlement) at most once per Idempotency-Key
 * (scoped by `scopeBody`): `run` hands the answer it will give to `record`, whose write rides in the
 * decision's own batch, and returns that answer (200).
 */
export async function decideOnce<B extends object>(c: Context<AppEnv>, scopeBody: unknown, run: (record: (body: B) => IdempotencyWrite | undefined) => Promise<B>): Promise<B> {
  const outcome = await idempotent<{ status: 200; body: B }>(c, await idempotencyScope(c, scopeBody), async (record) => ({ status: 200, body: await run((body) => record({ status: 200, body })) }));
  return outcome.body;
}

/**
 * For an operation whose answer is known only after its batch committed (an admin removal's progress), and
 * which is safe to repeat. The key is claimed first: a concurrent request with it waits for the answer (409,
 * transient) or, with another body, is refused (409); a repeat is answered from the record. The operation
 * runs, and its answer (or its refusal) replaces the claim. A request that stops in between leaves the
 * claim, which the same request takes over after CLAIM_MS and runs again.
 */
export async function answerOnce<O extends Outcome>(c: Context<AppEnv>, scopeBody: unknown, run: () => Promise<O>): Promise<O> {
  const scope = await idempotencyScope(c, scopeBody);
  if (!scope) return run();
  const db = c.var.db;
  const now = Date.now();
  const ours = and(eq(idempotencyKeys.userId, scope.userId), eq(idempotencyKeys.key, scope.key), eq(idempotencyKeys.requestHash, scope.requestHash));
  const [claimed] = await db
    .insert(idempotencyKeys)
    .values({ ...scope, statusCode: CLAIMED, responseBody: "null", createdAt: now, settlesAt: now + CLAIM_MS })
    .onConflictDoUpdate({
      target: [idempotencyKeys.userId, idempotencyKeys.key],
      set: { createdAt: now, settlesAt: now + CLAIM_MS },
      setWhere: and(eq(idempotencyKeys.statusCode, CLAIMED), lt(idempotencyKeys.settlesAt, now), eq(idempotencyKeys.requestHash, scope.requestHash)),
    })
    .returning({ key: idempotencyKeys.key });
  if (!claimed) {
    const stored = await storedOutcome<O>(c, scope);
    if (stored) return stored;
    throw new ApiError("conflict", "A request with this Idempotency-Key is still in progress; retry shortly.", { transient: true });
  }
  const answer = (status: number, body: unknown) => db.update(idempotencyKeys).set({ statusCode: status, responseBody: JSON.stringify(body), settlesAt: null }).where(ours);
  let outcome: O;
  try {
    outcome = await run();
  } catch (error) {
    if (error instanceof ApiError && error.status < 500 && !error.extra.transient) await answer(error.status, problemBody(error.code, error.detail, error.extra.errors));
    else await db.delete(idempotencyKeys).where(and(ours, eq(idempotencyKeys.statusCode, CLAIMED)));
    throw error;
  }
  await answer(outcome.status, outcome.body);
  return outcome;
}

/** Keys are kept at least 24 hours (SPEC §3); older ones are removed by the scheduled cleanup. */
export async function purgeIdempotencyKeys(db: Db, olderThan: number): Promise<void> {
  await db.delete(idempotencyKeys).where(lt(idempotencyKeys.createdAt, olderThan));
}

/** What a value-moving operation receives from its route: the device, the idempotency record and the fraud sidecar. */
export interface MovementContext<B extends object> {
  deviceFingerprint: string | null;
  record: (o: { status: 201; body: B }) => IdempotencyWrite | undefined;
  alongside: Statement[];
}

/**
 * The one shape of a value-moving route (behind `valueMovingGuard`): at most once per Idempotency-Key
 * (scoped by `scopeBody`), with the gate's bookkeeping riding in the movement's own batch.
 */
export async function moveOnce<B extends object>(c: Context<AppEnv>, scopeBody: unknown, run: (ctx: MovementContext<B>) => Promise<{ status: 201; body: B }>) {
  const scope = await idempotencyScope(c, scopeBody);
  const sidecar = c.var.sidecar;
  const outcome = await idempotent<{ status: 201; body: B }>(c, scope, async (record) => {
    const done = await run({ deviceFingerprint: deviceFingerprint(c), record, alongside: sidecar.statements });
    sidecar.applied = true;
    return done;
  });
  return outcome;
}
