// Token buckets per key (a device, or a motebit identity): `capacity` requests at once, refilled at
// `refillPerSecond`. Bounded memory: a bucket that has refilled to full is forgotten.
export interface RateLimitOptions {
  capacity: number;
  refillPerSecond: number;
}

interface Bucket {
  tokens: number;
  updated: number;
}

const MAX_BUCKETS = 100_000;

export class RateLimiter {
  readonly #options: RateLimitOptions;
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;

  constructor(options: RateLimitOptions, now: () => number = () => performance.now()) {
    this.#options = options;
    this.#now = now;
  }

  /** Takes one token; returns 0 when allowed, otherwise the seconds to wait (at least 1). */
  take(key: string): number {
    const now = this.#now();
    const { capacity, refillPerSecond } = this.#options;
    let bucket = this.#buckets.get(key);
    if (bucket) {
      bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.updated) / 1000) * refillPerSecond);
      bucket.updated = now;
    } else {
      if (this.#buckets.size >= MAX_BUCKETS) this.prune();
      bucket = { tokens: capacity, updated: now };
      this.#buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerSecond));
  }

  /** Forgets buckets that are full again (they behave exactly like a new one). */
  prune(): void {
    const now = this.#now();
    const { capacity, refillPerSecond } = this.#options;
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.updated) / 1000) * refillPerSecond >= capacity) this.#buckets.delete(key);
    }
  }
}
