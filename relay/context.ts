// What the HTTP and WebSocket sides of a relay share: the store, auth, limits, metrics, logs.
import { z } from 'zod';
import { MAX_BATCH_EVENTS, MAX_PULL_LIMIT, type PushResponse } from '../shared/relay-api.ts';
import { DEFAULT_CLOCK_SKEW_SECONDS } from '../shared/token.ts';
import type { WireEvent } from '../shared/wire.ts';
import type { AuthConfig } from './auth.ts';
import type { Logger } from './log.ts';
import type { RelayMetrics } from './metrics.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { RelayStore } from './store.ts';

const MiB = 1024 * 1024;

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
});
export type Limits = z.infer<typeof LimitsSchema>;
export type LimitsInput = z.input<typeof LimitsSchema>;

export interface RelayContext {
  store: RelayStore;
  auth: AuthConfig;
  limits: Limits;
  metrics: RelayMetrics;
  log: Logger;
  rateLimiter: RateLimiter;
  /** Stores a batch pushed by the authenticated device (its own events, or other members' it re-seeds) and counts it. */
  push(motebitId: string, deviceId: string, events: WireEvent[], transport: 'http' | 'ws'): Promise<PushResponse>;
}

export async function pushBatch(context: Pick<RelayContext, 'store' | 'metrics'>, motebitId: string, deviceId: string, events: WireEvent[], transport: 'http' | 'ws'): Promise<PushResponse> {
  const stop = context.metrics.pushLatency.startTimer({ transport });
  const { results, head, epoch } = await context.store.appendBatch(motebitId, events);
  stop();
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
  return { results, stored, duplicate, rejected, head, epoch };
}
