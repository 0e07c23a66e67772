// The IPC contract carries the same values over Electron IPC (structured clone) and the harness socket
// (JSON): for a real output of every channel and every event payload the two copies are equal and both
// still satisfy the schema. And the dispatcher turns away unknown channels and invalid inputs with typed
// errors before any handler runs.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AppController } from '../main/app/app-controller.ts';
import { createDispatcher, type Dispatch, type Handlers } from '../main/app/ipc-dispatch.ts';
import { configPath } from '../main/config/home.ts';
import { parseRequest } from '../main/harness/protocol.ts';
import { RelayUrlError } from '../main/config/relay-url.ts';
import { CHANNELS, EVENT_NAMES, IPC_CONTRACT, IPC_EVENTS, MAX_INTERVAL_SECONDS, MIN_INTERVAL_SECONDS, type Channel, type EventName } from '../shared/portable/ipc-contract.ts';
import type { SyncStatus } from '../shared/portable/status.ts';
import { Lab } from './support/devices.ts';

const platform = () => {
  let startAtLogin = false;
  return { notify: () => {}, getStartAtLogin: () => startAtLogin, setStartAtLogin: (on: boolean) => void (startAtLogin = on) };
};

const outputs = new Map<Channel, unknown[]>();
const events = new Map<EventName, unknown[]>();
const record = <K>(map: Map<K, unknown[]>, key: K, value: unknown) => map.set(key, [...(map.get(key) ?? []), value]);

let lab: Lab;
const controllers: AppController[] = [];

function controller(name: string): { app: AppController; dispatch: Dispatch } {
  const app = new AppController({ ...lab.home(name), platform: platform() });
  controllers.push(app);
  app.onStatus((status) => record(events, 'status.changed', status));
  app.onState((state) => record(events, 'app.changed', state));
  const dispatch = createDispatcher(app.handlers());
  return {
    app,
    dispatch: async (channel, input) => {
      const result = await dispatch(channel, input);
      if (!result.ok) throw new Error(`${channel} failed: ${result.error.code} ${result.error.message}`);
      record(outputs, channel as Channel, result.value);
      return result;
    },
  };
}

const ID = { mb: 'mb_AAAAAAAAAAAAAAAAAAAAAA', dv: 'dv_BBBBBBBBBBBBBBBBBBBBBB', dv2: 'dv_CCCCCCCCCCCCCCCCCCCCCC' };
const E1 = '0195f0a0-0000-7000-8000-000000000001';
const E2 = '0195f0a0-0000-7000-8000-000000000002';
const STATUS_WITH_EVERYTHING: SyncStatus = {
  state: 'error',
  transport: 'http',
  lastSuccessAt: 1_760_000_000_000,
  nextCycleAt: 1_760_000_030_000,
  pendingOut: 3,
  openConflicts: 1,
  rejectedEvents: 2,
  quarantinedEvents: 1,
  lastRecovery: { at: 1_760_000_000_500, reason: 'relay_replaced', resent: 2438, message: 'The relay had lost data (its storage was replaced by an empty one); this device sent 2,438 events again.' },
  lastError: { kind: 'relay', message: 'the relay answered 500', nextStep: 'try again later', at: 1_760_000_001_000 },
  progress: { phase: 'push', done: 1, total: 3 },
};

