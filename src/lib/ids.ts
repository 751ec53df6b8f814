const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID: 48-bit millisecond time + 80 random bits, Crockford base32, lexicographically sortable. */
export function newId(now: number = Date.now()): string {
  let time = "";
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (let i = 0; i < 16; i++) rand += CROCKFORD[random[i]! % 32];
  return time + rand;
}

/** The smallest ULID of millisecond `ms`: ids of rows created in [a, b) lie in [idFloor(a), idFloor(b)). */
export function idFloor(ms: number): string {
  return newId(ms).slice(0, 10) + "0".repeat(16);
}

/**
 * The least id above `id` (its random part plus one): it sorts after `id` and the rows derived from it
 * (`<id>S0`, debt settlements) and before any id of a later millisecond. For a transaction that follows
 * another in the same batch and must be listed after it.
 */
export function idAfter(id: string): string {
  const digits = [...id];
  for (let i = digits.length - 1; i >= 0; i--) {
    const next = CROCKFORD.indexOf(digits[i]!) + 1;
    if (next < CROCKFORD.length) {
      digits[i] = CROCKFORD[next]!;
      return digits.join("");
    }
    digits[i] = CROCKFORD[0]!;
  }
  throw new RangeError(`no id after ${id}`);
}
