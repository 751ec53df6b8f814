/** Gateway authenticity checks (SPEC §6.2, §6.3, §7): pure functions over the strings as received. */
import { constantTimeEqual, digestHex } from "../lib/crypto";
import { inRanges, parseRanges } from "../lib/cidr";

export const sha512Hex = (text: string) => digestHex("SHA-512", text);
export { constantTimeEqual };

/** Midtrans: signature_key = SHA-512(order_id + status_code + gross_amount + server key), exactly as sent. */
export async function verifyMidtransSignature(
  n: { order_id?: unknown; status_code?: unknown; gross_amount?: unknown; signature_key?: unknown },
  serverKey: string,
): Promise<boolean> {
  const { order_id, status_code, gross_amount, signature_key } = n;
  if (typeof order_id !== "string" || typeof status_code !== "string" || typeof gross_amount !== "string" || typeof signature_key !== "string") return false;
  const expected = await sha512Hex(order_id + status_code + gross_amount + serverKey);
  return constantTimeEqual(expected, signature_key.toLowerCase());
}

/** Iris: Iris-Signature = SHA-512(raw body + merchant key). */
export async function verifyIrisSignature(rawBody: string, signature: string | undefined, merchantKey: string): Promise<boolean> {
  if (!signature) return false;
  return constantTimeEqual(await sha512Hex(rawBody + merchantKey), signature.toLowerCase());
}

/** Xendit: the x-callback-token header equals the configured token. */
export function verifyXenditToken(header: string | undefined, token: string): boolean {
  return header !== undefined && token.length > 0 && constantTimeEqual(header, token);
}

/** Whether an address falls in a comma-separated CIDR allow-list (an empty list allows all; an unparseable one allows none). */
export function ipAllowed(ip: string | undefined, allowList: string): boolean {
  const ranges = parseRanges(allowList);
  return ranges !== null && inRanges(ip, ranges);
}
