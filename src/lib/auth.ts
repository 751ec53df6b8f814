import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { verify } from "hono/jwt";
import { z } from "zod";
import { users, type UserRow } from "../db/schema";
import type { AppEnv, AuthUser, Role } from "../env";
import { firstSight } from "../users/users.guards";
import { applyStatements } from "../ledger/executor";
import { GuardError } from "../ledger/guards";
import { ApiError, problemResponse } from "./errors";

export const USER_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const claimsSchema = z.object({
  sub: z.string().regex(USER_ID_PATTERN),
  role: z.enum(["user", "admin"]),
  exp: z.number().int(),
  nbf: z.number().optional(),
});

interface Verified {
  user: AuthUser;
  /** Seconds, as in the claims. */
  exp: number;
  nbf: number;
}

/**
 * Per secret, once per isolate (not per request): its HS256 verification key, and the tokens verified
 * under it. A client sends the same token with every request, and its HMAC is most of what
 * authentication costs. A kept token is still checked against the clock (exp, nbf) on every use; only
 * valid tokens are kept; a rotated secret starts afresh (the old one's entry is not kept for long).
 */
const secrets = new Map<string, { key: Promise<CryptoKey>; tokens: Map<string, Verified> }>();
const MAX_VERIFIED = 4096;

function underSecret(secret: string) {
  let entry = secrets.get(secret);
  if (!entry) {
    if (secrets.size >= 4) secrets.clear();
    const key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    entry = { key, tokens: new Map() };
    secrets.set(secret, entry);
  }
  return entry;
}

/** The caller an `Authorization: Bearer <HS256 JWT>` header names (the scheme in any case, RFC 7235), or 401. */
export async function verifyBearer(header: string | undefined, secret: string): Promise<AuthUser> {
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/i.exec(header ?? "");
  if (!match) throw new ApiError("unauthorized", "A bearer token is required.");
  const token = match[1]!;
  const { key, tokens } = underSecret(secret);
  const now = Math.floor(Date.now() / 1000);
  const known = tokens.get(token);
  if (known && known.exp > now && known.nbf <= now) return known.user;
  if (known) tokens.delete(token);
  let payload: unknown;
  try {
    payload = await verify(token, await key, { alg: "HS256", exp: true, nbf: true, iat: false });
  } catch {
    throw new ApiError("unauthorized", "The bearer token is invalid or expired.");
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) throw new ApiError("unauthorized", "The bearer token lacks valid sub, role or exp claims.");
  const user = { id: claims.data.sub, role: claims.data.role };
  if (tokens.size >= MAX_VERIFIED) tokens.clear();
  tokens.set(token, { user, exp: claims.data.exp, nbf: claims.data.nbf ?? -Infinity });
  return user;
}

/** Verifies the bearer token. No database work: routes decide about the caller inside their own batch. */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  c.set("user", await verifyBearer(c.req.header("authorization"), c.env.JWT_SECRET));
  await next();
});

/**
 * Separation of duties: an admin never decides about their own account or money (their KYC, balance,
 * alerts, whitelisting, freeze, payouts, withdrawals, refunds). Another admin must.
 */
export function notAboutThemselves(adminId: string, userId: string | null | undefined, what: string): void {
  if (userId !== null && userId !== undefined && userId === adminId) throw new ApiError("forbidden", `An admin cannot ${what} for themselves; another admin must.`);
}

export const requireRole = (role: Role) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (c.var.user.role !== role) throw new ApiError("forbidden", `This route requires the ${role} role.`);
    await next();
  });

/**
 * For routes that do not decide about the caller inside their own batch: the caller's record, created on
 * first sight, in one round trip. A banned caller is refused (SPEC §3: only reading balance and history
 * stays open to them, and those routes decide inside their batch).
 */
export const callerGate = createMiddleware<AppEnv>(async (c, next) => {
  const db = c.var.db;
  const [, found] = await db.batch([firstSight(db, c.var.user.id, Date.now()), db.select().from(users).where(eq(users.id, c.var.user.id))]);
  const caller = (found as UserRow[])[0];
  if (!caller) throw new Error("user row missing right after insert");
  if (caller.status === "banned") throw new ApiError("account_banned", "This account is banned.");
  c.set("caller", caller);
  await next();
});

/**
 * First sight without the ban: for a route that decides nothing about the caller and is open to a banned
 * one (a realtime ticket: the socket it opens refuses bans itself), one statement.
 */
export const firstSeen = createMiddleware<AppEnv>(async (c, next) => {
  await applyStatements(c.var.db, [firstSight(c.var.db, c.var.user.id, Date.now())]);
  await next();
});

/**
 * SPEC §3: a banned caller is answered 403 on everything but reading balance and history. The routes that
 * decide about the caller inside their batch refuse some requests before it (a self-order, someone else's
 * order, a transfer to oneself, a body that fails validation): after such a refusal the caller's status is
 * read (on refusals only; one read) and a banned caller's answer becomes 403. A refusal by the batch's own
 * guards needs no read: the caller's ban is the first guard of every such batch. Reads (balance, history)
 * stay open to a banned caller, so their refusals stay what they are.
 */
export async function banOutranksRefusal(c: Context<AppEnv>) {
  const error = c.error;
  if (c.req.method === "GET" || !(error instanceof ApiError) || error instanceof GuardError || ![400, 404, 409, 422].includes(error.status)) return;
  const [row] = await c.var.db.select({ status: users.status }).from(users).where(eq(users.id, c.var.user.id));
  if (row?.status !== "banned") return;
  c.res = undefined; // the refusal's headers (a replay's, a Retry-After) do not carry over
  c.res = problemResponse(new ApiError("account_banned", "This account is banned."));
}

