// One device's WebSocket (docs/protocol.md §7, "WebSocket"): auth first, then catch-up from its cursor,
// then live events, pushes with acks, in-band re-auth. Delivery never buffers without bound: while the
// socket has more than wsHighWaterBytes unsent, nothing more is queued on it; the socket is later caught
// up from storage by its cursor, one page at a time. Until it authenticates a socket counts against its
// client's address (SocketCounts); from then on against its motebit, whose quota it may not exceed.
//
// Fan-out is encoded once: a live notification's 'events' message is serialised the first time a socket
// sends it and the same bytes go to every other socket that sends it as it is (the store hands one events
// array to every subscriber). A send creates no Promise or closure; a connection that must wait for room
// on its socket has one waiter, woken by the write callback all its sends share.
import type { RawData, WebSocket } from 'ws';
import { z } from 'zod';
import { CLOSE_CODES, WsClientMessageSchema, type ErrorCode, type WsClientMessage, type QuotaName, type WsServerMessage } from '../shared/portable/relay-api.ts';
import { EMPTY_BODY_SHA256, WS_METHOD, nowSeconds, wsPath } from '../shared/token.ts';
import type { StoredWireEvent } from '../shared/portable/wire.ts';
import { AuthError, verifyToken } from './auth.ts';
import { quotaMessage, type RelayContext } from './context.ts';
import { EVENT_OVERHEAD_BYTES, type Notification } from './store.ts';

export interface ConnectionStats {
  motebitId: string;
  deviceId: string | null;
  cursor: number;
  bufferedAmount: number;
  /** The most unsent bytes ever seen on this socket right after the relay queued something. */
  maxBufferedAmount: number;
  catchingUp: boolean;
}

const eventsBytes = (events: readonly StoredWireEvent[]): number => events.reduce((sum, event) => sum + event.body.length + EVENT_OVERHEAD_BYTES, 0);

/** A text frame: the wire format is JSON text whether it is handed to ws as a string or as its UTF-8 bytes. */
const TEXT = { binary: false } as const;

/** A live notification's events as every socket sends them; `data` is encoded by the first socket that sends it. */
interface SharedEvents {
  /** eventsBytes(events): what the page counts against maxPageBytes. */
  readonly pageBytes: number;
  /** UTF-8 of JSON.stringify({ type: 'events', events }): byte for byte the text a socket sent before. */
  data: Buffer | undefined;
}

// Keyed by a notification's events array: the store hands the same array to every subscriber, so the
// first socket encodes it and the others send the same bytes. An entry lives as long as its array. The
// arrays are never changed once handed out (a store builds a new one for each notification).
const shared = new WeakMap<readonly StoredWireEvent[], SharedEvents>();

function sharedEvents(events: readonly StoredWireEvent[]): SharedEvents {
  let entry = shared.get(events);
  if (!entry) {
    entry = { pageBytes: eventsBytes(events), data: undefined };
    shared.set(events, entry);
  }
  return entry;
}

function eventsMessage(events: readonly StoredWireEvent[]): string {
  const message: WsServerMessage = { type: 'events', events: events as StoredWireEvent[] };
  return JSON.stringify(message);
}

/**
 * How many of one socket's pushes may be in flight at once when the store applies appends in call order:
 * enough for a group commit to gather a device's queued batches. They count against wsMaxPendingMessages
 * (#receive), so a socket holds no more messages than it did without pipelining.
 */
const MAX_PIPELINED_PUSHES = 4;

/**
 * What the 'limits' message tells a device: how many pushes it may send before the first is answered. They
 * and one more message (a reauth) must fit in wsMaxPendingMessages, or the socket would be closed as
 * overloaded. A relay that handles pushes one at a time still gains: the next push is already there.
 */
export function pushesInFlight(maxPendingMessages: number): number {
  return Math.max(1, Math.min(MAX_PIPELINED_PUSHES, maxPendingMessages - 1));
}

