/** Gateway authenticity checks (SPEC §6.2, §6.3, §7): pure functions over the strings as received. */
import { constantTimeEqual, digestHex } from "../lib/crypto";

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

/** Whether an IPv4/IPv6 address falls in any CIDR of a comma-separated allow-list; an empty list allows all. */
export function ipAllowed(ip: string | undefined, allowList: string): boolean {
  const ranges = allowList.split(",").map((r) => r.trim()).filter(Boolean);
  if (ranges.length === 0) return true;
  if (!ip) return false;
  const addr = parseIp(ip);
  if (!addr) return false;
  return ranges.some((range) => {
    const [base, bitsText] = range.split("/");
    const net = parseIp(base ?? "");
    if (!net || net.v6 !== addr.v6) return false;
    const width = addr.v6 ? 128 : 32;
    const bits = bitsText === undefined ? width : Number(bitsText);
    if (!Number.isInteger(bits) || bits < 0 || bits > width) return false;
    const shift = BigInt(width - bits);
    return addr.value >> shift === net.value >> shift;
  });
}

function parseIp(ip: string): { v6: boolean; value: bigint } | null {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return null;
    return { v6: false, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (!/^[0-9a-fA-F:]+$/.test(ip) || !ip.includes(":")) return null;
  const [head = "", tail] = ip.split("::");
  if (ip.split("::").length > 2) return null;
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const missing = 8 - h.length - t.length;
  if (tail === undefined ? h.length !== 8 : missing < 1) return null;
  const groups = [...h, ...Array(tail === undefined ? 0 : missing).fill("0"), ...t];
  if (groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  return { v6: true, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}
