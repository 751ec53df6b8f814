import { describe, expect, it } from "vitest";
import { call, expectProblem, tokenFor } from "./helpers";

/** The console's forms are exercised in Chromium (npm run test:console); these are the HTTP edges a browser never sends. */
describe("admin console: hostile form input", () => {
  it("a body that is not a readable form is 400, not 500", async () => {
    const broken = { "content-type": "multipart/form-data; boundary=x" };
    expectProblem(await call("POST", "/admin/login", { rawBody: "x", headers: broken }), 400, "validation_failed");
    expectProblem(await call("POST", "/admin/login", { rawBody: "x", headers: { "content-type": "multipart/form-data" } }), 400, "validation_failed");
  });

  it("an admin token valid for longer than a cookie may live signs in (the session cookie is capped at 400 days); signed in, a broken body is 400 too", async () => {
    const login = await call("GET", "/admin/login");
    const csrf = /admin_login_csrf=([0-9a-f]+)/.exec(login.headers.get("set-cookie") ?? "")?.[1];
    expect(csrf).toBeDefined();
    const token = await tokenFor("ops-long", "admin", { exp: Math.floor(Date.now() / 1000) + 500 * 86_400 });
    const form = new URLSearchParams({ _csrf: csrf!, token }).toString();
    const res = await call("POST", "/admin/login", { rawBody: form, headers: { "content-type": "application/x-www-form-urlencoded", cookie: `admin_login_csrf=${csrf}` } });
    expect(res.status, res.text).toBe(303);
    const session = (res.headers.get("set-cookie") ?? "").split(/,(?=\s*\w+=)/).find((c) => c.trim().startsWith("admin_session="));
    expect(session).toBeDefined();
    const expires = Date.parse(/Expires=([^;]+)/i.exec(session!)![1]!);
    expect(expires).toBeLessThanOrEqual(Date.now() + 400 * 86_400_000);
    // Signed in, a broken body on an action is 400 too (read by the session's CSRF check first).
    const cookie = session!.split(";")[0]!.trim();
    expectProblem(await call("POST", "/admin/logout", { rawBody: "x", headers: { "content-type": "multipart/form-data; boundary=x", cookie } }), 400, "validation_failed");

    // A user id with CR/LF in an action's path: the console answers (the id is refused on the page it returns to), never 500.
    const page = await call("GET", "/admin/users", { headers: { cookie } });
    const token_ = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1];
    expect(token_, page.text.slice(0, 300)).toBeDefined();
    const hostile = await call("POST", "/admin/users/x%0D%0ASet-Cookie:%20a=b/status", {
      rawBody: new URLSearchParams({ _csrf: token_!, status: "frozen", reason: "testing" }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded", cookie },
    });
    expect(hostile.status, hostile.text).toBe(303);
    expect(hostile.headers.get("location")).toMatch(/^\/admin\/users\/x%0D%0ASet-Cookie/);
    expect(hostile.headers.get("location")).toContain("error=");
  });
});
