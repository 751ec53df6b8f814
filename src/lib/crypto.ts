import { ApiError } from "./errors";

const IV_BYTES = 12;

/** The AES-256-GCM key from KYC_ENCRYPTION_KEY (base64 of 32 random bytes). */
export async function importAesKey(base64: string | undefined): Promise<CryptoKey> {
  let raw: Uint8Array;
  try {
    raw = Uint8Array.from(atob(base64 ?? ""), (ch) => ch.charCodeAt(0));
  } catch {
    raw = new Uint8Array();
  }
  if (raw.length !== 32) {
    console.error("KYC_ENCRYPTION_KEY must be base64 of exactly 32 bytes");
    throw new ApiError("misconfigured", "The service is misconfigured; see the Worker log.");
  }
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

/**
 * Encrypts with a fresh random IV per object; `context` (e.g. the object's key) is bound as
 * additional data, so a ciphertext moved to another key no longer decrypts. Output: iv ‖ ciphertext.
 */
export async function encrypt(key: CryptoKey, plain: Uint8Array, context: string): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) }, key, plain));
  const out = new Uint8Array(IV_BYTES + sealed.length);
  out.set(iv);
  out.set(sealed, IV_BYTES);
  return out;
}

export async function decrypt(key: CryptoKey, data: Uint8Array, context: string): Promise<Uint8Array<ArrayBuffer>> {
  const iv = data.slice(0, IV_BYTES);
  const plain = await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(context) }, key, data.slice(IV_BYTES));
  return new Uint8Array(plain);
}

export const toBase64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
export const fromBase64 = (text: string) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