beforeAll(async () => {
  lab = new Lab();
  const relay = await lab.relay();

  // a device made through the contract, a second one joining it, a conflict between them
  const a = controller('a');
  await a.app.start();
  await a.dispatch('app.state', {});
  await a.dispatch('app.environment', {});
  await a.dispatch('setup.cancel', {}); // nothing to cancel: { cancelled: false }
  await a.dispatch('secrets.retry', {});
  await controller('f').dispatch('secrets.useFile', {});
  await a.dispatch('setup.create', { relayUrl: relay.url, deviceName: 'laptop' });
  await a.dispatch('app.state', {});
  const taken = (await a.dispatch('recovery.take', {})) as { ok: true; value: { motebitId: string; recoveryKey: string } }; // the recovery key of the motebit just made, once ...
  await a.dispatch('recovery.take', {}); // ... then null
  // every device lost: the recovery key adds a new one
  const recovered = controller('r');
  await recovered.app.start();
  await recovered.dispatch('setup.recover', { relayUrl: relay.url, motebitId: taken.value.motebitId, recoveryKey: taken.value.recoveryKey, deviceName: 'recovered' });
  // a second device joins by approval, both sides through the contract
  const phone = controller('b');
  await phone.app.start();
  const started = (await phone.dispatch('setup.joinStart', { relayUrl: relay.url, deviceName: 'phone' })) as { ok: true; value: { code: string } };
  const [checked, digits] = (await Promise.all([a.dispatch('pairing.check', { code: started.value.code }), phone.dispatch('setup.joinDigits', {})])) as { ok: true; value: { deviceId: string; sas: string } }[];
  expect(checked!.value.sas).toBe(digits!.value.sas);
  await a.dispatch('pairing.approve', { deviceId: checked!.value.deviceId });
  await phone.dispatch('setup.joinFinish', {});
  await a.dispatch('pairing.decline', {}); // nothing waiting: { declined: false }
  const b = phone.app.current;
  a.app.current.put('memory/x', { text: 'from a', tags: ['a', 1, null, true] });
  b.put('memory/x', { text: 'from b', nested: { n: 1.5 } });
  await a.dispatch('sync.now', {});
  expect((await b.syncNow()).ok).toBe(true);
  await a.dispatch('sync.now', {});
  a.app.current.put('memory/y', 'a');
  b.delete('memory/y');
  await a.dispatch('sync.now', {});
  expect((await b.syncNow()).ok).toBe(true);
  await a.dispatch('sync.now', {});
  const [first, second] = (await a.dispatch('conflicts.list', {})).ok ? a.app.current.conflicts() : [];
  expect(first && second).toBeTruthy();
  await a.dispatch('conflicts.list', { includeResolved: true });
  await a.dispatch('conflicts.markReviewed', { id: first!.id });
  const keep = first!.currentEventId === first!.winner.eventId ? first!.loser.eventId : first!.winner.eventId;
  await a.dispatch('conflicts.keep', { id: first!.id, eventId: keep });
  await a.dispatch('conflicts.list', { includeResolved: true });
  await a.dispatch('conflicts.counts', {});
  await a.dispatch('conflicts.keepMany', { ids: [second!.id], keep: 'current' });
  await a.dispatch('conflicts.list', { filter: 'settled', entityPrefix: 'memory/', deviceId: a.app.current.identity.deviceId });
  // Settings → Storage: no snapshot yet, then one saved, then this device's old history pruned below it
  await a.dispatch('snapshot.info', {});
  await a.dispatch('snapshot.make', {});
  await a.dispatch('snapshot.info', {});
  await a.dispatch('snapshot.prune', {});

  await a.dispatch('status.get', {});
  await a.dispatch('sync.pause', {});
  await a.dispatch('sync.resume', {});
  await a.dispatch('settings.get', {});
  await a.dispatch('settings.setRelayUrl', { relayUrl: `${relay.url}/` });
  await a.dispatch('settings.moveRelay', { relayUrl: relay.url, tellOthers: false });
  await a.dispatch('relay.moveOffer', {});
  await a.dispatch('relay.dismissMove', { at: 1 });
  await a.dispatch('settings.setInterval', { seconds: 45 });
  await a.dispatch('settings.setStartAtLogin', { enabled: true });

  await a.dispatch('devices.list', {});
  await a.dispatch('devices.revoke', { deviceId: b.identity.deviceId }); // per-device keys: a remove entry and a new key

  // a motebit that shares one master token (protocol 2, made only outside the window now): pairing codes
  const old = controller('o');
  await old.app.start();
  await old.app.create(relay.url, 'old-laptop', 'shared');
  await old.dispatch('settings.get', {});
  await old.dispatch('pairing.create', {});
  const c = controller('c');
  await c.app.start();
  const pairing = (await old.dispatch('pairing.create', {})) as { ok: true; value: { code: string } };
  await c.dispatch('setup.join', { pairingCode: pairing.value.code, deviceName: 'tablet' });
  await old.dispatch('devices.list', {});
  await old.dispatch('devices.revoke', { deviceId: c.app.state().phase === 'ready' ? (c.app.state() as { deviceId: string }).deviceId : '' });
  await old.dispatch('devices.list', {});
  // upgrading it: the old laptop founds the log, a second old device is approved by it
  const d = controller('d');
  await d.app.start();
  await d.dispatch('setup.join', { pairingCode: ((await old.dispatch('pairing.create', {})) as { ok: true; value: { code: string } }).value.code, deviceName: 'old-phone' });
  await old.dispatch('keys.upgradeCancel', {}); // nothing to cancel: { cancelled: false }
  await old.dispatch('keys.upgrade', {}); // { kind: 'founded' }
  await old.dispatch('recovery.take', {});
  await d.dispatch('keys.upgradeWaiting', {}); // nothing waiting: null
  const upgrading = (await d.dispatch('keys.upgrade', {})) as { ok: true; value: { code: string } }; // { kind: 'join', … }
  await d.dispatch('keys.upgradeWaiting', {}); // the same code again
  const [approval, upgradeDigits] = (await Promise.all([old.dispatch('pairing.check', { code: upgrading.value.code }), d.dispatch('keys.upgradeDigits', {})])) as { ok: true; value: { deviceId: string; sas: string } }[];
  expect(approval!.value.sas).toBe(upgradeDigits!.value.sas);
  await old.dispatch('pairing.approve', { deviceId: approval!.value.deviceId });
  await d.dispatch('keys.upgradeFinish', {});

  // the values a healthy lab rarely produces
  record(outputs, 'app.state', { phase: 'setup' });
  record(outputs, 'setup.cancel', { cancelled: true });
  record(outputs, 'keys.upgradeCancel', { cancelled: true });
  record(outputs, 'app.environment', {
    secrets: { store: 'unavailable', filePath: null, why: 'No keyring service answers.', command: "dbus-run-session -- sh -c 'printf %s \"$pw\" | gnome-keyring-daemon --unlock && npm start'", instead: null, fileMeaning: 'plain file', details: 'Platform secure storage failure' },
    defaultDeviceName: 'laptop',
  });
  record(outputs, 'status.get', STATUS_WITH_EVERYTHING);
  record(outputs, 'sync.now', { ok: false, pushed: 0, pulled: 0, error: { kind: 'network', message: 'connect ECONNREFUSED', nextStep: 'check the relay', at: 1 } });
  record(outputs, 'conflicts.list', [
    {
      id: 7,
      entity: 'memory/with "quotes" and ünïcödé ✓',
      winner: { eventId: E2, deviceId: ID.dv2, deviceName: null, kept: true, op: 'delete', value: null, writtenAt: 2 },
      loser: { eventId: E1, deviceId: ID.dv, deviceName: 'laptop', kept: true, op: 'set', value: { deep: [[{ a: -0.5 }], ''], big: 9_007_199_254_740_991 }, writtenAt: 1 },
      currentEventId: E2,
      detectedAt: 3,
      reviewedAt: null,
      resolvedBy: null,
      why: 'Same clock: device order decides (every device picks the same one).',
    },
    {
      // A settled conflict of an entity deleted since, on a device that pruned below a snapshot: its sides are gone.
      id: 8,
      entity: 'memory/deleted',
      winner: { eventId: E2, deviceId: ID.dv2, deviceName: null, kept: false, op: null, value: null, writtenAt: null },
      loser: { eventId: E1, deviceId: ID.dv, deviceName: 'laptop', kept: false, op: null, value: null, writtenAt: null },
      currentEventId: E2,
      detectedAt: 3,
      reviewedAt: null,
      resolvedBy: E2,
      why: 'Later clock: it was written after seeing more.',
    },
  ]);
  record(outputs, 'devices.list', [{ deviceId: ID.dv, name: null, enrolledAt: 1, revokedAt: 2, current: false }]);
  record(outputs, 'relay.moveOffer', { url: 'https://relay.example.com', deviceId: ID.dv2, deviceName: 'laptop', at: 1 });
  record(outputs, 'snapshot.info', { events: 0, databaseBytes: 4096, latest: { kind: 'unknown', message: 'The relay could not be reached: check the network.', details: 'fetch failed' } });
  record(events, 'status.changed', STATUS_WITH_EVERYTHING);
  record(events, 'app.changed', { phase: 'setup' });
}, 120_000);

