// Prometheus metrics, one registry per relay (so several relays in one process, as in tests, keep apart).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AUTH_FAILURE_REASONS, QUOTA_NAMES, type AuthFailureReason, type QuotaName } from '../shared/portable/relay-api.ts';

/** Which token bucket refused: per device (or identity), WebSocket auths per address, new motebits per address. */
export const RATE_LIMITS = ['device', 'ws_auth', 'new_motebit', 'pairing'] as const;
export type RateLimitName = (typeof RATE_LIMITS)[number];

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class RelayMetrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({ name: 'motebit_relay_ws_connections', help: 'Open WebSocket connections (authenticated or not)', registers: [this.registry] });
  readonly eventsIn = new Counter({
    name: 'motebit_relay_events_in_total',
    help: 'Events received in pushes, by result (stored, duplicate, rejected)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly eventsRelayed = new Counter({
    name: 'motebit_relay_events_relayed_total',
    help: "Events pushed by a member on another device's behalf (re-seeding a relay that lost them)",
    registers: [this.registry],
  });
  readonly eventsOut = new Counter({
    name: 'motebit_relay_events_out_total',
    help: 'Events sent to devices, by transport (http pull, ws)',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  /** eventsOut{transport="ws"}, bound once: it is counted for every socket of every fan-out. */
  readonly eventsOutWs = this.eventsOut.labels({ transport: 'ws' });
  readonly pushLatency = new Histogram({
    name: 'motebit_relay_push_duration_seconds',
    help: 'Time to store a pushed batch, by transport',
    labelNames: ['transport'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly pullLatency = new Histogram({
    name: 'motebit_relay_pull_duration_seconds',
    help: 'Time to serve a pull over HTTP',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'motebit_relay_auth_failures_total',
    help: 'Refused tokens, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly httpResponses = new Counter({
    name: 'motebit_relay_http_responses_total',
    help: 'HTTP responses, by status code',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly wsBackpressure = new Counter({
    name: 'motebit_relay_ws_backpressure_total',
    help: 'Times a socket fell behind and was switched to catch-up from storage',
    registers: [this.registry],
  });

  readonly quotaRefusals = new Counter({
    name: 'motebit_relay_quota_refusals_total',
    help: 'Requests, pushes and sockets refused because a motebit is at a quota, by quota',
    labelNames: ['quota'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'motebit_relay_rate_limited_total',
    help: 'Requests and sockets refused by a token bucket, by limit (device, ws_auth, new_motebit, pairing)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly upgradesRefused = new Counter({
    name: 'motebit_relay_ws_upgrades_refused_total',
    help: 'WebSocket upgrades refused for lack of room, by cap (connections, unauthenticated, unauthenticated_per_address)',
    labelNames: ['cap'] as const,
    registers: [this.registry],
  });

  constructor() {
    // Every label shows up (at 0) from the start, so dashboards and alerts need no special case.
    for (const reason of AUTH_FAILURE_REASONS) this.authFailures.inc({ reason }, 0);
    for (const quota of QUOTA_NAMES) this.quotaRefusals.inc({ quota }, 0);
    for (const limit of RATE_LIMITS) this.rateLimited.inc({ limit }, 0);
    for (const cap of ['connections', 'unauthenticated', 'unauthenticated_per_address']) this.upgradesRefused.inc({ cap }, 0);
  }

  authFailure(reason: AuthFailureReason): void {
    this.authFailures.inc({ reason });
  }

  quotaRefusal(quota: QuotaName): void {
    this.quotaRefusals.inc({ quota });
  }

  rateLimit(limit: RateLimitName): void {
    this.rateLimited.inc({ limit });
  }
}
