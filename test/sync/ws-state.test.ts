// The WebSocket state machines (main/sync/ws-state.ts), transition by transition: for each (state, event)
// pair that matters, the next state and the effects the shell must perform. Pure functions, so no relay:
// what they do over a real socket is covered by ws-transport.test.ts and the transport contract.
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, type WsServerMessage } from '../../shared/portable/relay-api.ts';
import { EPOCH_CHANGED, TransportError } from '../../main/sync/transport.ts';
import {
  LINK_START,
  closeError,
  REAUTH_RETRY_MS,
  SOCKET_START,
  linkTransition,
  reauthDelay,
  socketTransition,
  unavailable,
  type LinkEvent,
  type LinkState,
  type SocketEvent,
  type SocketState,
} from '../../main/sync/ws-state.ts';

const NOW = 1_800_000_000_000; // ms
const EP = `ep_${'A'.repeat(22)}`;
const OTHER = `ep_${'B'.repeat(22)}`;
const EXP = NOW / 1000 + 300; // a 300 s token
const EXP_SHORT = NOW / 1000 + 4; // 4 s left
const DEVICE = `dev_${'a'.repeat(22)}`;

const net = new TransportError('network', 'the socket closed (1006)');
const revoked = new TransportError('auth', 'this device has been revoked', { code: 'revoked_device' });

// States
const connecting: SocketState = SOCKET_START;
const authenticating: SocketState = { kind: 'authenticating' };
const ready: SocketState = { kind: 'ready', exp: EXP, reauth: 'idle', caughtUp: false };
const reauthing: SocketState = { kind: 'ready', exp: EXP, reauth: 'pending', caughtUp: true };
const reauthingExpired: SocketState = { kind: 'ready', exp: NOW / 1000 - 1, reauth: 'pending', caughtUp: true };
const endedLive: SocketState = { kind: 'ended', error: net, cause: undefined, wasReady: true };
const endedEarly: SocketState = { kind: 'ended', error: net, cause: undefined, wasReady: false };

// Events
const msg = (message: WsServerMessage, boundEpoch: string | null = null): SocketEvent => ({ type: 'message', message, now: NOW, boundEpoch });
const readyMsg = (epoch = EP, exp = EXP): WsServerMessage => ({ type: 'ready', device_id: DEVICE, head: 0, epoch, exp });
const ack: WsServerMessage = { type: 'ack', id: 'p1', results: [], stored: 0, duplicate: 0, rejected: 0, head: 3, epoch: EP };
const events: WsServerMessage = { type: 'events', events: [] };
const caughtUpMsg: WsServerMessage = { type: 'caught_up', seq: 3 };
const refusedReauth: WsServerMessage = { type: 'error', code: 'rate_limited', message: 'slow down' };
const refusedPush = (code: 'rate_limited' | 'quota_exceeded' | 'unknown_device' | 'internal', quota?: 'stored_events'): WsServerMessage => ({ type: 'error', id: 'p1', code, message: 'no', ...(quota ? { quota } : {}) });
const closed = (code: number, reason = '', extra: { upgradeStatus?: number; socketError?: Error } = {}): SocketEvent => ({ type: 'closed', code, reason, ...extra });
const tick = (silentMs: number, pumping = false): SocketEvent => ({ type: 'tick', silentMs, idleTimeoutMs: 45_000, pumping });

/** An expected ended state: the error's kind, code and message (a regexp), and whether it had been ready. */
const ended = (kind: string, message: RegExp, wasReady: boolean, code?: string) => ({ kind: 'ended', wasReady, error: expect.objectContaining({ kind, message: expect.stringMatching(message), code }) as unknown });
const endEffects = (terminate: boolean) => (terminate ? ['end', 'terminate'] : ['end']);

interface SocketRow {
  name: string;
  from: SocketState;
  event: SocketEvent;
  to: object;
  effects: Array<string | object>;
}

