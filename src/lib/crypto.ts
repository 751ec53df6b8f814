import { ApiError } from "./errors";

const IV_BYTES = 12;
const KEY_ID_BYTES = 4;
/** Envelope v1: "KE1" ‖ key id (4 bytes) ‖ iv (12) ‖ ciphertext+tag. Older envelopes are iv ‖ ciphertext+tag. */
const MAGIC = new Uint8Array([0x4b, 0x45, 0x31]);

export interface SealingKey {
  /** Hex of the first 4 bytes of SHA-256(raw key): names the key inside each envelope, reveals nothing of it. */
  id: string;
  key: CryptoKey;
}

/** The current KYC key and, while photos sealed with it remain, the previous one (KYC_ENCRYPTION_KEY_PREVIOUS). */
export interface KeyRing {
  current: SealingKey;
  previous?: SealingKey;
}

/** Lower-case hex of bytes. */
export const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/** `bytes` random bytes, as hex. */
export const randomHex = (bytes: number) => hex(crypto.getRandomValues(new Uint8Array(bytes)));

/** Hex of a SHA digest of a string's UTF-8 bytes. */
export async function digestHex(algorithm: "SHA-256" | "SHA-512", text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest(algorithm, new TextEncoder().encode(text))));
}

/** Hex of HMAC-SHA256(secret, text). */
export async function hmacHex(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text))));
}

/** Compares two strings without leaking where they differ (lengths are not secret here). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

async function importKey(base64: string | undefined, name: string): Promise<SealingKey> {
  let raw: Uint8Array;
  try {
    raw = Uint8Array.from(atob(base64 ?? ""), (ch) => ch.charCodeAt(0));
  } catch {
    raw = new Uint8Array();
  }
  if (raw.length !== 32) {
    console.error(`${name} must be base64 of exactly 32 bytes`);
    throw new ApiError("misconfigured", "The service is misconfigured; see the Worker log.");
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", raw));
  return { id: hex(digest.slice(0, KEY_ID_BYTES)), key: await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]) };
}

export async function keyRing(env: { KYC_ENCRYPTION_KEY?: string; KYC_ENCRYPTION_KEY_PREVIOUS?: string }): Promise<KeyRing> {
  const current = await importKey(env.KYC_ENCRYPTION_KEY, "KYC_ENCRYPTION_KEY");
  const previous = env.KYC_ENCRYPTION_KEY_PREVIOUS ? await importKey(env.KYC_ENCRYPTION_KEY_PREVIOUS, "KYC_ENCRYPTION_KEY_PREVIOUS") : undefined;
  return previous ? { current, previous } : { current };
}

/**
 * AES-256-GCM with the current key and a fresh random IV; `context` (e.g. the object's key) is bound as
 * additional data, so a ciphertext moved elsewhere no longer decrypts. The envelope names its key.
 */
export async function seal(ring: KeyRing, plain: Uint8Array, context: string): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) }, ring.current.key, plain));
  const id = Uint8Array.from(ring.current.id.match(/../g)!.map((h) => parseInt(h, 16)));
  const out = new Uint8Array(MAGIC.length + KEY_ID_BYTES + IV_BYTES + sealed.length);
  out.set(MAGIC);
  out.set(id, MAGIC.length);
  out.set(iv, MAGIC.length + KEY_ID_BYTES);
  out.set(sealed, MAGIC.length + KEY_ID_BYTES + IV_BYTES);
  return out;
}

const decryptWith = async (key: CryptoKey, iv: Uint8Array, body: Uint8Array, context: string) =>
  new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) }, key, body));

/** Opens an envelope with the key it names; an envelope from before key ids is tried with the current, then the previous key. */
export async function open(ring: KeyRing, data: Uint8Array, context: string): Promise<Uint8Array<ArrayBuffer>> {
  const keys = [ring.current, ...(ring.previous ? [ring.previous] : [])];
  if (MAGIC.every((b, i) => data[i] === b)) {
    const id = hex(data.slice(MAGIC.length, MAGIC.length + KEY_ID_BYTES));
    const named = keys.find((k) => k.id === id);
    if (named) {
      const start = MAGIC.length + KEY_ID_BYTES;
      return decryptWith(named.key, data.slice(start, start + IV_BYTES), data.slice(start + IV_BYTES), context);
    }
  }
  let failure: unknown;
  for (const k of keys) {
    try {
      return await decryptWith(k.key, data.slice(0, IV_BYTES), data.slice(IV_BYTES), context);
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

export const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
export const fromBase64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
