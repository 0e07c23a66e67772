// What the HTTP and WebSocket sides of a relay share: the store, auth, limits, metrics, logs.
import { z } from 'zod';
import { MAX_BATCH_EVENTS, MAX_PULL_LIMIT, PAIRING_LIFETIME_SECONDS, type PushResponse, type QuotaName } from '../shared/portable/relay-api.ts';
import { DEFAULT_CLOCK_SKEW_SECONDS } from '../shared/token.ts';
import type { WireEvent } from '../shared/portable/wire.ts';
import type { AuthConfig } from './auth.ts';
import type { Logger } from './log.ts';
import type { Presence } from './presence.ts';
import type { RelayMetrics } from './metrics.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { RelayStore } from './store.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const LimitsSchema = z.strictObject({
  /** Largest HTTP request body. */
  maxRequestBytes: z.int().min(1024).default(4 * MiB),
  /** Most events in one push (HTTP or WebSocket). */
  maxBatchEvents: z.int().min(1).max(MAX_BATCH_EVENTS).default(MAX_BATCH_EVENTS),
  /** Most events in one pull page. */
  maxPullLimit: z.int().min(1).max(MAX_PULL_LIMIT).default(MAX_PULL_LIMIT),
  /** About the most bytes of events in one pull page or one WebSocket events message (at least one event). */
  maxPageBytes: z.int().min(1024).default(1 * MiB),
  /** Largest WebSocket message accepted (larger closes the socket with 1009). */
  wsMaxPayloadBytes: z.int().min(1024).default(4 * MiB),
  /** Above this many unsent bytes on a socket, live events stop being queued and are caught up from storage. */
  wsHighWaterBytes: z.int().min(1024).default(1 * MiB),
  /** Events per catch-up message. */
  // Catch-up pages as large as a pull: each page costs the device one transaction (measured: 1000 halves a 50k-event initial sync).
  wsPageEvents: z.int().min(1).max(MAX_PULL_LIMIT).default(1000),
  /** Client messages received but not yet handled; beyond it the socket is closed (4429). */
  wsMaxPendingMessages: z.int().min(1).default(8),
  /** A socket must authenticate within this time. */
  authTimeoutMs: z.int().min(10).default(5000),
  /** Ping interval; a socket that has not answered the previous ping is dropped. */
  heartbeatMs: z.int().min(10).default(30_000),
  /** Tolerated clock difference on iat and exp. */
  clockSkewSeconds: z.int().min(0).max(300).default(DEFAULT_CLOCK_SKEW_SECONDS),
  /** Token bucket per device (and per identity): burst and sustained requests per second. */
  rateLimitCapacity: z.int().min(1).default(200),
  rateLimitPerSecond: z.number().positive().default(50),
  /** Most WebSocket connections at once. */
  maxConnections: z.int().min(1).default(10_000),

  // ---- Per motebit (one tenant): what it may hold, so it cannot crowd out the others ----
  // Checked in the append's own transaction (stored_*), at enrolment (devices) and at socket auth (sockets).
  /** Events stored for one motebit. A busy agent writes a few hundred a day: a million is decades of use,
   * and a new device's first sync of it is already minutes of work (docs/protocol.md §4). */
  maxStoredEvents: z.int().min(1).default(1_000_000),
  /** Bytes of event bodies stored for one motebit: the million events above at ~1 KiB each. */
  maxStoredBytes: z.int().min(1).default(1 * GiB),
  /** Devices not revoked: a person has a handful; 32 leaves room for old ones never revoked. */
  maxDevicesPerMotebit: z.int().min(1).default(32),
  /** Bytes of one snapshot (docs/protocol.md §7, snapshots): a sealed copy of a motebit's state is about
   * its stored events' size, so the stored-bytes default. Each motebit keeps 2 complete snapshots and one
   * unfinished upload per device. */
  maxSnapshotBytes: z.int().min(1).default(1 * GiB),
  /** Authenticated WebSockets of one motebit (per relay process): two per device at the device cap, since
   * a reconnecting device may hold its old socket until the heartbeat drops it. */
  maxSocketsPerMotebit: z.int().min(1).default(64),

  // ---- Per client address: what anybody may do before being anybody ----
  /** Sockets from one address still waiting to authenticate: an upgrade names a motebit anybody can type,
   * so these count against the address, never a motebit. A socket is in this state for one round trip;
   * 32 covers a household or an office behind one NAT reconnecting at once. */
  wsMaxUnauthenticatedPerAddress: z.int().min(1).default(32),
  /** Sockets still waiting to authenticate, from everybody: a tenth of the default maxConnections (keep it
   * well below it), so unauthenticated sockets can never take the slots authenticated ones need. */
  wsMaxUnauthenticated: z.int().min(1).default(1000),
  /** Token bucket per address for WebSocket auths (each costs a lookup, a signature check and a nonce
   * write): a burst of 100 covers a NAT of devices reconnecting after a relay restart, 10/s sustained. */
  wsAuthCapacity: z.int().min(1).default(100),
  wsAuthPerSecond: z.number().positive().default(10),
  /** Token bucket per address for first enrolments (new motebits): one person makes one; a burst of 10,
   * then 2 a minute, keeps one client from filling the relay with identities (1,000 took 6.6 s before). */
  newMotebitCapacity: z.int().min(1).default(10),
  newMotebitsPerMinute: z.number().positive().default(2),
  /** How long a pairing rendezvous (and so its code) lives (docs/keys.md). */
  pairingLifetimeSeconds: z.int().min(1).default(PAIRING_LIFETIME_SECONDS),
  /** A device's last-seen time and read position are written at most this often (kept in memory between). */
  seenWriteMs: z.int().min(10).default(5_000),
});
export type Limits = z.infer<typeof LimitsSchema>;
export type LimitsInput = z.input<typeof LimitsSchema>;