export class Connection {
  readonly motebitId: string;
  /** The client's address (client-address.ts): what it counts against until it authenticates. */
  readonly #address: string;
  readonly #ws: WebSocket;
  readonly #ctx: RelayContext;
  #state: 'auth' | 'open' | 'closed' = 'auth';
  // What this socket is counted as, until the socket itself is gone (not merely asked to close: a peer
  // that never finishes the close handshake still holds it).
  #waitingForAuth = true;
  #admitted = false;
  #deviceId: string | null = null;
  #cursor = 0;
  #alive = true;
  #authTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  // Incoming messages are handled in order (a socket's pushes pipelined: #handleAll); at most
  // wsMaxPendingMessages wait.
  readonly #pending: RawData[] = [];
  #handling = false;
  /** Pushes started and not yet answered, oldest first (pipelined: see #handleAll); each leaves when answered. */
  readonly #inFlight = new Set<Promise<void>>();
  // Delivery: `#pumping` while catching up from storage; `#dirty` when news came in meanwhile.
  #pumping = false;
  #dirty = false;
  #caughtUpSent = false;
  #maxBuffered = 0;
  // Waiting for room on the socket: one waiter per connection (not one per message), woken by #flushed.
  #room: Promise<void> | undefined;
  #wakeRoom: (() => void) | undefined;
  /** The write callback every send of this connection shares: once written out, maybe there is room again. */
  readonly #flushed = (): void => {
    if (this.#wakeRoom && (this.#state === 'closed' || this.#ws.bufferedAmount <= this.#ctx.limits.wsHighWaterBytes)) this.#roomAgain();
  };

