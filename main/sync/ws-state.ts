// The states of the relay WebSocket and what each event does in each of them, as two pure functions (no
// I/O, no timers, no clock: the time an event needs comes with it). main/sync/ws-transport.ts is the shell:
// it owns the socket, timers and promises, feeds every event in here and performs the effects that come
// back. A continuation that resumes after an await feeds its event like any other; when the state has moved
// on (the socket ended, the transport was closed) the answer is "no effects", so nothing stale happens.
//
// Two machines, one per lifetime:
// - socketTransition: one socket, from upgrade to close (connecting → authenticating → ready → ended).
// - linkTransition: the transport across sockets (idle → opening → open ⇄ reconnecting, stopped, closed).
import { AUTH_FAILURE_REASONS, CLOSE_CODES, ERROR_CODES, QUOTA_NAMES, type PushResult, type QuotaName, type WsServerMessage } from '../../shared/portable/relay-api.ts';
import { EPOCH_CHANGED, EpochBinding, QUOTA_EXCEEDED, TransportError, quotaExceeded } from './transport.ts';

/** Re-auth this long before the token expires (at most a quarter of its remaining life). */
export const REAUTH_MARGIN_MS = 60_000;
/** Retry a refused re-auth after at most this long. */
export const REAUTH_RETRY_MS = 5_000;

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
  if (AUTH_CODES.has(code)) return new TransportError('auth', message, { code });
  if (code === 'internal') return new TransportError('network', message, { code });
  return new TransportError('refused', message, { code });
}

/** Failures a reconnect cannot cure: the relay refused the device, or it now serves another log. */
export function isFatal(error: TransportError): boolean {
  return error.kind === 'auth' || error.code === EPOCH_CHANGED;
}

/** How long before a token expiring at `exp` (Unix s) to re-auth, at `now` (ms). */
export function reauthDelay(exp: number, now: number): number {
  const remaining = exp * 1000 - now;
  return Math.max(0, remaining - Math.min(REAUTH_MARGIN_MS, remaining / 4));
}

// ---------------------------------------------------------------------------------------------------------
// One socket

export type SocketState =
  /** The upgrade is in flight. */
  | { readonly kind: 'connecting' }
  /** Open; auth sent; waiting for 'ready'. */
  | { readonly kind: 'authenticating' }
  /** Authenticated. `exp`: the token's expiry (Unix s); `reauth`: whether a re-auth awaits its answer; `caughtUp`: the backlog has been delivered. */
  | { readonly kind: 'ready'; readonly exp: number; readonly reauth: 'idle' | 'pending'; readonly caughtUp: boolean }
  /** Over, for `error`. `wasReady`: it had been authenticated (then the transport hears of the end; else open() is rejected). */
  | { readonly kind: 'ended'; readonly error: TransportError; readonly cause: unknown; readonly wasReady: boolean };

export type SocketEvent =
  /** The upgrade completed. */
  | { readonly type: 'opened' }
  /** A valid message from the relay. `now`: ms; `boundEpoch`: the epoch the transport is bound to, if any. */
  | { readonly type: 'message'; readonly message: WsServerMessage; readonly now: number; readonly boundEpoch: string | null }
  /** A frame that breaks the protocol (binary, not JSON, invalid). */
  | { readonly type: 'invalid'; readonly error: TransportError }
  /** The shell gives up on the socket (connect timeout, sink failure): end it and drop the socket. */
  | { readonly type: 'fail'; readonly error: TransportError; readonly cause?: unknown }
  /** The heartbeat: `silentMs` since anything was last heard; `pumping`: the sink is working (the socket is paused). */
  | { readonly type: 'tick'; readonly silentMs: number; readonly idleTimeoutMs: number; readonly pumping: boolean }
  /** The re-auth timer fired. */
  | { readonly type: 'reauth-due' }
  /** The pump handed the relay's caught_up through (everything before it reached the sink). */
  | { readonly type: 'caught-up' }
  /** The socket closed. `upgradeStatus`: the HTTP status of a refused upgrade; `socketError`: the first socket error seen. */
  | { readonly type: 'closed'; readonly code: number; readonly reason: string; readonly upgradeStatus?: number; readonly socketError?: Error }
  /** The transport closes this socket cleanly. */
  | { readonly type: 'close-requested'; readonly error: TransportError };

