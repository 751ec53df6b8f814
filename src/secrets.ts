import { ConfigError, loadConfig, type Config } from "./config";

/**
 * The values `.dev.vars.example` ships for local development. They are public, so a deployment that
 * runs on any of them is refused in production; a test keeps this list and the file in step.
 */
export const DEV_EXAMPLE_VALUES: readonly string[] = [
  "dev-only-jwt-secret-change-me-0123456789",
  "SB-Mid-server-local-simulator-key",
  "IRIS-local-simulator-api-key",
  "IRIS-local-simulator-merchant-key",
  "xnd_development_local_simulator",
  "local-simulator-callback-token",
  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
];

const SECRETS = ["JWT_SECRET", "MIDTRANS_SERVER_KEY", "MIDTRANS_IRIS_API_KEY", "MIDTRANS_IRIS_MERCHANT_KEY", "XENDIT_SECRET_KEY", "XENDIT_CALLBACK_TOKEN", "KYC_ENCRYPTION_KEY"] as const;

function base64Bytes(text: string): number {
  try {
    return atob(text).length;
  } catch {
    return -1;
  }
}

/** Every problem with the Worker's secrets (and, in production, with settings only fit for development), naming the var. */
export function secretProblems(env: Record<string, unknown>, config: Config): string[] {
  const value = (name: string) => (typeof env[name] === "string" ? (env[name] as string) : "");
  const problems: string[] = [];
  for (const name of SECRETS) if (value(name).trim() === "") problems.push(`${name}: missing`);
  if (value("JWT_SECRET") && new TextEncoder().encode(value("JWT_SECRET")).length < 32) problems.push("JWT_SECRET: must be at least 32 bytes");
  for (const name of ["KYC_ENCRYPTION_KEY", "KYC_ENCRYPTION_KEY_PREVIOUS"]) {
    if (value(name) && base64Bytes(value(name)) !== 32) problems.push(`${name}: must be base64 of exactly 32 bytes`);
  }
  if (value("ENVIRONMENT") !== "production") return problems;
  const urls = ["MIDTRANS_SNAP_BASE_URL", "MIDTRANS_API_BASE_URL", "MIDTRANS_IRIS_BASE_URL", "XENDIT_API_BASE_URL"] as const;
  for (const name of urls) {
    const url = new URL(config[name]);
    if (url.protocol !== "https:" || /sandbox|localhost|127\.0\.0\.1|\[::1\]/i.test(url.host)) problems.push(`${name}: a sandbox or local URL in production (${url.host})`);
  }
  if (!config.MIDTRANS_IS_PRODUCTION) problems.push("MIDTRANS_IS_PRODUCTION: must be true in production");
  if (!config.MIDTRANS_VERIFY_STATUS) problems.push("MIDTRANS_VERIFY_STATUS: must be true in production");
  if (value("XENDIT_SECRET_KEY").startsWith("xnd_development_")) problems.push("XENDIT_SECRET_KEY: a development key in production");
  for (const name of [...SECRETS, "KYC_ENCRYPTION_KEY_PREVIOUS"]) {
    if (DEV_EXAMPLE_VALUES.includes(value(name))) problems.push(`${name}: the public value from .dev.vars.example`);
  }
  return problems;
}

/**
 * The configuration a request, cron or queue invocation runs on: business parameters and secrets,
 * all checked. Anything wrong stops the invocation with a message naming the var (SPEC §2).
 */
export function loadRuntimeConfig(env: object): Config {
  const known = checked.get(env);
  if (known) return known;
  const config = loadConfig(env);
  const problems = secretProblems(env as Record<string, unknown>, config);
  if (problems.length > 0) throw new ConfigError(problems);
  checked.set(env, Object.freeze(config));
  return config;
}

/**
 * The checked configuration of each `env` object this isolate has seen: the runtime hands every
 * invocation the same bindings object, so the vars are parsed and checked once, not per request. A
 * different object (a test's `{ ...env, ... }`, a redeploy's new vars) is checked afresh; a bad one is
 * never remembered, so every invocation on it fails with the same message.
 */
const checked = new WeakMap<object, Config>();
