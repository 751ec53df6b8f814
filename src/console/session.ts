import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { and, eq, gt, gte, lt, or, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { consoleSessions, users } from "../db/schema";
import { verifyBearer } from "../lib/auth";
import { constantTimeEqual, digestHex, hmacHex, randomHex } from "../lib/crypto";
import { ApiError } from "../lib/errors";
import { firstSight } from "../users/users.guards";

/**
 * The console's session: a random secret in an HttpOnly, Secure, SameSite=Strict cookie scoped to /admin,
 * standing for a row of `console_sessions` (which keeps only the secret's hash). Signing in needs an admin's
 * valid token; the token itself is never stored or sent back. A session ends at sign-out, after
 * SESSION_IDLE_MS without use, after SESSION_MAX_MS whatever its use (never later than the token's own
 * expiry), or when its admin is banned. Every form carries a CSRF token derived from the session secret
 * (HMAC-SHA256 under JWT_SECRET), checked on every POST; the login form uses a double-submit cookie.
 * Nothing the console answers may be cached (`no-store`): a page left behind after sign-out stays closed.
 */
export const SESSION_COOKIE = "admin_session";
const LOGIN_CSRF_COOKIE = "admin_login_csrf";
export const SESSION_MAX_MS = 12 * 3_600_000;
export const SESSION_IDLE_MS = 3_600_000;
const LOGIN_FORM_SECONDS = 600;
const cookieOptions = { httpOnly: true, secure: true, sameSite: "Strict", path: "/admin" } as const;

export type ConsoleEnv = AppEnv & { Variables: AppEnv["Variables"] & { csrf: string } };


/** The posted form; a body that is not a readable form is 400, not an error of ours. */
export async function readForm<E extends AppEnv>(c: Context<E>) {
  try {
    return await c.req.parseBody();
  } catch {
    throw new ApiError("validation_failed", "The body is not a readable form (application/x-www-form-urlencoded or multipart/form-data).", { errors: [{ path: "body", message: "a form" }] });
  }
}


export const csrfFor = (secret: string, session: string) => hmacHex(secret, `csrf:${session}`);
/** Signs a banner message for the session whose CSRF token is `csrf` (see the console's `act`). */
export const flashSignature = (csrf: string, text: string) => hmacHex(csrf, `flash:${text}`);

const sessionKey = (secret: string) => digestHex("SHA-256", `console-session:${secret}`);

/**
 * The login form's CSRF token: a random value in a cookie, to be echoed by the form. A login page opened
 * in a second tab keeps the first one's value, so either form signs in.
 */
export function loginCsrf<E extends AppEnv>(c: Context<E>): string {
  const existing = getCookie(c, LOGIN_CSRF_COOKIE);
  const value = existing && /^[0-9a-f]{32}$/.test(existing) ? existing : randomHex(16);
  setCookie(c, LOGIN_CSRF_COOKIE, value, { ...cookieOptions, maxAge: LOGIN_FORM_SECONDS });
  return value;
}

/**
 * Signs in with an admin token: opens a session for anything but an admin's valid token. `form_expired`
 * when the form's CSRF cookie is gone or does not match (the page was left open too long).
 */
export async function signIn<E extends AppEnv>(c: Context<E>, token: string, formCsrf: string): Promise<"ok" | "invalid" | "form_expired"> {
  const expected = getCookie(c, LOGIN_CSRF_COOKIE) ?? "";
  if (!expected || !constantTimeEqual(expected, formCsrf)) return "form_expired";
  let user;
  try {
    user = await verifyBearer(`Bearer ${token.trim()}`, c.env.JWT_SECRET);
  } catch {
    return "invalid";
  }
  if (user.role !== "admin") return "invalid";
  deleteCookie(c, LOGIN_CSRF_COOKIE, { path: "/admin" });
  const claims = JSON.parse(atob(token.trim().split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as { exp: number };
  const now = Date.now();
  const expiresAt = Math.min(claims.exp * 1000, now + SESSION_MAX_MS);
  const secret = randomHex(32);
  const db = c.var.db;
  await db.batch([firstSight(db, user.id, now), db.insert(consoleSessions).values({ id: await sessionKey(secret), adminId: user.id, createdAt: now, lastSeenAt: now, expiresAt })]);
  setCookie(c, SESSION_COOKIE, secret, { ...cookieOptions, expires: new Date(expiresAt) });
  return "ok";
}

/** Ends the session on the server and asks the browser to forget its cookie. */
export async function signOut<E extends AppEnv>(c: Context<E>): Promise<void> {
  const secret = getCookie(c, SESSION_COOKIE);
  if (secret) await c.var.db.delete(consoleSessions).where(eq(consoleSessions.id, await sessionKey(secret)));
  deleteCookie(c, SESSION_COOKIE, { path: "/admin", secure: true });
}

/** Ended sessions, removed by the scheduled housekeeping (an ended session opens nothing meanwhile). */
export async function purgeConsoleSessions(db: Db, now: number): Promise<void> {
  await db.delete(consoleSessions).where(or(lt(consoleSessions.expiresAt, now), lt(consoleSessions.lastSeenAt, now - SESSION_IDLE_MS)));
}

/**
 * Every console page but the login: a live session of an admin not banned (its use noted, in the same
 * round trip that reads the admin's standing), CSRF on POST.
 */
export const consoleSession = createMiddleware<ConsoleEnv>(async (c, next) => {
  const secret = getCookie(c, SESSION_COOKIE);
  if (!secret || !/^[0-9a-f]{64}$/.test(secret)) return c.redirect("/admin/login", 303);
  const db = c.var.db;
  const key = await sessionKey(secret);
  const now = Date.now();
  const [touched, admins] = await db.batch([
    db
      .update(consoleSessions)
      .set({ lastSeenAt: now })
      .where(and(eq(consoleSessions.id, key), gt(consoleSessions.expiresAt, now), gte(consoleSessions.lastSeenAt, now - SESSION_IDLE_MS)))
      .returning({ adminId: consoleSessions.adminId }),
    db.select({ id: users.id, status: users.status }).from(users).where(eq(users.id, sql`(select ${consoleSessions.adminId} from ${consoleSessions} where ${consoleSessions.id} = ${key})`)),
  ]);
  const adminId = touched[0]?.adminId;
  if (!adminId) {
    deleteCookie(c, SESSION_COOKIE, { path: "/admin", secure: true });
    return c.redirect("/admin/login", 303);
  }
  if (admins[0]?.status === "banned") {
    await signOut(c);
    return c.redirect("/admin/login?error=banned", 303);
  }
  c.set("user", { id: adminId, role: "admin" });
  const csrf = await csrfFor(c.env.JWT_SECRET, secret);
  c.set("csrf", csrf);
  if (c.req.method === "POST") {
    const form = await readForm(c);
    if (typeof form._csrf !== "string" || !constantTimeEqual(form._csrf, csrf)) throw new ApiError("forbidden", "The form's CSRF token is missing or wrong; reload the page.");
  }
  await next();
});

/** Console answers are never cached (a page kept after sign-out would show what it showed). */
export const noStore = createMiddleware<ConsoleEnv>(async (c, next) => {
  await next();
  c.res.headers.set("cache-control", "no-store");
});