export type SocketEffect =
  /** Send auth (after the cursor) and start the heartbeat. */
  | { readonly type: 'send-auth' }
  | { readonly type: 'send-reauth' }
  | { readonly type: 'ping' }
  /** Bind the transport to the epoch 'ready' named (a no-op when already bound to it). */
  | { readonly type: 'bind-epoch'; readonly epoch: string }
  /** 'ready' arrived: stop the connect timer and resolve the session's ready promise. */
  | { readonly type: 'resolve-ready' }
  | { readonly type: 'arm-reauth'; readonly delayMs: number }
  /** An ack: settle the push `id` (if it still waits) with the results, checked against its events and the epoch. */
  | { readonly type: 'ack'; readonly id: string; readonly results: PushResult[]; readonly epoch: string }
  /** Reject the push `id` (if it still waits) with `error`. */
  | { readonly type: 'refuse-push'; readonly id: string; readonly error: TransportError }
  /** Queue a page (or caught_up) for the sink, in order. */
  | { readonly type: 'enqueue'; readonly message: Extract<WsServerMessage, { type: 'events' | 'caught_up' }> }
  | { readonly type: 'notify-caught-up' }
  /** The socket is over: stop every timer, drop the queue, reject waiting pushes, then tell the transport (wasReady) or reject ready. */
  | { readonly type: 'end'; readonly error: TransportError; readonly cause: unknown; readonly wasReady: boolean }
  /** Drop the socket at once. */
  | { readonly type: 'terminate' };

export interface SocketStep {
  readonly state: SocketState;
  readonly effects: readonly SocketEffect[];
}

export const SOCKET_START: SocketState = { kind: 'connecting' };

const stay = (state: SocketState): SocketStep => ({ state, effects: [] });

function end(state: SocketState, error: TransportError, cause: unknown, terminate: boolean): SocketStep {
  const wasReady = state.kind === 'ready';
  const effects: SocketEffect[] = [{ type: 'end', error, cause, wasReady }];
  if (terminate) effects.push({ type: 'terminate' });
  return { state: { kind: 'ended', error, cause, wasReady }, effects };
}

/** The error for a socket that closed with `code` in `state`. */
function closedError(state: SocketState, event: Extract<SocketEvent, { type: 'closed' }>): TransportError {
  if (event.code === 1006 && event.upgradeStatus !== undefined) {
    const status = event.upgradeStatus;
    // The relay itself refuses upgrades only with 404 (no such motebit), 429 (too many sockets from this
    // address waiting to authenticate) or 503 (busy, shutting down): the last two pass, so they are retried.
    // A refusal by something in between (a proxy that does not pass WebSockets) is 'refused'.
    return new TransportError(status >= 500 || status === 429 ? 'network' : 'refused', `the WebSocket upgrade was refused: HTTP ${status}`);
  }
  if (event.code === 1006 && event.socketError && state.kind !== 'ready') {
    return new TransportError('network', `cannot open a WebSocket to the relay: ${event.socketError.message}`, { cause: event.socketError });
  }
  return closeError(event.code, event.reason);
}

function onMessage(state: Exclude<SocketState, { kind: 'ended' }>, event: Extract<SocketEvent, { type: 'message' }>): SocketStep {
  const { message } = event;
  // Revision 5: what the relay allows this socket (the shell keeps it, Session#message); it changes no state.
  if (message.type === 'limits') return stay(state);
  if (state.kind !== 'ready') {
    if (message.type !== 'ready') return end(state, new TransportError('protocol', `the relay sent ${message.type} before ready`), undefined, true);
    try {
      new EpochBinding(event.boundEpoch).check(message.epoch);
    } catch (error) {
      return end(state, error as TransportError, undefined, true);
    }
    return {
      state: { kind: 'ready', exp: message.exp, reauth: 'idle', caughtUp: false },
      effects: [{ type: 'bind-epoch', epoch: message.epoch }, { type: 'arm-reauth', delayMs: reauthDelay(message.exp, event.now) }, { type: 'resolve-ready' }],
    };
  }
  switch (message.type) {
    case 'ready':
      return end(state, new TransportError('protocol', 'the relay sent ready twice'), undefined, true);
    case 'reauthed':
      return { state: { ...state, exp: message.exp, reauth: 'idle' }, effects: [{ type: 'arm-reauth', delayMs: reauthDelay(message.exp, event.now) }] };
    case 'ack':
      return { state, effects: [{ type: 'ack', id: message.id, results: message.results, epoch: message.epoch }] };
    case 'error': {
      if (message.id !== undefined) {
        const error = message.code === QUOTA_EXCEEDED ? quotaExceeded(message.quota) : errorOfCode(message.code, `the relay refused the push: ${message.code}: ${message.message}`);
        return { state, effects: [{ type: 'refuse-push', id: message.id, error }] };
      }
      if (state.reauth !== 'pending') return stay(state);
      // The re-auth was refused. The socket keeps its current token until it expires; try again a little later.
      const remaining = state.exp * 1000 - event.now;
      return { state: { ...state, reauth: 'idle' }, effects: remaining > 0 ? [{ type: 'arm-reauth', delayMs: Math.min(REAUTH_RETRY_MS, remaining / 4) }] : [] };
    }
    case 'events':
    case 'caught_up':
      return { state, effects: [{ type: 'enqueue', message }] };
  }
}

