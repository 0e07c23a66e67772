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
import { canonicalAudience } from '../../shared/audience.ts';
import { createRequire } from 'node:module';
import type { RawData, WebSocket } from 'ws';
import type { SigningKey } from '../../shared/crypto.ts';
import {
  AUTH_FAILURE_REASONS,
  CLOSE_CODES,
  ERROR_CODES,
  MAX_BATCH_EVENTS,
  QUOTA_NAMES,
  WsServerMessageSchema,
  type PushResult,
  type QuotaName,
  type WsClientMessage,
  type WsServerMessage,
} from '../../shared/relay-api.ts';
import { MAX_TOKEN_LIFETIME_SECONDS, mintWsToken, wsPath } from '../../shared/token.ts';
import type { StoredWireEvent, WireEvent } from '../../shared/wire.ts';
import { checkOrder, checkResults } from './http-transport.ts';
import { EPOCH_CHANGED, EpochBinding, QUOTA_EXCEEDED, TransportError, quotaExceeded, type EventSink, type Transport } from './transport.ts';
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
/** Re-auth this long before the token expires (at most a quarter of its remaining life). */
const REAUTH_MARGIN_MS = 60_000;
/** Retry a refused re-auth after at most this long. */
const REAUTH_RETRY_MS = 5_000;
const CLOSE_GRACE_MS = 2_000;
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
const KNOWN_TYPES = new Set(['ready', 'reauthed', 'events', 'caught_up', 'ack', 'error']);
const AUTH_CODES = new Set<string>(AUTH_FAILURE_REASONS);
const ERROR_CODE_SET = new Set<string>(ERROR_CODES);
const isQuotaName = (name: string): name is QuotaName => (QUOTA_NAMES as readonly string[]).includes(name);

/** The error a close code stands for. Auth failures and revocation are final; the rest are worth a retry. */
export function closeError(code: number, reason: string): TransportError {
  switch (code) {
    case CLOSE_CODES.authFailed:
      return new TransportError('auth', `the relay refused the device's token: ${reason || 'no reason given'}`, AUTH_CODES.has(reason) ? { code: reason } : {});
    case CLOSE_CODES.revoked:
      return new TransportError('auth', 'this device has been revoked', { code: 'revoked_device' });
    case CLOSE_CODES.tokenExpired:
      return new TransportError('network', 'the socket token expired before it was renewed', { code: 'token_expired' });
    case CLOSE_CODES.protocolError:
      return new TransportError('protocol', `the relay refused a message: ${reason}`, ERROR_CODE_SET.has(reason) ? { code: reason } : {});
    case CLOSE_CODES.tooBig:
      return new TransportError('protocol', 'a message was too big for the relay');
    case CLOSE_CODES.authTimeout:
      return new TransportError('network', 'the relay timed out waiting for auth');
    case CLOSE_CODES.overloaded:
      return new TransportError('network', reason === 'rate_limited' ? 'the relay is taking too many connections from this network; it retries later' : 'the relay closed an overloaded socket');
    case CLOSE_CODES.quotaExceeded:
      // Not final: a connection of this motebit may close; meanwhile the engine syncs over HTTP.
      return quotaExceeded(isQuotaName(reason) ? reason : undefined);
    case CLOSE_CODES.goingAway:
      return new TransportError('network', 'the relay is shutting down');
    default:
      return new TransportError('network', `the socket closed (${code}${reason ? ` ${reason}` : ''})`);
  }
}

function errorOfCode(code: string, message: string): TransportError {
  if (AUTH_CODES.has(code) || code === 'wrong_motebit') return new TransportError('auth', message, { code });
  if (code === 'internal') return new TransportError('network', message, { code });
  return new TransportError('refused', message, { code });
}

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

/** One socket, from upgrade to close. */
class Session {
  readonly ws: WebSocket;
  readonly ready: Promise<void>;
  isReady = false;
  /** Set once the socket is over; the reason it is. */
  ended: TransportError | undefined;
  #endedCause: unknown;
  caughtUp = false;
  readonly #host: SessionHost;
  readonly #pending = new Map<string, PendingPush>();
  readonly #queue: Ordered[] = [];
  #pumping = false;
  #wakers: Array<() => void> = [];
  #resolveReady!: () => void;
  #rejectReady!: (error: unknown) => void;
  #connectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #reauthTimer: NodeJS.Timeout | undefined;
  #reauthPending = false;
  #exp = 0;
  #lastHeard = Date.now();
  #upgradeStatus: number | undefined;
  #socketError: Error | undefined;