afterAll(async () => {
  for (const app of controllers) await app.close().catch(() => {});
  await lab.close();
});

/** Electron IPC (structured clone) and the harness (JSON) carry the value identically, and it still parses. */
function expectSameOverBothCarriers(value: unknown, schema: { parse(v: unknown): unknown }): void {
  const cloned = structuredClone(value);
  const json: unknown = JSON.parse(JSON.stringify(value));
  expect(cloned).toStrictEqual(json);
  expect(json).toStrictEqual(value);
  expect(schema.parse(cloned)).toStrictEqual(value);
  expect(schema.parse(json)).toStrictEqual(value);
}

describe('the IPC contract over structured clone and JSON', () => {
  it('has a real sample of every channel output and every event payload', () => {
    expect(CHANNELS.filter((channel) => !outputs.get(channel)?.length)).toEqual([]);
    expect(EVENT_NAMES.filter((event) => !events.get(event)?.length)).toEqual([]);
    const statuses = events.get('status.changed') as SyncStatus[];
    expect(statuses.some((s) => s.progress !== null)).toBe(true); // progress events were seen for real
  });

  it.each(CHANNELS)('%s: every output sample survives both carriers and still parses', (channel) => {
    for (const value of outputs.get(channel) ?? []) expectSameOverBothCarriers(value, IPC_CONTRACT[channel].output);
  });

  it.each(EVENT_NAMES)('%s: every payload survives both carriers and still parses', (event) => {
    for (const value of events.get(event) ?? []) expectSameOverBothCarriers(value, IPC_EVENTS[event]);
  });

});

