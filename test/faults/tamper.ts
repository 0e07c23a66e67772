// What a dishonest relay does to ONE pull page (GET /v1/motebits/{id}/events): flip one bit inside one
// event's body, swap two events' bodies, drop a middle event, or inject a copy of an event at another seq.
// Pure functions on the parsed page; the front proxy applies one of them once.
import type { Prng } from './prng.ts';

export const TAMPER_VARIANTS = ['flip', 'swap', 'drop', 'inject'] as const;
export type TamperVariant = (typeof TAMPER_VARIANTS)[number];

interface PageEvent {
  seq: number;
  event_id: string;
  device_id?: unknown;
  body: string;
  [field: string]: unknown;
}

interface Page {
  events: PageEvent[];
  next: number;
  more: boolean;
  [field: string]: unknown;
}

export interface Tampered {
  readonly page: Page;
  readonly detail: string;
}

/** The fewest events a page needs for each variant. */
export const MIN_EVENTS: Record<TamperVariant, number> = { flip: 1, swap: 2, drop: 3, inject: 1 };

/** The device a request's token was signed by (the token's claims are base64url JSON before the dot). */
export function signerOf(authorization: string | undefined): string | null {
  const token = /^Motebit\s+([A-Za-z0-9_-]+)\./.exec(authorization ?? '')?.[1];
  if (!token) return null;
  try {
    const claims = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { signer?: unknown };
    return typeof claims.signer === 'string' ? claims.signer : null;
  } catch {
    return null;
  }
}

function isPage(value: unknown): value is Page {
  if (typeof value !== 'object' || value === null) return false;
  const page = value as Partial<Page>;
  return (
    Array.isArray(page.events) &&
    typeof page.next === 'number' &&
    page.events.every((e) => typeof e === 'object' && e !== null && typeof e.seq === 'number' && typeof e.body === 'string' && typeof e.event_id === 'string')
  );
}

/**
 * The tampered page, or null when this page cannot carry the variant (the proxy waits for another). Only
 * events written by another device than the puller are touched: a device skips its own events, so
 * tampering with one of those would prove nothing.
 */
export function tamperPage(value: unknown, variant: TamperVariant, prng: Prng, puller: string | null): Tampered | null {
  if (!isPage(value) || value.events.length < MIN_EVENTS[variant]) return null;
  const events = value.events.map((e) => ({ ...e }));
  const page: Page = { ...value, events };
  const foreign = events.map((e, i) => (e.device_id !== puller ? i : -1)).filter((i) => i >= 0);
  const middle = foreign.filter((i) => i > 0 && i < events.length - 1);
  if (foreign.length === 0 || (variant === 'drop' && middle.length === 0)) return null;
  switch (variant) {
    case 'flip': {
      const i = prng.pick(foreign);
      const bytes = Buffer.from(events[i]!.body, 'base64url');
      if (bytes.length === 0) return null;
      const bit = prng.int(0, bytes.length * 8 - 1);
      bytes[bit >> 3] = bytes[bit >> 3]! ^ (1 << (bit & 7));
      events[i]!.body = bytes.toString('base64url');
      return { page, detail: `flipped bit ${bit} of the body of seq ${events[i]!.seq}` };
    }
    case 'swap': {
      const i = prng.pick(foreign);
      let j = prng.int(0, events.length - 2);
      if (j >= i) j++;
      if (events[i]!.body === events[j]!.body) return null;
      [events[i]!.body, events[j]!.body] = [events[j]!.body, events[i]!.body];
      return { page, detail: `swapped the bodies of seq ${events[i]!.seq} and ${events[j]!.seq}` };
    }
    case 'drop': {
      const i = prng.pick(middle);
      const [dropped] = events.splice(i, 1);
      return { page, detail: `dropped seq ${dropped!.seq} (a middle event of ${value.events.length})` };
    }
    case 'inject': {
      // A copy of an event of this page, served once more at the seq right after the page's last one, and
      // the cursor moved on to it: a device that takes it at its word skips the real event at that seq.
      const i = prng.pick(foreign);
      const last = events.at(-1)!.seq;
      events.push({ ...events[i]!, seq: last + 1 });
      page.next = last + 1;
      return { page, detail: `injected a copy of seq ${events[i]!.seq} (${events[i]!.event_id}) at seq ${last + 1}` };
    }
  }
}
