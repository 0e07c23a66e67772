// The Transport over REST: push is one POST, catchUp pulls pages from the cursor. Nothing is live, so
// nothing can go down between calls; each call fails on its own with a classified TransportError.
import { MAX_BATCH_EVENTS, MAX_PULL_LIMIT, type PushResult } from '../../shared/portable/relay-api.ts';
import type { StoredWireEvent, WireEvent } from '../../shared/portable/wire.ts';
import { RelayClient, type RelayClientOptions } from './relay-client.ts';
import { EpochBinding, TransportError, type EventSink, type Transport } from './transport.ts';

export class HttpTransport implements Transport {
  readonly kind = 'http' as const;
  /** Concurrent requests may be handled in any order: one push at a time. */
  readonly pushesInFlight = 1;
  readonly client: RelayClient;
  readonly #pageLimit: number;
  #sink: EventSink | undefined;
  #cursor = 0;
  #closed = false;
  #binding = new EpochBinding();
  /** catchUp calls run one after another so pages reach the sink once and in order. */
  #catchingUp: Promise<number> | undefined;

  constructor(client: RelayClient | RelayClientOptions, options: { pageLimit?: number } = {}) {
    this.client = client instanceof RelayClient ? client : new RelayClient(client);
    this.#pageLimit = options.pageLimit ?? MAX_PULL_LIMIT;
  }

  /** The relay sequence up to which events have been delivered to the sink. */
  get cursor(): number {
    return this.#cursor;
  }

  get epoch(): string | null {
    return this.#binding.epoch;
  }

  async open(after: number, sink: EventSink, epoch: string | null = null): Promise<void> {
    if (this.#closed) throw new TransportError('network', 'the transport is closed');
    if (this.#sink) throw new Error('the transport is already open');
    if (!Number.isSafeInteger(after) || after < 0) throw new RangeError('after is a sequence number');
    await this.client.health();
    this.#cursor = after;
    this.#binding = new EpochBinding(epoch);
    this.#sink = sink;
  }

  async push(events: readonly WireEvent[]): Promise<PushResult[]> {
    this.#check();
    if (events.length === 0) return [];
    if (events.length > MAX_BATCH_EVENTS) throw new RangeError(`a push carries at most ${MAX_BATCH_EVENTS} events`);
    const response = await this.client.push(events);
    checkResults(response.results, events);
    this.#binding.check(response.epoch);
    return response.results;
  }

  catchUp(): Promise<number> {
    try {
      this.#check();
    } catch (error) {
      return Promise.reject(error);
    }
    const previous = this.#catchingUp ?? Promise.resolve(this.#cursor);
    const next = previous.catch(() => this.#cursor).then(() => this.#pullAll());
    this.#catchingUp = next;
    return next;
  }

  onDown(_listener: (error: TransportError) => void): void {
    // Nothing is live over HTTP: every failure is the failure of a call, reported by that call.
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#catchingUp?.catch(() => undefined);
  }

  #check(): void {
    if (this.#closed) throw new TransportError('network', 'the transport is closed');
    if (!this.#sink) throw new Error('open the transport first');
  }

  async #pullAll(): Promise<number> {
    for (;;) {
      if (this.#closed) throw new TransportError('network', 'the transport is closed');
      const sink = this.#sink;
      if (!sink) throw new Error('open the transport first');
      const page = await this.client.pull(this.#cursor, this.#pageLimit);
      this.#binding.check(page.epoch);
      checkOrder(page.events, this.#cursor);
      if (page.events.length > 0) {
        if (this.#closed) throw new TransportError('network', 'the transport is closed');
        await sink(page.events);
        this.#cursor = page.events.at(-1)?.seq ?? this.#cursor;
      }
      if (!page.more) return this.#cursor;
      if (page.events.length === 0) throw new TransportError('protocol', 'the relay said more events exist but sent none');
    }
  }
}

/** Events from the relay come strictly after the cursor, in increasing seq order. */
export function checkOrder(events: readonly StoredWireEvent[], cursor: number): void {
  let previous = cursor;
  for (const event of events) {
    if (event.seq <= previous) throw new TransportError('protocol', `the relay sent seq ${event.seq} after ${previous}`);
    previous = event.seq;
  }
}

/** The relay answers each pushed event, in order. */
export function checkResults(results: readonly PushResult[], events: readonly WireEvent[]): void {
  if (results.length !== events.length || results.some((result, index) => result.event_id !== events[index]?.event_id)) {
    throw new TransportError('protocol', `the relay answered ${results.length} results for ${events.length} events, or not in order`);
  }
}
