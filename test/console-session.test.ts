import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import worker from "../src/index";
import { describe, expect, it } from "vitest";
import { call, newUser, tokenFor, uniqueId } from "./helpers";

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const formHeaders = (cookie: string) => ({ "content-type": "application/x-www-form-urlencoded", cookie });
const cookieOf = (res: { headers: Headers }, name: string) =>
  (res.headers.get("set-cookie") ?? "")
    .split(/,(?=\s*\w+=)/)
    .find((c) => c.trim().startsWith(`${name}=`))
    ?.split(";")[0]!
    .trim();

/** The login page as a browser gets it: with the login cookie it already holds, if any. */
async function loginForm(held?: string) {
  const page = await call("GET", "/admin/login", held ? { headers: { cookie: held } } : {});
  return { csrf: /name="_csrf" value="([0-9a-f]+)"/.exec(page.text)![1]!, cookie: cookieOf(page, "admin_login_csrf") ?? held! };
}

async function signIn(sub = uniqueId("ops")) {
  const token = await tokenFor(sub, "admin");
  const login = await loginForm();
  const res = await call("POST", "/admin/login", { rawBody: form({ _csrf: login.csrf, token }), headers: formHeaders(login.cookie) });
  expect(res.headers.get("location")).toBe("/admin");
  const cookie = cookieOf(res, "admin_session")!;
  const page = await call("GET", "/admin/users", { headers: { cookie } });
  expect(page.status).toBe(200);
  return { cookie, token, sub, csrf: /name="_csrf" value="([^"]+)"/.exec(page.text)![1]! };
}

const signedIn = async (cookie: string, path = "/admin/kyc") => {
  const res = await call("GET", path, { headers: { cookie } });
  return res.status === 200;
};

describe("the console's session", () => {
  it("signing out ends the session on the server; the cookie is a session id, never the admin's API token", async () => {
    const s = await signIn();
    expect(decodeURIComponent(s.cookie.split("=")[1]!)).not.toBe(s.token);
    expect((await call("GET", "/api/admin/ledger/check", { token: decodeURIComponent(s.cookie.split("=")[1]!) })).status).toBe(401);
    const out = await call("POST", "/admin/logout", { rawBody: form({ _csrf: s.csrf }), headers: formHeaders(s.cookie) });
    expect(out.status).toBe(303);
    // The same cookie, replayed after sign-out (a copy the browser did not delete), opens nothing.
    const again = await call("GET", "/admin/kyc", { headers: { cookie: s.cookie } });
    expect(again.status).toBe(303);
    expect(again.headers.get("location")).toBe("/admin/login");
  });

  it("a session ends after an hour without use, and after twelve hours whatever its use; another admin's session is not affected", async () => {
    const idle = await signIn();
    const busy = await signIn();
    const other = await signIn();
    await env.DB.prepare("update console_sessions set last_seen_at = last_seen_at - 3600001 where admin_id = ?").bind(idle.sub).run();
    expect(await signedIn(idle.cookie)).toBe(false);
    await env.DB.prepare("update console_sessions set created_at = created_at - 43200001, expires_at = expires_at - 43200001 where admin_id = ?").bind(busy.sub).run();
    expect(await signedIn(busy.cookie)).toBe(false);
    expect(await signedIn(other.cookie)).toBe(true);
    // Housekeeping removes ended sessions' rows and keeps live ones.
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ cron: "*/15 * * * *", scheduledTime: Date.now() }), env, ctx);
    await waitOnExecutionContext(ctx);
    const left = await env.DB.prepare("select admin_id from console_sessions where admin_id in (?, ?, ?)").bind(idle.sub, busy.sub, other.sub).all<{ admin_id: string }>();
    expect(left.results.map((r) => r.admin_id)).toEqual([other.sub]);
  });

  it("a session lasts no longer than the token it was opened with", async () => {
    const sub = uniqueId("ops-short");
    const token = await tokenFor(sub, "admin", { exp: Math.floor(Date.now() / 1000) + 120 });
    const login = await loginForm();
    const res = await call("POST", "/admin/login", { rawBody: form({ _csrf: login.csrf, token }), headers: formHeaders(login.cookie) });
    const row = await env.DB.prepare("select expires_at from console_sessions where admin_id = ?").bind(sub).first<{ expires_at: number }>();
    expect(row!.expires_at).toBeLessThanOrEqual(Date.now() + 120_000);
    const session = (res.headers.get("set-cookie") ?? "").split(/,(?=\s*\w+=)/).find((c) => c.trim().startsWith("admin_session="))!;
    expect(Date.parse(/Expires=([^;]+)/i.exec(session)![1]!)).toBeLessThanOrEqual(Date.now() + 121_000);
  });

  it("no console answer may be cached: pages, the login page and redirects are no-store", async () => {
    const s = await signIn();
    for (const path of ["/admin", "/admin/alerts", "/admin/kyc", "/admin/users", "/admin/payouts", "/admin/withdrawals", "/admin/batches"]) {
      const res = await call("GET", path, { headers: { cookie: s.cookie } });
      expect(res.status, path).toBe(200);
      expect(res.headers.get("cache-control"), path).toBe("no-store");
    }
    expect((await call("GET", "/admin/login")).headers.get("cache-control")).toBe("no-store");
    expect((await call("GET", "/admin/kyc")).headers.get("cache-control")).toBe("no-store");
  });

  it("a second login page does not spoil the first; an expired form says so instead of calling the token invalid", async () => {
    const first = await loginForm();
    // Another tab: the browser sends the cookie it holds and keeps whatever the answer sets.
    const second = await loginForm(first.cookie);
    const token = await tokenFor(uniqueId("ops-tabs"), "admin");
    const ok = await call("POST", "/admin/login", { rawBody: form({ _csrf: first.csrf, token }), headers: formHeaders(second.cookie) });
    expect(ok.headers.get("location")).toBe("/admin");
    const stale = await call("POST", "/admin/login", { rawBody: form({ _csrf: "0".repeat(32), token }), headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(stale.headers.get("location")).toBe("/admin/login?error=form_expired");
    expect((await call("GET", "/admin/login?error=form_expired")).text).toContain("The sign-in form expired");
  });
});

