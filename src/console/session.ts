import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { verifyBearer } from "../lib/auth";
import { ApiError } from "../lib/errors";
import { findOrCreateUser } from "../users/users.service";

/**
 * The console's session: the admin's JWT in an HttpOnly, Secure, SameSite=Strict cookie scoped to
 * /admin (it expires with the token). Every form carries a CSRF token derived from the session
 * (HMAC-SHA256 of the token under JWT_SECRET), checked on every POST; the login form uses a
 * double-submit cookie. A user token, an expired one, a banned admin or no session → the login page.
 */
export const SESSION_COOKIE = "admin_session";
const LOGIN_CSRF_COOKIE = "admin_login_csrf";
const MAX_COOKIE_DAYS = 399;
const cookieOptions = { httpOnly: true, secure: true, sameSite: "Strict", path: "/admin" } as const;

export type ConsoleEnv = AppEnv & { Variables: AppEnv["Variables"] & { csrf: string } };

async function hmac(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The posted form; a body that is not a readable form is 400, not an error of ours. */
export async function readForm<E extends AppEnv>(c: Context<E>) {
  try {
    return await c.req.parseBody();
  } catch {
    throw new ApiError("validation_failed", "The body is not a readable form (application/x-www-form-urlencoded or multipart/form-data).");
  }
}

/** Constant-time comparison of two strings. */
function same(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

export const csrfFor = (secret: string, token: string) => hmac(secret, `csrf:${token}`);

/** The login form's CSRF token (a fresh random value in a cookie, to be echoed by the form). */
export function loginCsrf<E extends AppEnv>(c: Context<E>): string {
  const value = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
  setCookie(c, LOGIN_CSRF_COOKIE, value, { ...cookieOptions, maxAge: 600 });
  return value;
}

/** Signs in with an admin token: refuses anything but an admin's valid token. Returns false on refusal. */
export async function signIn<E extends AppEnv>(c: Context<E>, token: string, formCsrf: string): Promise<boolean> {
  const expected = getCookie(c, LOGIN_CSRF_COOKIE) ?? "";
  if (!expected || !same(expected, formCsrf)) return false;
  deleteCookie(c, LOGIN_CSRF_COOKIE, { path: "/admin" });
  let user;
  try {
    user = await verifyBearer(`Bearer ${token.trim()}`, c.env.JWT_SECRET);
  } catch {
    return false;
  }
  if (user.role !== "admin") return false;
  const claims = JSON.parse(atob(token.trim().split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as { exp: number };
  // The session lasts as long as the token, but a cookie at most 400 days (RFC 6265bis; hono refuses more).
  setCookie(c, SESSION_COOKIE, token.trim(), { ...cookieOptions, expires: new Date(Math.min(claims.exp * 1000, Date.now() + MAX_COOKIE_DAYS * 86_400_000)) });
  return true;
}

export function signOut<E extends AppEnv>(c: Context<E>): void {
  deleteCookie(c, SESSION_COOKIE, { path: "/admin", secure: true });
}

/** Every console page but the login: a valid admin session (and a banned admin is refused), CSRF on POST. */
export const consoleSession = createMiddleware<ConsoleEnv>(async (c, next) => {
  const token = getCookie(c, SESSION_COOKIE);
  let user;
  try {
    user = token ? await verifyBearer(`Bearer ${token}`, c.env.JWT_SECRET) : null;
  } catch {
    user = null;
  }
  if (!user || user.role !== "admin") return c.redirect("/admin/login", 303);
  const record = await findOrCreateUser(c.var.db, user.id, Date.now());
  if (record.status === "banned") {
    signOut(c);
    return c.redirect("/admin/login?error=banned", 303);
  }
  c.set("user", user);
  const csrf = await csrfFor(c.env.JWT_SECRET, token!);
  c.set("csrf", csrf);
  if (c.req.method === "POST") {
    const form = await readForm(c);
    if (typeof form._csrf !== "string" || !same(form._csrf, csrf)) throw new ApiError("forbidden", "The form's CSRF token is missing or wrong; reload the page.");
  }
  await next();
});
