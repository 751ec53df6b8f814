/** Address ranges (CIDR) for source-IP allow-lists: parsed once, with configuration, and matched per request. */

export interface AddressRange {
  v6: boolean;
  /** The network's address; only its first `bits` bits count. */
  value: bigint;
  bits: number;
}

/** A comma-separated list of CIDR ranges (a bare address is its own /32 or /128); null if any entry is not one. */
export function parseRanges(list: string): AddressRange[] | null {
  const ranges: AddressRange[] = [];
  for (const entry of list.split(",").map((r) => r.trim()).filter(Boolean)) {
    const [base, bitsText, extra] = entry.split("/");
    const net = parseIp(base ?? "");
    if (!net || extra !== undefined) return null;
    const width = net.v6 ? 128 : 32;
    const bits = bitsText === undefined ? width : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : NaN;
    if (!Number.isInteger(bits) || bits < 0 || bits > width) return null;
    ranges.push({ ...net, bits });
  }
  return ranges;
}

/** Whether an address falls in any of the ranges; an empty list allows all. */
export function inRanges(ip: string | undefined, ranges: readonly AddressRange[]): boolean {
  if (ranges.length === 0) return true;
  const addr = ip ? parseIp(ip) : null;
  if (!addr) return false;
  return ranges.some((net) => {
    if (net.v6 !== addr.v6) return false;
    const shift = BigInt((addr.v6 ? 128 : 32) - net.bits);
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