/** What `event` does to a socket in `state`. */
export function socketTransition(state: SocketState, event: SocketEvent): SocketStep {
  if (state.kind === 'ended') {
    // Over: whatever still arrives is stale. Only the shell's own "drop it" is still honoured.
    return event.type === 'fail' ? { state, effects: [{ type: 'terminate' }] } : stay(state);
  }
  switch (event.type) {
    case 'opened':
      return state.kind === 'connecting' ? { state: { kind: 'authenticating' }, effects: [{ type: 'send-auth' }] } : stay(state);
    case 'message':
      return onMessage(state, event);
    case 'invalid':
      return end(state, event.error, undefined, true);
    case 'fail':
      return end(state, event.error, event.cause, true);
    case 'tick':
      // While the sink works the socket is paused, so pongs cannot be heard: that is not silence.
      if (event.pumping) return stay(state);
      if (event.silentMs > event.idleTimeoutMs) return end(state, new TransportError('network', `nothing heard from the relay for ${event.idleTimeoutMs} ms`), undefined, true);
      return { state, effects: [{ type: 'ping' }] };
    case 'reauth-due':
      return state.kind === 'ready' ? { state: { ...state, reauth: 'pending' }, effects: [{ type: 'send-reauth' }] } : stay(state);
    case 'caught-up':
      return state.kind === 'ready' ? { state: { ...state, caughtUp: true }, effects: [{ type: 'notify-caught-up' }] } : stay(state);
    case 'closed':
      return end(state, closedError(state, event), undefined, false);
    case 'close-requested':
      return end(state, event.error, undefined, false);
  }
}

// ---------------------------------------------------------------------------------------------------------
// The transport across sockets

export type LinkState =
  /** Not opened (or a failed open). */
  | { readonly kind: 'idle' }
  /** open() is connecting its first socket. */
  | { readonly kind: 'opening' }
  /** A socket is current (it may have just dropped: then 'socket-ended' follows). */
  | { readonly kind: 'open' }
  /** The socket dropped; the next one is due or being connected. */
  | { readonly kind: 'reconnecting' }
  /** A failure no reconnect can cure; every call fails with `fatal`. */
  | { readonly kind: 'stopped'; readonly fatal: TransportError }
  /** close() was called; `fatal` is kept when it was stopped first. */
  | { readonly kind: 'closed'; readonly fatal?: TransportError };

export type LinkEvent =
  /** open(after, …) was called. */
  | { readonly type: 'open-requested'; readonly after: number }
  /** open()'s socket said ready. */
  | { readonly type: 'opened' }
  /** open()'s socket failed. */
  | { readonly type: 'open-failed' }
  /** The current socket ended (after it was adopted). */
  | { readonly type: 'socket-ended'; readonly error: TransportError }
  /** The backoff timer fired. */
  | { readonly type: 'reconnect-due' }
  /** The previous socket's last page left the sink: a new socket may start from the cursor. */
  | { readonly type: 'drained' }
  /** A reconnect's socket said ready. */
  | { readonly type: 'reconnected' }
  | { readonly type: 'reconnect-failed'; readonly error: TransportError }
  | { readonly type: 'close-requested' };

