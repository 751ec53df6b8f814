/**
 * Per-isolate memory of the terms a value-moving request reads before its batch: a content item's price
 * and creator, a gift's price, a seller's tier, a referral code's owner, an order's frozen shares, a boost
 * level's demand and when a stream's boosts end. The batch is built from the remembered terms and carries a
 * guard that refuses it at commit if they changed; the request then forgets them, reads them fresh and tries
 * again. So in steady state such a request costs one D1 round trip, and nothing is decided from a stale
 * read: a stale entry costs one refused batch, never a wrong movement. Any refusal of remembered terms,
 * before the batch or by it, is decided again on fresh ones (the callers' retry loops).
 * Entries are bounded (the oldest is dropped first) and live as long as the isolate.
 */
export class TermsCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly max: number) {}

  /** The remembered terms, or `load`ed ones (remembered when found). `fresh` skips the memory. */
  async get(key: string, load: () => Promise<V | undefined>, fresh = false): Promise<{ value: V | undefined; remembered: boolean }> {
    const hit = fresh ? undefined : this.entries.get(key);
    if (hit !== undefined) return { value: hit, remembered: true };
    const value = await load();
    this.set(key, value);
    return { value, remembered: false };
  }

  /** The remembered terms, if any (nothing is read). */
  peek(key: string): V | undefined {
    return this.entries.get(key);
  }

  set(key: string, value: V | undefined): void {
    this.entries.delete(key);
    if (value === undefined) return;
    this.entries.set(key, value);
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}