describe('the dispatcher', () => {
  function spies() {
    const handlers = Object.fromEntries(CHANNELS.map((channel) => [channel, vi.fn(() => ({}))])) as unknown as Handlers & Record<Channel, ReturnType<typeof vi.fn>>;
    return { handlers, dispatch: createDispatcher(handlers), calls: () => CHANNELS.reduce((n, c) => n + handlers[c].mock.calls.length, 0) };
  }

  it('rejects unknown channels with unknown_channel and calls nothing', async () => {
    const { dispatch, calls } = spies();
    for (const channel of ['nope', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'app.state ', 'APP.STATE', 'x'.repeat(10_000)]) {
      const result = await dispatch(channel, {});
      expect(result).toEqual({ ok: false, error: { code: 'unknown_channel', message: expect.any(String) } });
      if (!result.ok) expect(result.error.message.length).toBeLessThan(100);
    }
    expect(calls()).toBe(0);
  });

  it('rejects invalid inputs with invalid_argument (naming the field) and calls nothing', async () => {
    const { dispatch, calls } = spies();
    const cases: [Channel, unknown, string | undefined][] = [
      ...CHANNELS.map((channel): [Channel, unknown, string | undefined] => [channel, { unexpected: 1 }, undefined]),
      ...CHANNELS.map((channel): [Channel, unknown, string | undefined] => [channel, 'a string', undefined]),
      ...CHANNELS.map((channel): [Channel, unknown, string | undefined] => [channel, [1, 2], undefined]),
      ['setup.create', {}, 'relayUrl'],
      ['setup.create', { relayUrl: '   ' }, 'relayUrl'],
      ['setup.create', { relayUrl: 'https://r.example', deviceName: '' }, 'deviceName'],
      ['setup.create', { relayUrl: 'https://r.example', deviceName: 'x'.repeat(65) }, 'deviceName'],
      ['setup.join', { pairingCode: '' }, 'pairingCode'],
      ['setup.join', { pairingCode: 42 }, 'pairingCode'],
      ['conflicts.list', { includeResolved: 'yes' }, 'includeResolved'],
      ['conflicts.markReviewed', { id: 0 }, 'id'],
      ['conflicts.markReviewed', { id: 1.5 }, 'id'],
      ['conflicts.markReviewed', { id: '1' }, 'id'],
      ['conflicts.keep', { id: 1, eventId: 'not-a-uuid' }, 'eventId'],
      ['conflicts.keep', { id: 1 }, 'eventId'],
      ['settings.setRelayUrl', { relayUrl: '' }, 'relayUrl'],
      ['settings.setInterval', { seconds: MIN_INTERVAL_SECONDS - 1 }, 'seconds'],
      ['settings.setInterval', { seconds: MAX_INTERVAL_SECONDS + 1 }, 'seconds'],
      ['settings.setInterval', { seconds: null }, 'seconds'],
      ['settings.setStartAtLogin', { enabled: 'true' }, 'enabled'],
      ['devices.revoke', { deviceId: 'dv_short' }, 'deviceId'],
    ];
    for (const [channel, input, field] of cases) {
      const result = await dispatch(channel, input);
      expect(result, `${channel} ${JSON.stringify(input)}`).toMatchObject({ ok: false, error: { code: 'invalid_argument' } });
      if (field !== undefined && !result.ok) expect(result.error.field, `${channel} ${JSON.stringify(input)}`).toBe(field);
    }
    expect(calls()).toBe(0);
  });

  it('an output that breaks the contract is an internal error, never passed on', async () => {
    const { handlers, dispatch } = spies();
    handlers['status.get'].mockReturnValue({ state: 'idle', extra: new Date() });
    expect(await dispatch('status.get', {})).toMatchObject({ ok: false, error: { code: 'internal' } });
    handlers['settings.setRelayUrl'].mockImplementation(() => {
      throw new RelayUrlError('a relay URL is http:// or https://');
    });
    expect(await dispatch('settings.setRelayUrl', { relayUrl: 'ftp://x' })).toEqual({ ok: false, error: { code: 'invalid_argument', message: expect.stringMatching(/^A relay URL is http:\/\/ or https:\/\/: enter the relay address/), field: 'relayUrl' } });
  });

  it('with the real controller: a bad call before setup writes nothing, and a bad relay URL changes nothing', async () => {
    const empty = new AppController({ ...lab.home('empty'), platform: platform() });
    controllers.push(empty);
    await empty.start();
    const dispatch = createDispatcher(empty.handlers());
    expect(await dispatch('sync.now', {})).toMatchObject({ ok: false, error: { code: 'invalid_state' } });
    expect(await dispatch('setup.create', { relayUrl: 'ftp://relay.example.com' })).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'relayUrl' } });
    expect(await dispatch('setup.create', { relayUrl: 'http://127.0.0.1:9' })).toMatchObject({ ok: false, error: { code: 'network' } });
    expect(existsSync(configPath(join(lab.dir, 'empty')))).toBe(false);
    expect(empty.state()).toEqual({ phase: 'setup' });

    const ready = controllers[0]!;
    const readyDispatch = createDispatcher(ready.handlers());
    const before = { settings: ready.settings(), config: readFileSync(configPath(join(lab.dir, 'a')), 'utf8') };
    for (const relayUrl of ['ftp://relay.example.com', 'https://relay.example.com/path', 'not a url', 'https://user:pw@relay.example.com']) {
      expect(await readyDispatch('settings.setRelayUrl', { relayUrl })).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'relayUrl' } });
    }
    expect(ready.settings()).toEqual(before.settings);
    expect(readFileSync(configPath(join(lab.dir, 'a')), 'utf8')).toBe(before.config);
  });
});

describe('the harness socket envelope', () => {
  it('accepts {id, channel, input} and answers anything else with an error', () => {
    expect(parseRequest('{"id":1,"channel":"app.state","input":{}}')).toEqual({ ok: true, request: { id: 1, channel: 'app.state', input: {} } });
    expect(parseRequest('{"id":2,"channel":"app.state"}')).toMatchObject({ ok: true });
    for (const [text, id] of [
      ['', null],
      ['{', null],
      ['null', null],
      ['"text"', null],
      ['{"id":-1,"channel":"app.state"}', null],
      ['{"id":1.5,"channel":"app.state"}', null],
      ['{"id":3}', 3],
      ['{"id":4,"channel":""}', 4],
      ['{"id":5,"channel":"app.state","more":1}', 5],
    ] as const) {
      expect(parseRequest(text), text).toEqual({ ok: false, response: { id, result: { ok: false, error: { code: 'invalid_argument', message: expect.any(String) } } } });
    }
  });
});