  constructor(host: SessionHost) {
    this.#host = host;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    const { connectTimeoutMs } = host.options;
    this.ws = new (WebSocketClass())(host.url, { handshakeTimeout: connectTimeoutMs, perMessageDeflate: false, maxPayload: MAX_MESSAGE_BYTES, followRedirects: false });
    this.#connectTimer = setTimeout(() => this.fail(new TransportError('network', `the relay did not accept the socket within ${connectTimeoutMs} ms`)), connectTimeoutMs);
    this.ws.on('unexpected-response', (_request, response) => {
      this.#upgradeStatus = response.statusCode;
      response.resume();
      this.ws.terminate();
    });
    this.ws.on('open', () => this.#opened());
    this.ws.on('message', (data, isBinary) => this.#message(data, isBinary));
    const heard = (): void => {
      this.#lastHeard = Date.now();
    };
    this.ws.on('pong', heard);
    this.ws.on('ping', heard); // ws answers the relay's pings itself
    this.ws.on('error', (error) => {
      this.#socketError ??= error;
    });
    this.ws.on('close', (code, reason) => this.#closed(code, reason.toString()));
  }

  /** Ends the session now with `error` (and drops the socket). */
  fail(error: TransportError, cause?: unknown): void {
    this.#end(error, cause);
    this.ws.terminate();
  }

  /** Closes cleanly (1000) and resolves once the socket is closed. */
  async close(error: TransportError): Promise<void> {
    this.#end(error);
    if (this.ws.readyState === this.ws.CLOSED) return;
    const closed = new Promise<void>((resolve) => this.ws.once('close', () => resolve()));
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(1000, 'closing');
    else this.ws.terminate();
    const grace = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
    await closed;
    clearTimeout(grace);
  }

  push(id: string, events: readonly WireEvent[]): Promise<PushResult[]> {
    if (this.ended) return Promise.reject(this.ended);
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

  /** Resolves once 'caught_up' has been handled and nothing received is waiting for the sink. */
  async settled(): Promise<void> {
    while (!(this.caughtUp && !this.#pumping && this.#queue.length === 0)) {
      if (this.ended) throw this.#endedCause ?? this.ended;
      await new Promise<void>((resolve) => this.#wakers.push(resolve));
    }
    if (this.ended) throw this.#endedCause ?? this.ended;
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

  #opened(): void {
    if (this.ended) return;
    this.#send({ type: 'auth', token: this.#host.token(), after: this.#host.cursor() });
    const { pingIntervalMs, idleTimeoutMs } = this.#host.options;
    this.#lastHeard = Date.now();
    this.#pingTimer = setInterval(() => {
      // While the sink works the socket is paused, so pongs cannot be heard: that is not silence.
      if (this.#pumping || this.ended) return;
      if (Date.now() - this.#lastHeard > idleTimeoutMs) {
        this.fail(new TransportError('network', `nothing heard from the relay for ${idleTimeoutMs} ms`));
        return;
      }
      try {
        this.ws.ping();
      } catch {
        // closing; the close event ends the session
      }
    }, pingIntervalMs);
  }

  #closed(code: number, reason: string): void {
    if (this.ended) return;
    if (code === 1006 && this.#upgradeStatus !== undefined) {
      const status = this.#upgradeStatus;
      // The relay itself refuses upgrades only with 404 (no such motebit), 429 (too many sockets from this
      // address waiting to authenticate) or 503 (busy, shutting down): the last two pass, so they are retried.
      // A refusal by something in between (a proxy that does not pass WebSockets) is 'refused'.
      this.#end(new TransportError(status >= 500 || status === 429 ? 'network' : 'refused', `the WebSocket upgrade was refused: HTTP ${status}`));
      return;
    }
    if (code === 1006 && this.#socketError && !this.isReady) {
      this.#end(new TransportError('network', `cannot open a WebSocket to the relay: ${this.#socketError.message}`, { cause: this.#socketError }));
      return;
    }
    this.#end(closeError(code, reason));
  }

  #end(error: TransportError, cause?: unknown): void {
    if (this.ended) return;
    this.ended = error;
    this.#endedCause = cause;
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
    if (this.isReady) this.#host.ended(this, error, cause);
    else this.#rejectReady(error);
  }

  #message(data: RawData, isBinary: boolean): void {
    if (this.ended) return;
    this.#lastHeard = Date.now();
    if (isBinary) {
      this.fail(new TransportError('protocol', 'the relay sent a binary message'));
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(data.toString());
    } catch {
      this.fail(new TransportError('protocol', 'the relay sent a message that is not JSON'));
      return;
    }
    // Within v1 the relay may add message types; a client ignores those it does not know.
    const type = typeof json === 'object' && json !== null && 'type' in json ? json.type : undefined;
    if (typeof type === 'string' && !KNOWN_TYPES.has(type)) return;
    const parsed = WsServerMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.fail(new TransportError('protocol', `the relay sent an invalid message: ${parsed.error.issues[0]?.message ?? 'invalid'}`));
      return;
    }
    this.#handle(parsed.data);
  }

  #handle(message: WsServerMessage): void {
    if (!this.isReady && message.type !== 'ready') {
      this.fail(new TransportError('protocol', `the relay sent ${message.type} before ready`));
      return;
    }
    switch (message.type) {
      case 'ready':
        if (this.isReady) {
          this.fail(new TransportError('protocol', 'the relay sent ready twice'));
          return;
        }
        try {
          this.#host.binding.check(message.epoch);
        } catch (error) {
          this.fail(error as TransportError);
          return;
        }
        this.isReady = true;
        clearTimeout(this.#connectTimer);
        this.#armReauth(message.exp);
        this.#resolveReady();
        return;
      case 'reauthed':
        this.#reauthPending = false;
        this.#armReauth(message.exp);
        return;
      case 'ack': {
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        clearTimeout(pending.timer);
        try {
          checkResults(message.results, pending.events);
          this.#host.binding.check(message.epoch);
          pending.resolve(message.results);
        } catch (error) {
          pending.reject(error);
        }
        return;
      }
      case 'error': {
        const pending = message.id === undefined ? undefined : this.#pending.get(message.id);
        if (pending && message.id !== undefined) {
          this.#pending.delete(message.id);
          clearTimeout(pending.timer);
          pending.reject(message.code === QUOTA_EXCEEDED ? quotaExceeded(message.quota) : errorOfCode(message.code, `the relay refused the push: ${message.code}: ${message.message}`));
          return;
        }
        if (this.#reauthPending && message.id === undefined) {
          // The socket keeps its current token until it expires; try again a little later.
          this.#reauthPending = false;
          const remaining = this.#exp * 1000 - Date.now();
          if (remaining > 0) this.#scheduleReauth(Math.min(REAUTH_RETRY_MS, remaining / 4));
        }
        return;
      }
      case 'events':
      case 'caught_up':
        this.#queue.push(message);
        if (!this.#pumping) void this.#pump();
        return;
    }
  }

  #armReauth(exp: number): void {
    this.#exp = exp;
    const remaining = exp * 1000 - Date.now();
    this.#scheduleReauth(Math.max(0, remaining - Math.min(REAUTH_MARGIN_MS, remaining / 4)));
  }

  #scheduleReauth(delayMs: number): void {
    clearTimeout(this.#reauthTimer);
    this.#reauthTimer = setTimeout(() => {
      if (this.ended) return;
      this.#reauthPending = true;
      this.#send({ type: 'reauth', token: this.#host.token() });
    }, delayMs);
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    this.ws.pause();
    try {
      while (!this.ended) {
        const item = this.#queue.shift();
        if (!item) break;
        if (item.type === 'events') {
          checkOrder(item.events, this.#host.cursor());
          if (item.events.length > 0) await this.#host.deliver(item.events);
        } else {
          this.caughtUp = true;
          this.#host.caughtUp(this);
        }
      }
    } catch (error) {
      if (error instanceof TransportError) this.fail(error);
      else this.fail(new TransportError('protocol', `the event sink failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error }), error);
    } finally {
      this.#pumping = false;
      this.#lastHeard = Date.now();
      if (!this.ended) this.ws.resume();
      this.#wake();
    }
  }
}

type State = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'stopped' | 'closed';

export class WsTransport implements Transport {
  readonly kind = 'websocket' as const;
  readonly url: string;
  readonly audience: string;
  readonly #options: typeof DEFAULTS;
  readonly #motebitId: string;
  readonly #deviceId: string;
  readonly #deviceKey: SigningKey;
  #state: State = 'idle';
  #sink: EventSink | undefined;
  #cursor = 0;
  #binding = new EpochBinding();
  #session: Session | undefined;
  #connecting: Session | undefined;
  #fatal: TransportError | undefined;
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
    return this.#state === 'open' && this.#session !== undefined && !this.#session.ended;
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

  async open(after: number, sink: EventSink, epoch: string | null = null): Promise<void> {
    if (this.#state === 'closed') throw new TransportError('network', 'the transport is closed');
    if (this.#state !== 'idle') throw new Error('the transport is already open');
    if (!Number.isSafeInteger(after) || after < 0) throw new RangeError('after is a sequence number');
    this.#cursor = after;
    this.#binding = new EpochBinding(epoch);
    this.#sink = sink;
    this.#state = 'connecting';
    try {
      const session = await this.#connect();
      if (this.#state !== 'connecting') {
        await session.close(new TransportError('network', 'the transport is closed'));
        throw new TransportError('network', 'the transport was closed while opening');
      }
      this.#adopt(session);
    } catch (error) {
      if (this.#state === 'connecting') {
        this.#state = 'idle';
        this.#sink = undefined;
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
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    clearTimeout(this.#reconnectTimer);
    const closing = new TransportError('network', 'the transport is closed');
    const sessions = [this.#session, this.#connecting].filter((session) => session !== undefined);
    this.#session = undefined;
    await Promise.all(sessions.map((session) => session.close(closing)));
  }

  #live(): Session {
    if (this.#fatal) throw this.#fatal;
    if (this.#state === 'closed') throw new TransportError('network', 'the transport is closed');
    if (this.#state === 'idle' || this.#state === 'connecting') throw new Error('open the transport first');
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

  #adopt(session: Session): void {
    this.#session = session;
    this.#state = 'open';
    // A session that ended between 'ready' and here was not current when it told us.
    if (session.ended) this.#ended(session, session.ended);
  }

  #deliver(events: StoredWireEvent[]): Promise<void> {
    const sink = this.#sink;
    if (this.#state === 'closed' || !sink) return Promise.reject(new TransportError('network', 'the transport is closed'));
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
    if (this.#state !== 'open') return;
    if (isFatal(error)) this.#stop(error);
    else {
      this.#state = 'reconnecting';
      this.#scheduleReconnect();
    }
    this.#notifyDown(error);
  }

  #stop(error: TransportError): void {
    this.#fatal = error;
    this.#state = 'stopped';
    clearTimeout(this.#reconnectTimer);
  }

  #notifyDown(error: TransportError): void {
    this.#downListeners.emit(error);
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
    if (this.#state !== 'reconnecting') return;
    // The socket that dropped may still be in the sink: resume only after it, from the cursor it left.
    await this.#delivering;
    if (this.#state !== 'reconnecting') return;
    let session: Session;
    try {
      session = await this.#connect();
    } catch (error) {
      if (this.#state !== 'reconnecting') return;
      const failure = error instanceof TransportError ? error : new TransportError('network', String(error), { cause: error });
      if (isFatal(failure)) {
        this.#stop(failure);
        this.#notifyDown(failure);
      } else this.#scheduleReconnect();
      return;
    }
    if (this.#state !== 'reconnecting') {
      await session.close(new TransportError('network', 'the transport is closed'));
      return;
    }
    this.#adopt(session);
    if (!this.connected) return; // it dropped again at once; #ended has scheduled the next attempt
    this.#upListeners.emit();
  }
}

/** Failures a reconnect cannot cure: the relay refused the device, or it now serves another log. */
function isFatal(error: TransportError): boolean {
  return error.kind === 'auth' || error.code === EPOCH_CHANGED;
}