const socketRows: SocketRow[] = [
  // Upgrade and auth
  { name: 'connecting + opened: send auth (and start the heartbeat)', from: connecting, event: { type: 'opened' }, to: authenticating, effects: [{ type: 'send-auth' }] },
  { name: 'authenticating + opened again: nothing', from: authenticating, event: { type: 'opened' }, to: authenticating, effects: [] },
  {
    name: 'authenticating + ready (unbound): ready; bind, arm re-auth a minute before expiry, resolve',
    from: authenticating,
    event: msg(readyMsg()),
    to: { kind: 'ready', exp: EXP, reauth: 'idle', caughtUp: false },
    effects: [{ type: 'bind-epoch', epoch: EP }, { type: 'arm-reauth', delayMs: 240_000 }, { type: 'resolve-ready' }],
  },
  { name: 'authenticating + ready of the bound epoch: ready', from: authenticating, event: msg(readyMsg(), EP), to: { kind: 'ready' }, effects: ['bind-epoch', 'arm-reauth', 'resolve-ready'] },
  {
    name: 'authenticating + ready of another epoch: ended epoch_changed (open() rejects)',
    from: authenticating,
    event: msg(readyMsg(OTHER), EP),
    to: ended('protocol', /another log/, false, EPOCH_CHANGED),
    effects: endEffects(true),
  },
  { name: 'authenticating + events: protocol error before ready', from: authenticating, event: msg(events), to: ended('protocol', /sent events before ready/, false), effects: endEffects(true) },
  { name: 'authenticating + ack: protocol error before ready', from: authenticating, event: msg(ack), to: ended('protocol', /sent ack before ready/, false), effects: endEffects(true) },
  { name: 'authenticating + invalid frame: ended, dropped', from: authenticating, event: { type: 'invalid', error: new TransportError('protocol', 'the relay sent a binary message') }, to: ended('protocol', /binary/, false), effects: endEffects(true) },
  { name: 'connecting + connect timeout (fail): ended, dropped', from: connecting, event: { type: 'fail', error: new TransportError('network', 'the relay did not accept the socket within 10 ms') }, to: ended('network', /did not accept/, false), effects: endEffects(true) },
  { name: 'authenticating + close 4401: auth failure with its reason', from: authenticating, event: closed(4401, 'unknown_device'), to: ended('auth', /refused the device's token: unknown_device/, false, 'unknown_device'), effects: endEffects(false) },
  { name: 'authenticating + close 4429 rate_limited: network, retried later', from: authenticating, event: closed(4429, 'rate_limited'), to: ended('network', /too many connections/, false), effects: endEffects(false) },
  { name: 'authenticating + close 4409 sockets: quota, not final', from: authenticating, event: closed(4409, 'sockets'), to: { kind: 'ended', error: expect.objectContaining({ kind: 'refused', code: 'quota_exceeded', quota: 'sockets' }) as unknown }, effects: endEffects(false) },
  { name: 'connecting + 1006 after upgrade refused with 404: refused', from: connecting, event: closed(1006, '', { upgradeStatus: 404 }), to: ended('refused', /upgrade was refused: HTTP 404/, false), effects: endEffects(false) },
  { name: 'connecting + 1006 after upgrade refused with 503: network', from: connecting, event: closed(1006, '', { upgradeStatus: 503 }), to: ended('network', /HTTP 503/, false), effects: endEffects(false) },
  { name: 'connecting + 1006 after upgrade refused with 429: network', from: connecting, event: closed(1006, '', { upgradeStatus: 429 }), to: ended('network', /HTTP 429/, false), effects: endEffects(false) },
  { name: 'connecting + 1006 with a socket error: cannot open', from: connecting, event: closed(1006, '', { socketError: new Error('connect ECONNREFUSED') }), to: ended('network', /cannot open a WebSocket to the relay: connect ECONNREFUSED/, false), effects: endEffects(false) },

  // Ready
  { name: 'ready + ready again: protocol error', from: ready, event: msg(readyMsg()), to: ended('protocol', /ready twice/, true), effects: endEffects(true) },
  { name: 'ready + events: queued for the sink', from: ready, event: msg(events), to: ready, effects: [{ type: 'enqueue', message: events }] },
  { name: 'ready + caught_up message: queued behind the pages', from: ready, event: msg(caughtUpMsg), to: ready, effects: [{ type: 'enqueue', message: caughtUpMsg }] },
  { name: 'ready + caught-up (from the pump): caught up, tell the transport', from: ready, event: { type: 'caught-up' }, to: { ...ready, caughtUp: true }, effects: [{ type: 'notify-caught-up' }] },
  { name: 'authenticating + caught-up: nothing', from: authenticating, event: { type: 'caught-up' }, to: authenticating, effects: [] },
  { name: 'ready + ack: settle the push', from: ready, event: msg(ack), to: ready, effects: [{ type: 'ack', id: 'p1', results: [], epoch: EP }] },
  { name: 'ready + error for a push (rate_limited): refuse it, stay up', from: ready, event: msg(refusedPush('rate_limited')), to: ready, effects: [{ type: 'refuse-push', id: 'p1', error: expect.objectContaining({ kind: 'refused', code: 'rate_limited' }) as unknown }] },
  {
    name: 'ready + error for a push (quota_exceeded): refused with the quota',
    from: ready,
    event: msg(refusedPush('quota_exceeded', 'stored_events')),
    to: ready,
    effects: [{ type: 'refuse-push', id: 'p1', error: expect.objectContaining({ kind: 'refused', code: 'quota_exceeded', quota: 'stored_events' }) as unknown }],
  },
  { name: 'ready + error for a push (unknown_device): auth', from: ready, event: msg(refusedPush('unknown_device')), to: ready, effects: [{ type: 'refuse-push', id: 'p1', error: expect.objectContaining({ kind: 'auth' }) as unknown }] },
  { name: 'ready + error for a push (internal): network', from: ready, event: msg(refusedPush('internal')), to: ready, effects: [{ type: 'refuse-push', id: 'p1', error: expect.objectContaining({ kind: 'network' }) as unknown }] },
  { name: 'ready + error without id, no re-auth pending: nothing', from: ready, event: msg(refusedReauth), to: ready, effects: [] },

  // Re-auth
  { name: 'ready + reauth-due: send a re-auth, pending', from: ready, event: { type: 'reauth-due' }, to: { ...ready, reauth: 'pending' }, effects: [{ type: 'send-reauth' }] },
  { name: 'authenticating + reauth-due: nothing', from: authenticating, event: { type: 'reauth-due' }, to: authenticating, effects: [] },
  {
    name: 'reauthing + reauthed: new expiry, re-armed',
    from: reauthing,
    event: msg({ type: 'reauthed', exp: EXP_SHORT }),
    to: { ...reauthing, exp: EXP_SHORT, reauth: 'idle' },
    effects: [{ type: 'arm-reauth', delayMs: 3_000 }],
  },
  { name: 'reauthing + refused (error without id): retry in at most 5 s', from: reauthing, event: msg(refusedReauth), to: { ...reauthing, reauth: 'idle' }, effects: [{ type: 'arm-reauth', delayMs: REAUTH_RETRY_MS }] },
  { name: 'reauthing, token expired + refused: no retry', from: reauthingExpired, event: msg(refusedReauth), to: { ...reauthingExpired, reauth: 'idle' }, effects: [] },
  { name: 'reauthing + error for a push: the push is refused, the re-auth still waits', from: reauthing, event: msg(refusedPush('rate_limited')), to: reauthing, effects: ['refuse-push'] },
  { name: 'reauthing + close 4403: revoked, final', from: reauthing, event: closed(4403, 'revoked'), to: ended('auth', /revoked/, true, 'revoked_device'), effects: endEffects(false) },
  { name: 'reauthing + close 4419: token expired, network', from: reauthing, event: closed(4419, 'token_expired'), to: ended('network', /token expired/, true, 'token_expired'), effects: endEffects(false) },

  // Heartbeat
  { name: 'ready + tick, heard recently: ping', from: ready, event: tick(1_000), to: ready, effects: [{ type: 'ping' }] },
  { name: 'ready + tick, silent but the sink works: nothing', from: ready, event: tick(60_000, true), to: ready, effects: [] },
  { name: 'ready + tick, silent past the idle timeout: ended, dropped', from: ready, event: tick(45_001), to: ended('network', /nothing heard from the relay for 45000 ms/, true), effects: endEffects(true) },

  // Closing
  { name: 'ready + close 1006 with a socket error: the close code, not "cannot open"', from: ready, event: closed(1006, '', { socketError: new Error('read ECONNRESET') }), to: ended('network', /^the socket closed \(1006\)$/, true), effects: endEffects(false) },
  { name: 'ready + close 1001: the relay shuts down', from: ready, event: closed(1001), to: ended('network', /shutting down/, true), effects: endEffects(false) },
  { name: 'ready + close requested: ended, not dropped (a clean close follows)', from: ready, event: { type: 'close-requested', error: new TransportError('network', 'the transport is closed') }, to: ended('network', /transport is closed/, true), effects: endEffects(false) },
  { name: 'authenticating + close requested: ended before ready (open() rejects)', from: authenticating, event: { type: 'close-requested', error: new TransportError('network', 'the transport is closed') }, to: ended('network', /transport is closed/, false), effects: endEffects(false) },
  {
    name: 'ready + sink failure (fail with cause): the cause is kept',
    from: ready,
    event: { type: 'fail', error: new TransportError('protocol', 'the event sink failed: disk full'), cause: 'disk full' },
    to: { kind: 'ended', cause: 'disk full', wasReady: true },
    effects: [{ type: 'end', cause: 'disk full', wasReady: true }, 'terminate'],
  },

  // Stale: the socket is over, whatever still arrives does nothing
  { name: 'ended + ack: nothing', from: endedLive, event: msg(ack), to: endedLive, effects: [] },
  { name: 'ended + events: nothing', from: endedLive, event: msg(events), to: endedLive, effects: [] },
  { name: 'ended (close requested before ready) + ready: nothing, nothing resolved', from: endedEarly, event: msg(readyMsg()), to: endedEarly, effects: [] },
  { name: 'ended + reauthed: nothing re-armed', from: endedLive, event: msg({ type: 'reauthed', exp: EXP }), to: endedLive, effects: [] },
  { name: 'ended + reauth-due: no re-auth sent', from: endedLive, event: { type: 'reauth-due' }, to: endedLive, effects: [] },
  { name: 'ended + caught-up: nothing', from: endedLive, event: { type: 'caught-up' }, to: endedLive, effects: [] },
  { name: 'ended + opened: no auth sent', from: endedEarly, event: { type: 'opened' }, to: endedEarly, effects: [] },
  { name: 'ended + tick: nothing', from: endedLive, event: tick(100_000), to: endedLive, effects: [] },
  { name: 'ended + invalid frame: nothing', from: endedLive, event: { type: 'invalid', error: new TransportError('protocol', 'x') }, to: endedLive, effects: [] },
  { name: 'ended + close (the socket finally closes): the first reason stands', from: endedLive, event: closed(4403, 'revoked'), to: endedLive, effects: [] },
  { name: 'ended + close requested: nothing', from: endedLive, event: { type: 'close-requested', error: net }, to: endedLive, effects: [] },
  { name: 'ended + fail: only drops the socket (the first reason stands)', from: endedLive, event: { type: 'fail', error: revoked }, to: endedLive, effects: [{ type: 'terminate' }] },
];

describe('socketTransition', () => {
  it.each(socketRows)('$name', ({ from, event, to, effects }) => {
    const step = socketTransition(from, event);
    expect(step.state).toMatchObject(to);
    expect(step.effects).toHaveLength(effects.length);
    effects.forEach((expected, index) => {
      if (typeof expected === 'string') expect(step.effects[index]?.type).toBe(expected);
      else expect(step.effects[index]).toMatchObject(expected);
    });
  });

  it('an end effect carries the same error as the ended state, and whether open() or the transport hears of it', () => {
    for (const from of [authenticating, ready]) {
      const step = socketTransition(from, closed(4403, 'revoked'));
      expect(step.state.kind).toBe('ended');
      const end = step.effects[0];
      expect(end?.type).toBe('end');
      if (step.state.kind === 'ended' && end?.type === 'end') {
        expect(end.error).toBe(step.state.error);
        expect(end.wasReady).toBe(from.kind === 'ready');
      }
    }
  });

  it('a whole life: open, auth, ready, backlog, re-auth, revocation; then everything is stale', () => {
    const run = (events: SocketEvent[]): { state: SocketState; effects: string[] } => {
      let state = SOCKET_START;
      const effects: string[] = [];
      for (const event of events) {
        const step = socketTransition(state, event);
        state = step.state;
        effects.push(...step.effects.map((effect) => effect.type));
      }
      return { state, effects };
    };
    const { state, effects } = run([{ type: 'opened' }, msg(readyMsg()), msg(events), msg(caughtUpMsg), { type: 'caught-up' }, { type: 'reauth-due' }, closed(4403, 'revoked'), msg(ack), { type: 'reauth-due' }]);
    expect(effects).toEqual(['send-auth', 'bind-epoch', 'arm-reauth', 'resolve-ready', 'enqueue', 'enqueue', 'notify-caught-up', 'send-reauth', 'end']);
    expect(state).toMatchObject({ kind: 'ended', wasReady: true, error: { kind: 'auth', code: 'revoked_device' } });
  });

  it('re-auth is due a minute before expiry, or at three quarters of a short token, never in the past', () => {
    expect(reauthDelay(EXP, NOW)).toBe(240_000);
    expect(reauthDelay(EXP_SHORT, NOW)).toBe(3_000);
    expect(reauthDelay(NOW / 1000 - 10, NOW)).toBe(0);
  });
});

interface LinkRow {
  name: string;
  from: LinkState;
  event: LinkEvent;
  to: LinkState;
  effects: Array<string | object>;
}

const idle: LinkState = LINK_START;
const opening: LinkState = { kind: 'opening' };
const open: LinkState = { kind: 'open' };
const reconnecting: LinkState = { kind: 'reconnecting' };
const stopped: LinkState = { kind: 'stopped', fatal: revoked };
const closedLink: LinkState = { kind: 'closed' };
const closedAfterStop: LinkState = { kind: 'closed', fatal: revoked };
const epochChanged = new TransportError('protocol', 'another log', { code: EPOCH_CHANGED });
const quota = new TransportError('refused', 'the relay has as many live connections open', { code: 'quota_exceeded', quota: 'sockets' });
const closeEffects = ['cancel-reconnect', 'close-sockets'];

const linkRows: LinkRow[] = [
  // open()
  { name: 'idle + open requested: opening; start and connect', from: idle, event: { type: 'open-requested', after: 0 }, to: opening, effects: ['start', 'connect'] },
  { name: 'idle + open requested with a negative cursor: RangeError, still idle', from: idle, event: { type: 'open-requested', after: -1 }, to: idle, effects: [{ type: 'reject', error: expect.any(RangeError) as unknown }] },
  { name: 'idle + open requested with a fractional cursor: RangeError', from: idle, event: { type: 'open-requested', after: 1.5 }, to: idle, effects: [{ type: 'reject', error: expect.objectContaining({ message: 'after is a sequence number' }) as unknown }] },
  { name: 'opening + a second open request: already open', from: opening, event: { type: 'open-requested', after: 0 }, to: opening, effects: [{ type: 'reject', error: expect.objectContaining({ message: 'the transport is already open' }) as unknown }] },
  { name: 'open + open request: already open', from: open, event: { type: 'open-requested', after: 0 }, to: open, effects: ['reject'] },
  { name: 'stopped + open request: already open', from: stopped, event: { type: 'open-requested', after: 0 }, to: stopped, effects: ['reject'] },
  { name: 'closed + open request: the transport is closed', from: closedLink, event: { type: 'open-requested', after: 0 }, to: closedLink, effects: [{ type: 'reject', error: expect.objectContaining({ kind: 'network', message: 'the transport is closed' }) as unknown }] },
  { name: 'opening + opened: open, adopt the socket', from: opening, event: { type: 'opened' }, to: open, effects: [{ type: 'adopt' }] },
  {
    name: 'closed + opened (closed while opening): discard the socket, reject',
    from: closedLink,
    event: { type: 'opened' },
    to: closedLink,
    effects: ['discard', { type: 'reject', error: expect.objectContaining({ kind: 'network', message: 'the transport was closed while opening' }) as unknown }],
  },
  { name: 'opening + open failed: idle again, sink forgotten', from: opening, event: { type: 'open-failed' }, to: idle, effects: ['forget-sink'] },
  { name: 'closed + open failed: stays closed', from: closedLink, event: { type: 'open-failed' }, to: closedLink, effects: [] },

  // Drops
  { name: 'open + socket ended (network): reconnecting, tell onDown', from: open, event: { type: 'socket-ended', error: net }, to: reconnecting, effects: ['schedule-reconnect', { type: 'notify-down', error: net }] },
  { name: 'open + socket ended (quota, not final): reconnecting', from: open, event: { type: 'socket-ended', error: quota }, to: reconnecting, effects: ['schedule-reconnect', 'notify-down'] },
  { name: 'open + socket ended (revoked): stopped, never retried', from: open, event: { type: 'socket-ended', error: revoked }, to: { kind: 'stopped', fatal: revoked }, effects: ['cancel-reconnect', { type: 'notify-down', error: revoked }] },
  { name: 'open + socket ended (epoch changed): stopped', from: open, event: { type: 'socket-ended', error: epochChanged }, to: { kind: 'stopped', fatal: epochChanged }, effects: ['cancel-reconnect', 'notify-down'] },
  { name: 'reconnecting + socket ended: nothing (one drop, one down)', from: reconnecting, event: { type: 'socket-ended', error: net }, to: reconnecting, effects: [] },
  { name: 'closed + socket ended: nothing', from: closedLink, event: { type: 'socket-ended', error: net }, to: closedLink, effects: [] },
  { name: 'stopped + socket ended: nothing', from: stopped, event: { type: 'socket-ended', error: net }, to: stopped, effects: [] },

  // Reconnecting
  { name: 'reconnecting + reconnect due: wait for the sink first', from: reconnecting, event: { type: 'reconnect-due' }, to: reconnecting, effects: ['await-delivery'] },
  { name: 'closed + reconnect due: nothing', from: closedLink, event: { type: 'reconnect-due' }, to: closedLink, effects: [] },
  { name: 'reconnecting + drained: connect', from: reconnecting, event: { type: 'drained' }, to: reconnecting, effects: ['connect'] },
  { name: 'closed + drained (closed while the sink worked): no socket', from: closedLink, event: { type: 'drained' }, to: closedLink, effects: [] },
  { name: 'reconnecting + reconnected: open, adopt, tell onUp', from: reconnecting, event: { type: 'reconnected' }, to: open, effects: ['adopt', 'notify-up'] },
  { name: 'closed + reconnected (closed while connecting): discard the socket', from: closedLink, event: { type: 'reconnected' }, to: closedLink, effects: ['discard'] },
  { name: 'reconnecting + reconnect failed (network): try again later, no second down', from: reconnecting, event: { type: 'reconnect-failed', error: net }, to: reconnecting, effects: ['schedule-reconnect'] },
  { name: 'reconnecting + reconnect failed (revoked): stopped, tell onDown', from: reconnecting, event: { type: 'reconnect-failed', error: revoked }, to: stopped, effects: ['cancel-reconnect', { type: 'notify-down', error: revoked }] },
  { name: 'closed + reconnect failed: nothing', from: closedLink, event: { type: 'reconnect-failed', error: revoked }, to: closedLink, effects: [] },

  // close()
  ...[idle, opening, open, reconnecting].map((from): LinkRow => ({ name: `${from.kind} + close requested: closed; cancel the reconnect, close the sockets`, from, event: { type: 'close-requested' }, to: closedLink, effects: closeEffects })),
  { name: 'stopped + close requested: closed, the fatal error kept', from: stopped, event: { type: 'close-requested' }, to: closedAfterStop, effects: closeEffects },
  { name: 'closed + close requested: nothing', from: closedLink, event: { type: 'close-requested' }, to: closedLink, effects: [] },
];

describe('linkTransition', () => {
  it.each(linkRows)('$name', ({ from, event, to, effects }) => {
    const step = linkTransition(from, event);
    expect(step.state).toEqual(to);
    expect(step.effects).toHaveLength(effects.length);
    effects.forEach((expected, index) => {
      if (typeof expected === 'string') expect(step.effects[index]?.type).toBe(expected);
      else expect(step.effects[index]).toMatchObject(expected);
    });
  });

  it.each([
    { state: idle, error: 'open the transport first' },
    { state: opening, error: 'open the transport first' },
    { state: open, error: undefined },
    { state: reconnecting, error: undefined },
    { state: stopped, error: 'this device has been revoked' },
    { state: closedAfterStop, error: 'this device has been revoked' },
    { state: closedLink, error: 'the transport is closed' },
  ])('a call needing a socket in $state.kind (fatal: $state.fatal.code) fails with: $error', ({ state, error }) => {
    expect(unavailable(state)?.message).toBe(error);
  });

  it('a revoked socket stops the transport; after close every call still names the revocation', () => {
    let state = LINK_START;
    for (const event of [{ type: 'open-requested', after: 0 }, { type: 'opened' }, { type: 'socket-ended', error: revoked }, { type: 'close-requested' }] as LinkEvent[]) state = linkTransition(state, event).state;
    expect(state).toEqual(closedAfterStop);
    expect(unavailable(state)).toBe(revoked);
  });
});

describe('what the relay says when it closes or refuses, in words', () => {
  it.each([
    [CLOSE_CODES.authFailed, 'bad_signature', 'auth', "the relay refused the device's token: bad_signature", 'bad_signature'],
    [CLOSE_CODES.authFailed, '', 'auth', "the relay refused the device's token: no reason given", undefined],
    [CLOSE_CODES.authFailed, 'nonsense', 'auth', "the relay refused the device's token: nonsense", undefined],
    [CLOSE_CODES.revoked, 'revoked', 'auth', 'this device has been revoked', 'revoked_device'],
    [CLOSE_CODES.tokenExpired, 'token_expired', 'network', 'the socket token expired before it was renewed', 'token_expired'],
    [CLOSE_CODES.protocolError, 'bad_request', 'protocol', 'the relay refused a message: bad_request', 'bad_request'],
    [CLOSE_CODES.protocolError, 'not a code', 'protocol', 'the relay refused a message: not a code', undefined],
    [CLOSE_CODES.tooBig, '', 'protocol', 'a message was too big for the relay', undefined],
    [CLOSE_CODES.authTimeout, 'auth_timeout', 'network', 'the relay timed out waiting for auth', undefined],
    [CLOSE_CODES.overloaded, 'rate_limited', 'network', 'the relay is taking too many connections from this network; it retries later', undefined],
    [CLOSE_CODES.overloaded, 'overloaded', 'network', 'the relay closed an overloaded socket', undefined],
    [CLOSE_CODES.goingAway, '', 'network', 'the relay is shutting down', undefined],
    [4999, 'odd', 'network', 'the socket closed (4999 odd)', undefined],
  ] as const)('close %i %s: %s', (code, reason, kind, message, errorCode) => {
    const error = closeError(code, reason);
    expect([error.kind, error.message, error.code]).toEqual([kind, message, errorCode]);
  });

  it('an upgrade refused with HTTP 500 is worth a retry; a socket error is the cause only while no close code says more', () => {
    const upgrade = socketTransition(connecting, closed(1006, '', { upgradeStatus: 500 })).state as Extract<SocketState, { kind: 'ended' }>;
    expect([upgrade.error.kind, upgrade.error.message]).toEqual(['network', 'the WebSocket upgrade was refused: HTTP 500']);
    const refused = new Error('connect ECONNREFUSED');
    const cannot = socketTransition(connecting, closed(1006, '', { socketError: refused })).state as Extract<SocketState, { kind: 'ended' }>;
    expect(cannot.error.cause).toBe(refused);
    // A close code from the relay, with a socket error beside it: the code's words.
    const auth = socketTransition(authenticating, closed(CLOSE_CODES.authFailed, 'bad_signature', { socketError: new Error('read ECONNRESET') })).state as Extract<SocketState, { kind: 'ended' }>;
    expect([auth.error.kind, auth.error.code]).toEqual(['auth', 'bad_signature']);
  });

  it.each([
    ['bad_signature', 'auth'],
    ['wrong_motebit', 'auth'],
    ['internal', 'network'],
    ['payload_too_large', 'refused'],
  ] as const)('a push refused with %s is a %s failure that keeps its code', (code, kind) => {
    const step = socketTransition(ready, msg({ type: 'error', id: 'p1', code, message: 'no' }));
    expect(step.effects).toEqual([{ type: 'refuse-push', id: 'p1', error: expect.objectContaining({ kind, code, message: `the relay refused the push: ${code}: no` }) as unknown }]);
  });
});

describe('socket edges', () => {
  it('a refused re-auth is tried again in a quarter of the time left (at most 5 s), and not when no time is left', () => {
    const at = (msLeft: number): SocketState => ({ kind: 'ready', exp: (NOW + msLeft) / 1000, reauth: 'pending', caughtUp: true });
    expect(socketTransition(at(4_000), msg(refusedReauth)).effects).toEqual([{ type: 'arm-reauth', delayMs: 1_000 }]);
    expect(socketTransition(at(0), msg(refusedReauth)).effects).toEqual([]);
  });

  it('silence of exactly the idle timeout is not yet silence: a ping', () => {
    expect(socketTransition(ready, tick(45_000))).toEqual({ state: ready, effects: [{ type: 'ping' }] });
  });

  it('why a call cannot have a socket: not opened yet, or closed', () => {
    expect(unavailable(LINK_START)?.message).toBe('open the transport first');
    expect(unavailable({ kind: 'closed' })?.message).toBe('the transport is closed');
  });
});
