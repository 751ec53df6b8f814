import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";

/** A page may load only what this Worker serves, and never be framed. */
export const HTML_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/** On every response, errors included: no MIME sniffing, no referrer, HTTPS only; HTML pages also get a CSP (unless they set their own). */
export const securityHeaders = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  c.header("x-content-type-options", "nosniff");
  c.header("referrer-policy", "no-referrer");
  c.header("strict-transport-security", "max-age=63072000; includeSubDomains");
  c.header("x-frame-options", "DENY");
  if ((c.res.headers.get("content-type") ?? "").startsWith("text/html") && !c.res.headers.has("content-security-policy")) {
    c.header("content-security-policy", HTML_CSP);
  }
});