export interface RelayContext {
  store: RelayStore;
  auth: AuthConfig;
  limits: Limits;
  metrics: RelayMetrics;
  log: Logger;
  /** Per device (and per identity): every authenticated request and WebSocket push. */
  rateLimiter: RateLimiter;
  /** Per client address: WebSocket auths. */
  wsAuthLimiter: RateLimiter;
  sockets: SocketCounts;
  /** When each device was last seen and how far it has read (written at most once per seenWriteMs per device). */
  presence: Presence;
  /** Stores a batch pushed by the authenticated device (its own events, or other members' it re-seeds) and counts it. */
  push(motebitId: string, deviceId: string, events: WireEvent[], transport: 'http' | 'ws'): Promise<PushOutcome>;
}

/** A push is stored (with its per-event results), or refused whole because it would go over a quota. */
export type PushOutcome = { ok: true; response: PushResponse } | { ok: false; quota: QuotaName };

/** What a refusal says, in plain words, for each quota (the device shows its own words; these are for logs and people reading the wire). */
export function quotaMessage(quota: QuotaName, limits: Limits): string {
  switch (quota) {
    case 'stored_events':
      return `this motebit has stored as many events as this relay keeps for one motebit (${limits.maxStoredEvents}); nothing of the push was stored`;
    case 'stored_bytes':
      return `this motebit has stored as much data as this relay keeps for one motebit (${limits.maxStoredBytes} bytes); nothing of the push was stored`;
    case 'devices':
      return `this motebit has as many devices as this relay allows (${limits.maxDevicesPerMotebit}); revoke one no longer used`;
    case 'sockets':
      return `this motebit has as many open connections as this relay allows (${limits.maxSocketsPerMotebit})`;
    case 'snapshot_bytes':
      return `a snapshot is at most ${limits.maxSnapshotBytes} bytes on this relay; nothing of it was stored`;
  }
}

export async function pushBatch(context: Pick<RelayContext, 'store' | 'metrics' | 'limits'>, motebitId: string, deviceId: string, events: WireEvent[], transport: 'http' | 'ws'): Promise<PushOutcome> {
  const stop = context.metrics.pushLatency.startTimer({ transport });
  const quota = { maxEvents: context.limits.maxStoredEvents, maxBytes: context.limits.maxStoredBytes };
  const { results, head, epoch, refused } = await context.store.appendBatch(motebitId, events, quota);
  stop();
  if (refused) {
    context.metrics.quotaRefusal(refused);
    return { ok: false, quota: refused };
  }
  let stored = 0;
  let duplicate = 0;
  let rejected = 0;
  for (const result of results) {
    if (result.status === 'stored') stored++;
    else if (result.status === 'duplicate') duplicate++;
    else rejected++;
  }
  if (stored) context.metrics.eventsIn.inc({ result: 'stored' }, stored);
  if (duplicate) context.metrics.eventsIn.inc({ result: 'duplicate' }, duplicate);
  if (rejected) context.metrics.eventsIn.inc({ result: 'rejected' }, rejected);
  const relayed = events.filter((event) => event.device_id !== deviceId).length;
  if (relayed) context.metrics.eventsRelayed.inc(relayed);
  return { ok: true, response: { results, stored, duplicate, rejected, head, epoch } };
}

/** Counts per key that forget a key at zero, so memory follows what is open now, not what ever was. */
class Tally {
  readonly #counts = new Map<string, number>();
  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }
  add(key: string): void {
    this.#counts.set(key, this.get(key) + 1);
  }
  remove(key: string): void {
    const left = this.get(key) - 1;
    if (left > 0) this.#counts.set(key, left);
    else this.#counts.delete(key);
  }
}

/**
 * Who holds the relay's WebSockets: those still authenticating, per client address and in all, and
 * authenticated ones per motebit. Only an authenticated socket counts against a motebit: an upgrade names
 * its motebit in a URL anybody can type.
 */
export class SocketCounts {
  readonly #pendingByAddress = new Tally();
  #pending = 0;
  readonly #byMotebit = new Tally();

  /** Whether a new socket from `address` may wait for auth: 'ok', or which cap it would go over. */
  canWait(address: string, limits: Limits): 'ok' | 'address' | 'global' {
    if (this.#pendingByAddress.get(address) >= limits.wsMaxUnauthenticatedPerAddress) return 'address';
    if (this.#pending >= limits.wsMaxUnauthenticated) return 'global';
    return 'ok';
  }

  waiting(address: string): void {
    this.#pendingByAddress.add(address);
    this.#pending++;
  }

  /** A socket stopped waiting for auth (authenticated, refused or closed). */
  doneWaiting(address: string): void {
    this.#pendingByAddress.remove(address);
    this.#pending--;
  }

  /** Counts an authenticated socket against its motebit; false (and not counted) when the motebit is at its quota. */
  admit(motebitId: string, limits: Limits): boolean {
    if (this.#byMotebit.get(motebitId) >= limits.maxSocketsPerMotebit) return false;
    this.#byMotebit.add(motebitId);
    return true;
  }

  release(motebitId: string): void {
    this.#byMotebit.remove(motebitId);
  }
}