describe("console actions take what the API takes", () => {
  it("reasons longer than the API allows (500) are refused and change nothing", async () => {
    const s = await signIn();
    const user = await newUser("long-reason");
    const long = "x".repeat(20_000);
    const res = await call("POST", `/admin/users/${user.id}/status`, { rawBody: form({ _csrf: s.csrf, status: "frozen", reason: long }), headers: formHeaders(s.cookie) });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toContain("error=");
    const row = await env.DB.prepare("select status from users where id = ?").bind(user.id).first<{ status: string }>();
    expect(row!.status).toBe("active");
    const audit = await env.DB.prepare("select count(*) as n from audit_log where subject_id = ?").bind(user.id).first<{ n: number }>();
    expect(audit!.n).toBe(0);
  });

  it("the banner shows only the console's own messages, not text from the address", async () => {
    const s = await signIn();
    const page = await call("GET", `/admin/withdrawals?ok=${encodeURIComponent("Iris confirmed every withdrawal: resolve them all as failed now")}`, { headers: { cookie: s.cookie } });
    expect(page.status).toBe(200);
    expect(page.text).not.toContain("resolve them all as failed now");
  });

  it("the alerts page pages past its first 50", async () => {
    const s = await signIn();
    const user = await newUser("many-alerts");
    const type = `paging_${Math.random().toString(36).replace(/[^a-z]/g, "")}`;
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 51; i++) ids.push(`AL${now}${String(i).padStart(3, "0")}`);
    await env.DB.batch(ids.map((id, i) => env.DB.prepare("insert into fraud_alerts (id, user_id, alert_type, severity, details, status, created_at) values (?, ?, ?, 'low', '{}', 'open', ?)").bind(id, user.id, type, now + i)));
    const first = await call("GET", `/admin/alerts?type=${type}`, { headers: { cookie: s.cookie } });
    const shown = (text: string) => ids.filter((id) => text.includes(`data-alert="${id}"`));
    expect(shown(first.text)).toHaveLength(50);
    const next = /href="(\/admin\/alerts\?[^"]*before=[^"]+)"/.exec(first.text)?.[1]?.replaceAll("&amp;", "&");
    expect(next).toBeDefined();
    const second = await call("GET", next!, { headers: { cookie: s.cookie } });
    expect(second.status).toBe(200);
    expect(shown(second.text)).toEqual([ids[0]]);
  });
});
