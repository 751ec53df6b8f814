import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";

/** A page may load only what this Worker serves, and never be framed. */
export const HTML_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
  "form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const EVERY_RESPONSE: [string, string][] = [
  ["x-content-type-options", "nosniff"],
  ["referrer-policy", "no-referrer"],
  ["strict-transport-security", "max-age=63072000; includeSubDomains"],
  ["x-frame-options", "DENY"],
];

/**
 * Headers added to the response after the handler: in place on a response this Worker built (Hono's
 * `c.header` copies the whole response for each header once it is final); a passed-through response
 * whose headers are immutable (an object's WebSocket upgrade) goes the copying way.
 */
export function addHeaders(c: Context<AppEnv>, headers: [string, string][]): void {
  try {
    for (const [name, value] of headers) c.res.headers.set(name, value);
  } catch {
    for (const [name, value] of headers) c.header(name, value);
  }
}

/** On every response, errors included: no MIME sniffing, no referrer, HTTPS only; HTML pages also get a CSP (unless they set their own). */
export const securityHeaders = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  const html = (c.res.headers.get("content-type") ?? "").startsWith("text/html") && !c.res.headers.has("content-security-policy");
  addHeaders(c, html ? [...EVERY_RESPONSE, ["content-security-policy", HTML_CSP]] : EVERY_RESPONSE);
});
