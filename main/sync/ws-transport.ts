// The Transport over the relay WebSocket (docs/protocol.md §7, "WebSocket"): auth, backlog, then live
// events, pushes answered by acks, in-band re-auth before the token expires.
//
// Delivery is strictly serial: a page goes to the sink only once the previous one is done, and the socket
// is paused while the sink works, so a slow device slows the relay's stream (the relay then stops queueing
// and catches up from storage) instead of buffering it here. The cursor is the last seq the sink accepted.
//
// After open() succeeds the transport keeps itself connected: a dropped socket is reported to onDown
// listeners (so the engine can fall back to HTTP) and re-opened with exponential backoff and jitter,
// resuming after the cursor, so nothing is missed or delivered twice. An auth failure or a revocation is
// final: reported with kind 'auth' and never retried.
//
// What each event does in each state (of one socket, and of the transport across sockets) is decided in
// ws-state.ts; this file is the shell that owns the socket, timers and promises and performs the effects.
import { canonicalAudience } from '../../shared/audience.ts';
import { createRequire } from 'node:module';
import type { RawData, WebSocket } from 'ws';
import type { SigningKey } from '../../shared/crypto.ts';
import { MAX_BATCH_EVENTS, WsServerMessageSchema, type PushResult, type WsClientMessage } from '../../shared/portable/relay-api.ts';
import { MAX_TOKEN_LIFETIME_SECONDS, mintWsToken, wsPath } from '../../shared/token.ts';
import type { StoredWireEvent, WireEvent } from '../../shared/portable/wire.ts';
import { checkOrder, checkResults } from './http-transport.ts';
import { EpochBinding, TransportError, type EventSink, type Transport } from './transport.ts';
import { LINK_START, SOCKET_START, linkTransition, socketTransition, unavailable, type LinkEffect, type LinkEvent, type LinkState, type SocketEffect, type SocketEvent, type SocketState } from './ws-state.ts';
import { Emitter } from '../../shared/emitter.ts';

// ws (and the tls and https modules it loads) is required when the first socket opens: a command that
// never syncs (a CLI put) does not pay for it at start.
let webSocketClass: typeof WebSocket | undefined;
const WebSocketClass = (): typeof WebSocket => (webSocketClass ??= createRequire(import.meta.url)('ws') as typeof WebSocket);

export interface BackoffOptions {
  /** First retry after about this long (jittered between half and all of it). */
  initialMs: number;
  /** Each retry doubles the delay up to this. */
  maxMs: number;
}

export interface WsTransportOptions {
  /** The relay's base URL (http(s) origin); the socket uses ws(s) on the same host. */
  relayUrl: string;
  motebitId: string;
  deviceId: string;
  deviceKey: SigningKey;
  /** The audience tokens name; defaults to the relay URL's origin, loopback names as 127.0.0.1 (shared/audience.ts). */
  audience?: string;
  /** Upgrade plus auth must be done (relay said 'ready') within this. Default 10 s. */
  connectTimeoutMs?: number;
  /** Hears a failure of an onDown/onUp listener (it is the listener's own: the others still run). */
  onListenerError?: (error: unknown) => void;
  /** A push must be acknowledged within this. Default 30 s. */
  pushTimeoutMs?: number;
  /** The client pings this often. Default 15 s. */
  pingIntervalMs?: number;
  /** Nothing heard (message or pong) for this long, while not busy in the sink: the relay is dead. Default 45 s. */
  idleTimeoutMs?: number;
  /** Reconnect backoff. Default 500 ms doubling to 30 s. */
  backoff?: BackoffOptions;
  /** Lifetime of each auth/re-auth token. Default (and at most) 300 s. */
  tokenLifetimeSeconds?: number;
}

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  pushTimeoutMs: 30_000,
  pingIntervalMs: 15_000,
  idleTimeoutMs: 45_000,
  backoff: { initialMs: 500, maxMs: 30_000 },
  tokenLifetimeSeconds: MAX_TOKEN_LIFETIME_SECONDS,
};
const CLOSE_GRACE_MS = 2_000;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const KNOWN_TYPES = new Set(['limits', 'ready', 'reauthed', 'events', 'caught_up', 'ack', 'error']);