export type LinkEffect =
  /** open() must throw this. */
  | { readonly type: 'reject'; readonly error: Error }
  /** Remember the cursor, epoch and sink open() was given. */
  | { readonly type: 'start' }
  /** Forget the sink: the open failed. */
  | { readonly type: 'forget-sink' }
  /** Connect a socket (the first, or the next). */
  | { readonly type: 'connect' }
  /** Make the socket that said ready the current one. */
  | { readonly type: 'adopt' }
  /** Close the socket that said ready after all: nobody wants it any more. */
  | { readonly type: 'discard' }
  /** Wait until the previous socket's sink work is done, then feed 'drained'. */
  | { readonly type: 'await-delivery' }
  | { readonly type: 'schedule-reconnect' }
  | { readonly type: 'cancel-reconnect' }
  | { readonly type: 'notify-down'; readonly error: TransportError }
  /** Tell onUp listeners (the shell does so only if the adopted socket is still up). */
  | { readonly type: 'notify-up' }
  /** Close every socket, current and connecting. */
  | { readonly type: 'close-sockets' };

export interface LinkStep {
  readonly state: LinkState;
  readonly effects: readonly LinkEffect[];
}

export const LINK_START: LinkState = { kind: 'idle' };

const transportClosed = (): TransportError => new TransportError('network', 'the transport is closed');

/** What `event` does to the transport in `state`. */
export function linkTransition(state: LinkState, event: LinkEvent): LinkStep {
  const none: LinkStep = { state, effects: [] };
  switch (event.type) {
    case 'open-requested':
      if (state.kind === 'closed') return { state, effects: [{ type: 'reject', error: transportClosed() }] };
      if (state.kind !== 'idle') return { state, effects: [{ type: 'reject', error: new Error('the transport is already open') }] };
      if (!Number.isSafeInteger(event.after) || event.after < 0) return { state, effects: [{ type: 'reject', error: new RangeError('after is a sequence number') }] };
      return { state: { kind: 'opening' }, effects: [{ type: 'start' }, { type: 'connect' }] };
    case 'opened':
      if (state.kind === 'opening') return { state: { kind: 'open' }, effects: [{ type: 'adopt' }] };
      return { state, effects: [{ type: 'discard' }, { type: 'reject', error: new TransportError('network', 'the transport was closed while opening') }] };
    case 'open-failed':
      return state.kind === 'opening' ? { state: { kind: 'idle' }, effects: [{ type: 'forget-sink' }] } : none;
    case 'socket-ended':
      if (state.kind !== 'open') return none;
      if (isFatal(event.error)) return { state: { kind: 'stopped', fatal: event.error }, effects: [{ type: 'cancel-reconnect' }, { type: 'notify-down', error: event.error }] };
      return { state: { kind: 'reconnecting' }, effects: [{ type: 'schedule-reconnect' }, { type: 'notify-down', error: event.error }] };
    case 'reconnect-due':
      // The socket that dropped may still be in the sink: resume only after it, from the cursor it left.
      return state.kind === 'reconnecting' ? { state, effects: [{ type: 'await-delivery' }] } : none;
    case 'drained':
      return state.kind === 'reconnecting' ? { state, effects: [{ type: 'connect' }] } : none;
    case 'reconnected':
      return state.kind === 'reconnecting' ? { state: { kind: 'open' }, effects: [{ type: 'adopt' }, { type: 'notify-up' }] } : { state, effects: [{ type: 'discard' }] };
    case 'reconnect-failed':
      if (state.kind !== 'reconnecting') return none;
      if (isFatal(event.error)) return { state: { kind: 'stopped', fatal: event.error }, effects: [{ type: 'cancel-reconnect' }, { type: 'notify-down', error: event.error }] };
      return { state, effects: [{ type: 'schedule-reconnect' }] };
    case 'close-requested':
      if (state.kind === 'closed') return none;
      return { state: state.kind === 'stopped' ? { kind: 'closed', fatal: state.fatal } : { kind: 'closed' }, effects: [{ type: 'cancel-reconnect' }, { type: 'close-sockets' }] };
  }
}

/** Why a call that needs a live socket cannot have one in `state` (undefined: it may, if the socket is up). */
export function unavailable(state: LinkState): Error | undefined {
  if (state.kind === 'stopped' || (state.kind === 'closed' && state.fatal)) return state.fatal;
  if (state.kind === 'closed') return transportClosed();
  if (state.kind === 'idle' || state.kind === 'opening') return new Error('open the transport first');
  return undefined;
}
