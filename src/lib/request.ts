import type { Context } from "hono";
import type { AppEnv } from "../env";

/** The client's device fingerprint (X-Device-Fingerprint), kept only if it is a sane token. */
export function deviceFingerprint(c: Context<AppEnv>): string | null {
  const value = c.req.header("x-device-fingerprint");
  return value && /^[\x21-\x7e]{1,128}$/.test(value) ? value : null;
}
