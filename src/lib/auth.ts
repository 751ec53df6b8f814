import { createMiddleware } from "hono/factory";
import { verify } from "hono/jwt";
import { z } from "zod";
import type { AppEnv, Role } from "../env";
import { findOrCreateUser } from "../users/users.service";
import { ApiError } from "./errors";

export const USER_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

const claimsSchema = z.object({
  sub: z.string().regex(USER_ID_PATTERN),
  role: z.enum(["user", "admin"]),
  exp: z.number().int(),
});

/** Verifies `Authorization: Bearer <HS256 JWT>` and loads (or creates) the caller's user record. */
export const requireAuth = createMiddleware<AppEnv>(async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const match = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(header);
  if (!match) throw new ApiError("unauthorized", "A bearer token is required.");
  let payload: unknown;
  try {
    payload = await verify(match[1]!, c.env.JWT_SECRET, { alg: "HS256", exp: true, nbf: true, iat: false });
  } catch {
    throw new ApiError("unauthorized", "The bearer token is invalid or expired.");
  }
  const claims = claimsSchema.safeParse(payload);
  if (!claims.success) throw new ApiError("unauthorized", "The bearer token lacks valid sub, role or exp claims.");
  const record = await findOrCreateUser(c.var.db, claims.data.sub, Date.now());
  c.set("user", { id: claims.data.sub, role: claims.data.role, record });
  await next();
});

export const requireRole = (role: Role) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (c.var.user.role !== role) throw new ApiError("forbidden", `This route requires the ${role} role.`);
    await next();
  });

/** A banned user may still read balance and history (SPEC §3); everything else is refused. */
export const refuseBanned = (allowed: (method: string, path: string) => boolean) =>
  createMiddleware<AppEnv>(async (c, next) => {
    if (c.var.user.record.status === "banned" && !allowed(c.req.method, c.req.path)) {
      throw new ApiError("account_banned", "This account is banned.");
    }
    await next();
  });

/** Money leaving a user's control (transfers out, withdrawals, spends) needs an active account. */
export function assertMayMoveOut(user: { record: { status: string; verificationRequired: boolean } }): void {
  if (user.record.status === "banned") throw new ApiError("account_banned", "This account is banned.");
  if (user.record.status === "frozen") throw new ApiError("account_frozen", "This account is frozen; money cannot leave it.");
  if (user.record.verificationRequired) throw new ApiError("verification_required", "Additional verification is required before money can leave this account.");
}