  constructor(ws: WebSocket, motebitId: string, address: string, context: RelayContext) {
    this.#ws = ws;
    this.motebitId = motebitId;
    this.#address = address;
    this.#ctx = context;
    context.metrics.connections.inc();
    context.sockets.waiting(address);
    this.#authTimer = setTimeout(() => this.close(CLOSE_CODES.authTimeout, 'auth_timeout'), context.limits.authTimeoutMs);
    ws.on('message', (data, isBinary) => this.#receive(data, isBinary));
    ws.on('pong', () => {
      this.#alive = true;
      if (this.#deviceId !== null && this.#state === 'open') context.presence.seen(motebitId, this.#deviceId);
    });
    ws.on('error', (error) => context.log.debug({ motebit_id: motebitId, err: error.message }, 'websocket error'));
    ws.on('close', () => this.#closed());
  }

  get deviceId(): string | null {
    return this.#deviceId;
  }

  stats(): ConnectionStats {
    return {
      motebitId: this.motebitId,
      deviceId: this.#deviceId,
      cursor: this.#cursor,
      bufferedAmount: this.#ws.bufferedAmount,
      maxBufferedAmount: this.#maxBuffered,
      catchingUp: this.#pumping,
    };
  }

  /** Heartbeat tick: drops a peer that did not answer the previous ping. */
  heartbeat(): void {
    if (this.#state === 'closed') return;
    if (!this.#alive) {
      this.#ctx.log.info({ motebit_id: this.motebitId, device_id: this.#deviceId }, 'websocket peer did not answer ping; dropped');
      this.#ws.terminate();
      return;
    }
    this.#alive = false;
    this.#ws.ping();
  }

  /** Calls back once the socket is closed (at once if it already is). */
  onClosed(callback: () => void): void {
    if (this.#ws.readyState === this.#ws.CLOSED) callback();
    else this.#ws.once('close', () => callback());
  }

  close(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#stop();
    this.#ws.close(code, reason);
  }

  #stop(): void {
    this.#state = 'closed';
    clearTimeout(this.#authTimer);
    clearTimeout(this.#expiryTimer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#pending.length = 0;
    this.#roomAgain(); // whoever waits for room sees the connection closed
  }

  #closed(): void {
    if (this.#state !== 'closed') this.#stop();
    this.#ctx.metrics.connections.dec();
    if (this.#waitingForAuth) this.#ctx.sockets.doneWaiting(this.#address);
    if (this.#admitted) this.#ctx.sockets.release(this.motebitId);
    this.#waitingForAuth = false;
    this.#admitted = false;
  }

  #send(message: WsServerMessage): void {
    this.#sendData(JSON.stringify(message));
  }

  #sendData(data: string | Buffer): void {
    if (this.#state === 'closed') return;
    this.#ws.send(data, TEXT, this.#flushed);
    this.#maxBuffered = Math.max(this.#maxBuffered, this.#ws.bufferedAmount);
  }

  /** Sends `events` (in seq order, the first right after the cursor) as one 'events' message, given as `data` when already encoded. */
  #sendEvents(events: readonly StoredWireEvent[], data?: Buffer): void {
    const last = events.at(-1);
    if (!last) return;
    this.#sendData(data ?? eventsMessage(events));
    this.#cursor = last.seq;
    if (this.#deviceId !== null) this.#ctx.presence.seen(this.motebitId, this.#deviceId, last.seq);
    this.#ctx.metrics.eventsOutWs.inc(events.length);
  }

  #aboveHighWater(): boolean {
    return this.#ws.bufferedAmount > this.#ctx.limits.wsHighWaterBytes;
  }

  /**
   * Resolves once the socket is back at or below the high-water mark, or the connection is closed. Every
   * caller shares one waiter; it is woken by the write callback of whichever send brings the socket down.
   */
  #roomOnSocket(): Promise<void> {
    if (this.#state === 'closed' || !this.#aboveHighWater()) return Promise.resolve();
    this.#room ??= new Promise<void>((resolve) => {
      this.#wakeRoom = resolve;
    });
    return this.#room;
  }

  #roomAgain(): void {
    const wake = this.#wakeRoom;
    this.#room = undefined;
    this.#wakeRoom = undefined;
    wake?.();
  }

  #error(code: ErrorCode, message: string, id?: string, extra: { retry_after?: number; quota?: QuotaName } = {}): void {
    this.#send({ type: 'error', code, message, ...(id === undefined ? {} : { id }), ...extra });
  }

  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  // ---- incoming ----

  #receive(data: RawData, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    this.#alive = true;
    if (isBinary) {
      this.close(CLOSE_CODES.protocolError, 'binary messages are not part of the protocol');
      return;
    }
    // Pushes in flight count too: a socket holds at most this many messages, raw or parsed.
    if (this.#pending.length + this.#inFlight.size >= this.#ctx.limits.wsMaxPendingMessages) {
      this.#ctx.log.warn({ motebit_id: this.motebitId, device_id: this.#deviceId }, 'websocket overloaded; closed');
      this.close(CLOSE_CODES.overloaded, 'overloaded');
      return;
    }
    this.#pending.push(data);
    if (!this.#handling) void this.#handleAll();
  }

  async #handleAll(): Promise<void> {
    this.#handling = true;
    try {
      while (this.#state !== 'closed') {
        const data = this.#pending.shift();
        if (data === undefined) break;
        // Do not answer (and so not queue more output) for a peer that is not reading.
        if (this.#aboveHighWater()) await this.#roomOnSocket();
        if (this.#isClosed()) break; // closed while waiting: drop the message, do nothing for it
        try {
          const message = this.#parse(data);
          if (typeof message === 'function') {
            await this.#answered(); // a refusal is an answer too: after those of the pushes before it
            message();
            continue;
          }
          if (message.type === 'push' && this.#state === 'open' && this.#ctx.store.appendsInCallOrder) {
            // Pipelined: the store applies (and answers) appends in the order they were made, so the next
            // push is parsed and queued while this one commits; a group commit then holds several of them,
            // and its news reaches the receivers as one message. Its answer waits for the one before it.
            const turn = [...this.#inFlight].at(-1) ?? Promise.resolve();
            const answered: Promise<void> = this.#caught(this.#push(message.id, message.events, turn)).finally(() => this.#inFlight.delete(answered));
            this.#inFlight.add(answered);
            if (this.#inFlight.size >= MAX_PIPELINED_PUSHES) await this.#oldestAnswered();
            continue;
          }
          await this.#answered(); // anything else waits until the pushes before it are answered
          await this.#dispatch(message);
        } catch (error) {
          this.#failed(error);
        }
      }
    } finally {
      this.#handling = false;
    }
  }

  /** Resolves once every pipelined push is answered. */
  async #answered(): Promise<void> {
    while (this.#inFlight.size > 0) await this.#oldestAnswered();
  }

  async #oldestAnswered(): Promise<void> {
    const [oldest] = this.#inFlight;
    if (oldest) await oldest;
  }

  #caught(work: Promise<void>): Promise<void> {
    return work.catch((error: unknown) => this.#failed(error));
  }

  #failed(error: unknown): void {
    this.#ctx.log.error({ motebit_id: this.motebitId, err: error instanceof Error ? error.message : String(error) }, 'websocket message failed');
    this.#error('internal', 'the relay could not handle the message');
  }

  /** The message, or the refusal to make (an answer, or closing the socket before auth). */
  #parse(data: RawData): WsClientMessage | (() => void) {
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data as Buffer));
    } catch {
      return () => this.#refuse('invalid_json', 'a message is one JSON object');
    }
    if (typeof json === 'object' && json !== null && 'events' in json && Array.isArray(json.events) && json.events.length > this.#ctx.limits.maxBatchEvents) {
      const id = pushId(json);
      return () => this.#refuse('too_many_events', `a push carries at most ${this.#ctx.limits.maxBatchEvents} events`, id);
    }
    const parsed = WsClientMessageSchema.safeParse(json);
    if (!parsed.success) {
      const id = pushId(json);
      return () => this.#refuse('bad_request', z.prettifyError(parsed.error).slice(0, 1000), id);
    }
    return parsed.data;
  }

  async #dispatch(message: WsClientMessage): Promise<void> {
    if (this.#state === 'auth') {
      if (message.type !== 'auth') {
        this.close(CLOSE_CODES.protocolError, 'the first message must be auth');
        return;
      }
      await this.#authenticate(message.token, message.after);
      return;
    }
    switch (message.type) {
      case 'auth':
        this.#error('bad_request', 'already authenticated; use reauth to renew the token');
        return;
      case 'reauth':
        await this.#reauthenticate(message.token);
        return;
      case 'push':
        await this.#push(message.id, message.events);
        return;
    }
  }

  /** Before auth a bad message closes the socket; after it, it is answered with an error. */
  #refuse(code: ErrorCode, message: string, id?: string): void {
    if (this.#state === 'auth') this.close(CLOSE_CODES.protocolError, code);
    else this.#error(code, message, id);
  }

  async #verify(token: string): Promise<{ deviceId: string; exp: number }> {
    const expected = { motebitId: this.motebitId, signer: 'device' as const, method: WS_METHOD, path: wsPath(this.motebitId), bodySha256: EMPTY_BODY_SHA256 };
    const verified = await verifyToken(this.#ctx.auth, token, expected, nowSeconds());
    if (verified.deviceId === null) throw new AuthError('malformed_token', 'a device token is needed');
    return { deviceId: verified.deviceId, exp: verified.claims.exp };
  }

  async #authenticate(token: string, after: number): Promise<void> {
    // Per client address, before any work: a lookup, a signature check and a nonce write per attempt.
    if (this.#ctx.wsAuthLimiter.take(this.#address) > 0) {
      this.#ctx.metrics.rateLimit('ws_auth');
      this.#ctx.log.info({ motebit_id: this.motebitId }, 'websocket auth rate-limited');
      this.close(CLOSE_CODES.overloaded, 'rate_limited');
      return;
    }
    let verified: { deviceId: string; exp: number };
    try {
      verified = await this.#verify(token);
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      this.#ctx.metrics.authFailure(error.code);
      this.#ctx.log.info({ motebit_id: this.motebitId, code: error.code }, 'websocket auth refused');
      this.close(CLOSE_CODES.authFailed, error.code);
      return;
    }
    if (this.#state !== 'auth') return;
    if (!this.#ctx.sockets.admit(this.motebitId, this.#ctx.limits)) {
      this.#ctx.metrics.quotaRefusal('sockets');
      this.#ctx.log.info({ motebit_id: this.motebitId, device_id: verified.deviceId, quota: 'sockets' }, 'websocket refused: motebit at its socket quota');
      this.close(CLOSE_CODES.quotaExceeded, 'sockets');
      return;
    }
    this.#admitted = true;
    this.#waitingForAuth = false;
    this.#ctx.sockets.doneWaiting(this.#address);
    clearTimeout(this.#authTimer);
    this.#state = 'open';
    this.#deviceId = verified.deviceId;
    this.#cursor = after;
    this.#ctx.presence.seen(this.motebitId, verified.deviceId, after);
    this.#armExpiry(verified.exp);
    // Subscribe before reading the head, so nothing stored from now on can be missed; until the catch-up
    // starts, news only marks the socket dirty (nothing may go out before ready).
    this.#pumping = true;
    this.#unsubscribe = this.#ctx.store.subscribe(this.motebitId, (notification) => this.#notified(notification));
    const { head, epoch } = await this.#ctx.store.frontier(this.motebitId);
    this.#send({ type: 'limits', pushes_in_flight: pushesInFlight(this.#ctx.limits.wsMaxPendingMessages) });
    this.#send({ type: 'ready', device_id: verified.deviceId, head, epoch, exp: verified.exp });
    this.#ctx.log.info({ motebit_id: this.motebitId, device_id: verified.deviceId, after }, 'websocket authenticated');
    this.#pumping = false;
    void this.#pump();
  }

  async #reauthenticate(token: string): Promise<void> {
    // A re-auth costs what an auth does; it comes out of the device's bucket, like its pushes.
    const wait = this.#ctx.rateLimiter.take(`${this.motebitId}/${this.#deviceId}`);
    if (wait > 0) {
      this.#ctx.metrics.rateLimit('device');
      this.#error('rate_limited', 'too many requests from this device', undefined, { retry_after: wait });
      return;
    }
    try {
      const verified = await this.#verify(token);
      if (verified.deviceId !== this.#deviceId) throw new AuthError('unknown_device', 'a socket re-authenticates as the same device');
      this.#armExpiry(verified.exp);
      this.#send({ type: 'reauthed', exp: verified.exp });
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      this.#ctx.metrics.authFailure(error.code);
      if (error.code === 'revoked_device') {
        this.close(CLOSE_CODES.revoked, 'revoked');
        return;
      }
      // The socket keeps its current token until that one expires.
      this.#error(error.code, error.message);
    }
  }

  #armExpiry(exp: number): void {
    clearTimeout(this.#expiryTimer);
    const ms = (exp + this.#ctx.auth.skewSeconds) * 1000 - Date.now();
    this.#expiryTimer = setTimeout(() => this.close(CLOSE_CODES.tokenExpired, 'token_expired'), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
  }

  /**
   * Appends a push and answers it. `turn` resolves once every push before this one is answered: the answer
   * waits for it, so answers keep the order of the pushes even when this one is refused at once (rate
   * limit) or the store answers it first.
   */
  async #push(id: string, events: Parameters<RelayContext['push']>[2], turn: Promise<void> = Promise.resolve()): Promise<void> {
    const deviceId = this.#deviceId;
    if (deviceId === null) return;
    const wait = this.#ctx.rateLimiter.take(`${this.motebitId}/${deviceId}`);
    if (wait > 0) {
      this.#ctx.metrics.rateLimit('device');
      await turn;
      this.#error('rate_limited', 'too many requests from this device', id, { retry_after: wait });
      return;
    }
    this.#ctx.presence.seen(this.motebitId, deviceId);
    const outcome = await this.#ctx.push(this.motebitId, deviceId, events, 'ws');
    await turn;
    if (!outcome.ok) {
      this.#ctx.log.info({ motebit_id: this.motebitId, device_id: deviceId, quota: outcome.quota }, 'push refused: motebit at its quota');
      this.#error('quota_exceeded', quotaMessage(outcome.quota, this.#ctx.limits), id, { quota: outcome.quota });
      return;
    }
    this.#send({ type: 'ack', id, ...outcome.response });
  }

  // ---- outgoing ----

  #notified(notification: Notification): void {
    if (this.#state !== 'open') return;
    if (notification.kind === 'revoked') {
      if (notification.deviceId === this.#deviceId) {
        this.#ctx.log.info({ motebit_id: this.motebitId, device_id: this.#deviceId }, 'websocket closed: device revoked');
        this.close(CLOSE_CODES.revoked, 'revoked');
      }
      return;
    }
    if (notification.kind === 'missed') {
      // News may have been lost: whatever it was is in storage after the cursor.
      if (this.#pumping) this.#dirty = true;
      else void this.#pump();
      return;
    }
    const { events } = notification;
    const first = events[0];
    const last = events.at(-1);
    if (!first || !last || last.seq <= this.#cursor) return;
    if (this.#pumping) {
      this.#dirty = true;
      return;
    }
    // Fast path: the next events in order, and room on the socket for them; encoded once for all sockets.
    const page = sharedEvents(events);
    const fits = !this.#aboveHighWater() && page.pageBytes <= this.#ctx.limits.maxPageBytes;
    if (first.seq === this.#cursor + 1 && fits) {
      page.data ??= Buffer.from(eventsMessage(events), 'utf8');
      this.#sendEvents(events, page.data);
      return;
    }
    if (!fits) this.#ctx.metrics.wsBackpressure.inc();
    void this.#pump();
  }

  /** Sends everything after the cursor from storage, a page at a time, never above the high-water mark. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    const { store, limits } = this.#ctx;
    try {
      while (this.#state === 'open') {
        if (this.#aboveHighWater()) {
          await this.#roomOnSocket();
          continue;
        }
        this.#dirty = false;
        const page = await store.readAfter(this.motebitId, this.#cursor, limits.wsPageEvents, limits.maxPageBytes);
        if (this.#state !== 'open') return;
        // Whatever a notification brought while we read is in storage; only what comes later is not.
        const fresh = page.events.filter((event) => event.seq > this.#cursor);
        this.#sendEvents(fresh);
        // Nothing left but compacted stubs up to the head (which no page returns): the socket is past them.
        if (!page.more && page.next > this.#cursor) this.#cursor = page.next;
        if (!page.more && !this.#dirty) break;
      }
    } catch (error) {
      this.#ctx.log.error({ motebit_id: this.motebitId, err: error instanceof Error ? error.message : String(error) }, 'websocket catch-up failed');
      this.close(1011, 'internal error');
    } finally {
      this.#pumping = false;
    }
    if (this.#state === 'open' && !this.#caughtUpSent) {
      this.#caughtUpSent = true;
      this.#send({ type: 'caught_up', seq: this.#cursor });
    }
  }
}

function pushId(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || !('type' in json) || json.type !== 'push' || !('id' in json)) return undefined;
  return typeof json.id === 'string' && json.id.length > 0 && json.id.length <= 64 ? json.id : undefined;
}