/** The error a close code stands for (kept here too: callers import it from the transport). */
export { closeError } from './ws-state.ts';

interface PendingPush {
  events: readonly WireEvent[];
  resolve: (results: PushResult[]) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

type Ordered = { type: 'events'; events: StoredWireEvent[] } | { type: 'caught_up'; seq: number };

interface SessionHost {
  readonly url: string;
  readonly options: typeof DEFAULTS;
  token(): string;
  cursor(): number;
  /** Hands a page to the sink and advances the cursor; throws to stop the session. */
  deliver(events: StoredWireEvent[]): Promise<void>;
  ended(session: Session, error: TransportError, sinkError?: unknown): void;
  caughtUp(session: Session): void;
  /** The transport's binding to one relay log: every ready and ack is checked against it. */
  readonly binding: EpochBinding;
}

/**
 * One socket, from upgrade to close. What each event does is decided by socketTransition (ws-state.ts);
 * this class owns the socket, its timers and the waiting promises, and performs the effects.
 */
class Session {
  readonly ws: WebSocket;
  readonly ready: Promise<void>;
  #state: SocketState = SOCKET_START;
  readonly #host: SessionHost;
  readonly #pending = new Map<string, PendingPush>();
  readonly #queue: Ordered[] = [];
  /** The pump is running (the socket is paused while the sink works). */
  #pumping = false;
  #wakers: Array<() => void> = [];
  #resolveReady!: () => void;
  #rejectReady!: (error: unknown) => void;
  #connectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #reauthTimer: NodeJS.Timeout | undefined;
  #lastHeard = Date.now();
  #upgradeStatus: number | undefined;
  #socketError: Error | undefined;
  /** What the relay's 'limits' said (revision 5); one at a time when it said nothing. */
  #pushesInFlight = 1;

  constructor(host: SessionHost) {
    this.#host = host;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    const { connectTimeoutMs } = host.options;
    this.ws = new (WebSocketClass())(host.url, { handshakeTimeout: connectTimeoutMs, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES, followRedirects: false });
    this.#connectTimer = setTimeout(() => this.fail(new TransportError('network', `the relay did not accept the socket within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    this.ws.on('unexpected-response', (_request, response) => {
      this.#upgradeStatus = response.statusCode;
      response.resume();
      this.ws.terminate();
    });
    this.ws.on('open', () => this.#feed({ type: 'opened' }));
    this.ws.on('message', (data, isBinary) => this.#message(data, isBinary));
    const heard = (): void => {
      this.#lastHeard = Date.now();
    };
    this.ws.on('pong', heard);
    this.ws.on('ping', heard); // ws answers the relay's pings itself
    this.ws.on('error', (error) => {
      this.#socketError ??= error;
    });
    this.ws.on('close', (code, reason) => {
      this.#feed({ type: 'closed', code, reason: reason.toString(), ...(this.#upgradeStatus === undefined ? {} : { upgradeStatus: this.#upgradeStatus }), ...(this.#socketError ? { socketError: this.#socketError } : {}) });
    });
  }

  /** Set once the socket is over; the reason it is. */
  get ended(): TransportError | undefined {
    return this.#state.kind === 'ended' ? this.#state.error : undefined;
  }

  /** Ends the session now with `error` (and drops the socket). */
  fail(error: TransportError, cause?: unknown): void {
    this.#feed({ type: 'fail', error, cause });
  }

  /** Closes cleanly (1000) and resolves once the socket is closed. */
  async close(error: TransportError): Promise<void> {
    this.#feed({ type: 'close-requested', error });
    if (this.ws.readyState === this.ws.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    // A socket paused while the sink works would not read the relay's answer to the close: read again
    // (the session is over, so what still arrives is dropped).
    this.ws.resume();
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000, 'closing');
    else this.ws.terminate();
    const grace = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    await closed;
    clearTimeout(grace);
  }

  push(id: string, events: readonly WireEvent[]): Promise<PushResult[]> {
    const ended = this.ended;
    if (ended) return Promise.reject(ended);
    return new Promise((resolve, reject) => {
      const timeoutMs = this.#host.options.pushTimeoutMs;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new TransportError('network', `the relay did not acknowledge the push within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { events, resolve, reject, timer });
      this.#send({ type: 'push', id, events: [...events] }, (error) => {
        const pending = this.#pending.get(id);
        if (!error || !pending) return;
        this.#pending.delete(id);
        clearTimeout(pending.timer);
        reject(new TransportError('network', 'the push could not be sent', { cause: error }));
      });
    });
  }

  /** Messages received and waiting for the sink (bounded by pausing the socket while the sink works). */
  get backlog(): number {
    return this.#queue.length;
  }

  /** Whether this socket has delivered the relay's whole backlog ('caught_up' handled). */
  get caughtUp(): boolean {
    return this.#state.kind === 'ready' && this.#state.caughtUp;
  }

  /** How many pushes this socket may leave unanswered. */
  get pushesInFlight(): number {
    return this.#pushesInFlight;
  }

  /** Resolves once 'caught_up' has been handled and nothing received is waiting for the sink. */
  async settled(): Promise<void> {
    for (;;) {
      const state = this.#state;
      if (state.kind === 'ended') throw state.cause ?? state.error;
      if (state.kind === 'ready' && state.caughtUp && !this.#pumping && this.#queue.length === 0) return;
      await new Promise<void>((resolve) => this.#wakers.push(resolve));
    }
  }

  /** Moves the state by `event` and performs what the transition says. */
  #feed(event: SocketEvent): void {
    const step = socketTransition(this.#state, event);
    this.#state = step.state;
    for (const effect of step.effects) this.#perform(effect);
  }

  #perform(effect: SocketEffect): void {
    switch (effect.type) {
      case 'send-auth':
        this.#send({ type: 'auth', token: this.#host.token(), after: this.#host.cursor() });
        this.#startHeartbeat();
        return;
      case 'send-reauth':
        this.#send({ type: 'reauth', token: this.#host.token() });
        return;
      case 'ping':
        try {
          this.ws.ping();
        } catch {
          // closing; the close event ends the session
        }
        return;
      case 'bind-epoch':
        this.#host.binding.check(effect.epoch); // checked by the transition: binds, never throws
        return;
      case 'resolve-ready':
        clearTimeout(this.#connectTimer);
        this.#resolveReady();
        return;
      case 'arm-reauth':
        clearTimeout(this.#reauthTimer);
        this.#reauthTimer = setTimeout(() => this.#feed({ type: 'reauth-due' }), effect.delayMs);
        return;
      case 'ack': {
        const pending = this.#pending.get(effect.id);
        if (!pending) return;
        this.#pending.delete(effect.id);
        clearTimeout(pending.timer);
        try {
          checkResults(effect.results, pending.events);
          this.#host.binding.check(effect.epoch);
          pending.resolve(effect.results);
        } catch (error) {
          pending.reject(error);
        }
        return;
      }
      case 'refuse-push': {
        const pending = this.#pending.get(effect.id);
        if (!pending) return;
        this.#pending.delete(effect.id);
        clearTimeout(pending.timer);
        pending.reject(effect.error);
        return;
      }
      case 'enqueue':
        this.#queue.push(effect.message);
        if (!this.#pumping) void this.#pump();
        return;
      case 'notify-caught-up':
        this.#host.caughtUp(this);
        return;
      case 'end':
        this.#end(effect.error, effect.cause, effect.wasReady);
        return;
      case 'terminate':
        this.ws.terminate();
        return;
    }
  }

  #wake(): void {
    for (const wake of this.#wakers.splice(0)) wake();
  }

  #send(message: WsClientMessage, callback?: (error?: Error) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) {
      callback?.(new Error('the socket is not open'));
      return;
    }
    this.ws.send(JSON.stringify(message), callback);
  }

  #startHeartbeat(): void {
    const { pingIntervalMs, idleTimeoutMs } = this.#host.options;
    this.#lastHeard = Date.now();
    this.#pingTimer = setInterval(() => this.#feed({ type: 'tick', silentMs: Date.now() - this.#lastHeard, idleTimeoutMs, pumping: this.#pumping }), pingIntervalMs);
  }

  #end(error: TransportError, cause: unknown, wasReady: boolean): void {
    clearTimeout(this.#connectTimer);
    clearInterval(this.#pingTimer);
    clearTimeout(this.#reauthTimer);
    this.#queue.length = 0;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new TransportError(error.kind === 'auth' ? 'auth' : 'network', `the socket closed before the push was acknowledged: ${error.message}`, { cause: error, ...(error.code === undefined ? {} : { code: error.code }) }));
    }
    this.#wake();
    if (wasReady) this.#host.ended(this, error, cause);
    else this.#rejectReady(error);
  }

  #message(data: RawData, isBinary: boolean): void {
    if (this.#state.kind === 'ended') return; // stale: nothing to hear, nothing to parse
    this.#lastHeard = Date.now();
    if (isBinary) {
      this.#feed({ type: 'invalid', error: new TransportError('protocol', 'the relay sent a binary message') });
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch {
      this.#feed({ type: 'invalid', error: new TransportError('protocol', 'the relay sent a message that is not JSON') });
      return;
    }
    // Within v1 the relay may add message types; a client ignores those it does not know.
    const type = typeof json === 'object' && json !== null && 'type' in json ? json.type : undefined;
    if (typeof type === 'string' && !KNOWN_TYPES.has(type)) return;
    const parsed = WsServerMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.#feed({ type: 'invalid', error: new TransportError('protocol', `the relay sent an invalid message: ${parsed.error.issues[0]?.message ?? 'invalid'}`) });
      return;
    }
    if (parsed.data.type === 'limits') this.#pushesInFlight = parsed.data.pushes_in_flight;
    this.#feed({ type: 'message', message: parsed.data, now: Date.now(), boundEpoch: this.#host.binding.epoch });
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    this.ws.pause();
    try {
      while (this.#state.kind !== 'ended') {
        const item = this.#queue.shift();
        if (!item) break;
        if (item.type === 'events') {
          checkOrder(item.events, this.#host.cursor());
          if (item.events.length > 0) await this.#host.deliver(item.events);
        } else this.#feed({ type: 'caught-up' });
      }
    } catch (error) {
      if (error instanceof TransportError) this.fail(error);
      else this.fail(new TransportError('protocol', `the event sink failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error }), error);
    } finally {
      this.#pumping = false;
      this.#lastHeard = Date.now();
      if (this.#state.kind !== 'ended') this.ws.resume();
      this.#wake();
    }
  }
}

export class WsTransport implements Transport {
  readonly kind = 'websocket' as const;
  readonly url: string;
  readonly audience: string;
  readonly #options: typeof DEFAULTS;
  readonly #motebitId: string;
  readonly #deviceId: string;
  readonly #deviceKey: SigningKey;
  /** Where the transport is (ws-state.ts decides what each event does in each state). */
  #link: LinkState = LINK_START;
  #sink: EventSink | undefined;
  #cursor = 0;
  #binding = new EpochBinding();
  #session: Session | undefined;
  #connecting: Session | undefined;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #delivering: Promise<void> = Promise.resolve();
  #pushCounter = 0;
  #connects = 0;
  readonly #downListeners: Emitter<TransportError>;
  readonly #upListeners: Emitter<void>;

  constructor(options: WsTransportOptions) {
    const url = new URL(options.relayUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError('the relay URL is http: or https:');
    if (url.pathname !== '/' || url.search !== '' || url.hash !== '') throw new TypeError('the relay URL is an origin, without a path');
    this.url = `${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}${wsPath(options.motebitId)}`;
    this.audience = options.audience ?? canonicalAudience(url.origin);
    this.#motebitId = options.motebitId;
    this.#deviceId = options.deviceId;
    this.#deviceKey = options.deviceKey;
    this.#downListeners = new Emitter(options.onListenerError);
    this.#upListeners = new Emitter(options.onListenerError);
    this.#options = {
      connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
      pushTimeoutMs: options.pushTimeoutMs ?? DEFAULTS.pushTimeoutMs,
      pingIntervalMs: options.pingIntervalMs ?? DEFAULTS.pingIntervalMs,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      backoff: options.backoff ?? DEFAULTS.backoff,
      tokenLifetimeSeconds: Math.min(options.tokenLifetimeSeconds ?? DEFAULTS.tokenLifetimeSeconds, MAX_TOKEN_LIFETIME_SECONDS),
    };
  }

  /** The relay sequence up to which events have been delivered to the sink. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Whether a socket is authenticated right now. */
  get connected(): boolean {
    return this.#link.kind === 'open' && this.#session !== undefined && !this.#session.ended;
  }

  /** Event pages received on the current socket and not yet handed to the sink. */
  get backlog(): number {
    return this.#session?.backlog ?? 0;
  }

  /** Sockets opened so far (including failed attempts), for status and tests. */
  get connectAttempts(): number {
    return this.#connects;
  }

  /** The epoch of the relay log this transport is bound to. */
  get epoch(): string | null {
    return this.#binding.epoch;
  }

  /** What the current socket's relay allows (its 'limits' message); 1 while no socket is up. */
  get pushesInFlight(): number {
    const session = this.#session;
    return session && !session.ended ? session.pushesInFlight : 1;
  }

  async open(after: number, sink: EventSink, epoch: string | null = null): Promise<void> {
    for (const effect of this.#feed({ type: 'open-requested', after })) {
      if (effect.type === 'reject') throw effect.error;
    }
    this.#cursor = after;
    this.#binding = new EpochBinding(epoch);
    this.#sink = sink;
    try {
      const session = await this.#connect();
      for (const effect of this.#feed({ type: 'opened' })) {
        if (effect.type === 'adopt') this.#adopt(session);
        else if (effect.type === 'discard') await session.close(new TransportError('network', 'the transport is closed'));
        else if (effect.type === 'reject') throw effect.error;
      }
    } catch (error) {
      for (const effect of this.#feed({ type: 'open-failed' })) {
        if (effect.type === 'forget-sink') this.#sink = undefined;
      }
      throw error;
    }
  }

  async push(events: readonly WireEvent[]): Promise<PushResult[]> {
    if (events.length === 0) return [];
    if (events.length > MAX_BATCH_EVENTS) throw new RangeError(`a push carries at most ${MAX_BATCH_EVENTS} events`);
    const session = this.#live();
    return session.push(`p${++this.#pushCounter}`, events);
  }

  async catchUp(): Promise<number> {
    const session = this.#live();
    await session.settled();
    return this.#cursor;
  }

  onDown(listener: (error: TransportError) => void): void {
    this.#downListeners.on(listener);
  }

  /** Hears when the socket is back (authenticated) after a drop. */
  onUp(listener: () => void): void {
    this.#upListeners.on(listener);
  }

  async close(): Promise<void> {
    if (!this.#feed({ type: 'close-requested' }).some((effect) => effect.type === 'close-sockets')) return;
    const closing = new TransportError('network', 'the transport is closed');
    const sessions = [this.#session, this.#connecting].filter((session) => session !== undefined);
    this.#session = undefined;
    await Promise.all(sessions.map((session) => session.close(closing)));
  }

  /**
   * Moves the link state by `event`, performs the effects that need nothing but the transport (timers,
   * listeners) and returns the rest for the caller, which holds what they act on (a socket, open()'s arguments).
   */
  #feed(event: LinkEvent): LinkEffect[] {
    const step = linkTransition(this.#link, event);
    this.#link = step.state;
    const rest: LinkEffect[] = [];
    for (const effect of step.effects) {
      switch (effect.type) {
        case 'schedule-reconnect':
          this.#scheduleReconnect();
          break;
        case 'cancel-reconnect':
          clearTimeout(this.#reconnectTimer);
          break;
        case 'notify-down':
          this.#downListeners.emit(effect.error);
          break;
        default:
          rest.push(effect);
      }
    }
    return rest;
  }

  #live(): Session {
    const refusal = unavailable(this.#link);
    if (refusal) throw refusal;
    const session = this.#session;
    if (!session || session.ended) throw new TransportError('network', 'the WebSocket is down; reconnecting');
    return session;
  }

  #connect(): Promise<Session> {
    this.#connects++;
    const session = new Session({
      url: this.url,
      options: this.#options,
      token: () => mintWsToken({ motebitId: this.#motebitId, signer: this.#deviceId, key: this.#deviceKey, audience: this.audience, lifetime: this.#options.tokenLifetimeSeconds }),
      cursor: () => this.#cursor,
      deliver: (events) => this.#deliver(events),
      ended: (ended, error) => this.#ended(ended, error),
      caughtUp: (caughtUp) => {
        if (caughtUp === this.#session) this.#attempt = 0;
      },
      binding: this.#binding,
    });
    this.#connecting = session;
    return session.ready.then(
      () => {
        if (this.#connecting === session) this.#connecting = undefined;
        return session;
      },
      (error: unknown) => {
        if (this.#connecting === session) this.#connecting = undefined;
        throw error;
      },
    );
  }

  /**
   * Makes `session` the current socket (the link state is already 'open'). A socket that caught up before
   * it was adopted (the relay sends 'ready' and a short backlog's 'caught_up' in one read) starts the
   * backoff over as one that catches up later does.
   */
  #adopt(session: Session): void {
    this.#session = session;
    if (session.caughtUp) this.#attempt = 0;
    // A session that ended between 'ready' and here was not current when it told us.
    if (session.ended) this.#ended(session, session.ended);
  }

  #deliver(events: StoredWireEvent[]): Promise<void> {
    const sink = this.#sink;
    if (this.#link.kind === 'closed' || !sink) return Promise.reject(new TransportError('network', 'the transport is closed'));
    const last = events.at(-1);
    const delivery = (async () => {
      await sink(events);
      if (last) this.#cursor = last.seq;
    })();
    this.#delivering = delivery.catch(() => undefined);
    return delivery;
  }

  #ended(session: Session, error: TransportError): void {
    if (session !== this.#session) return;
    this.#session = undefined;
    this.#feed({ type: 'socket-ended', error });
  }

  #scheduleReconnect(): void {
    const { initialMs, maxMs } = this.#options.backoff;
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    const delay = base / 2 + Math.random() * (base / 2);
    this.#reconnectTimer = setTimeout(() => void this.#reconnect(), delay);
  }

  async #reconnect(): Promise<void> {
    this.#reconnectTimer = undefined;
    if (!this.#feed({ type: 'reconnect-due' }).some((effect) => effect.type === 'await-delivery')) return;
    await this.#delivering;
    if (!this.#feed({ type: 'drained' }).some((effect) => effect.type === 'connect')) return;
    let session: Session;
    try {
      session = await this.#connect();
    } catch (error) {
      this.#feed({ type: 'reconnect-failed', error: error instanceof TransportError ? error : new TransportError('network', String(error), { cause: error }) });
      return;
    }
    for (const effect of this.#feed({ type: 'reconnected' })) {
      if (effect.type === 'adopt') this.#adopt(session);
      else if (effect.type === 'discard') await session.close(new TransportError('network', 'the transport is closed'));
      // It may have dropped again at once: then #ended has scheduled the next attempt and there is no "up".
      else if (effect.type === 'notify-up' && this.connected) this.#upListeners.emit();
    }
  }
}
