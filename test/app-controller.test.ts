// The desktop app's logic, driven through the same dispatcher Electron IPC and the UI harness use, with a
// real relay, real stores and the real secret store. The platform hooks record what the app asked of the
// desktop (notifications, login item): that is all the harness and Electron adapters differ in.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { AppController, type PlatformHooks } from '../main/app/app-controller.ts';
import { createDispatcher, type Dispatch } from '../main/app/ipc-dispatch.ts';
import { configPath } from '../main/config/home.ts';
import { Lab, eventually, syncAll } from './support/devices.ts';
import { joinByApproval } from './support/pair.ts';
import type { RunningRelay } from '../relay/server.ts';

class RecordingPlatform implements PlatformHooks {
  readonly notifications: { title: string; body: string }[] = [];
  startAtLogin = false;
  notify(title: string, body: string): void {
    this.notifications.push({ title, body });
  }
  getStartAtLogin(): boolean {
    return this.startAtLogin;
  }
  setStartAtLogin(enabled: boolean): void {
    this.startAtLogin = enabled;
  }
}

let lab: Lab;
let platform: RecordingPlatform;
let controller: AppController;
let call: Dispatch;

beforeEach(() => {
  lab = new Lab();
  platform = new RecordingPlatform();
  controller = new AppController({ ...lab.home('app'), platform });
  call = createDispatcher(controller.handlers());
});
afterEach(async () => {
  await controller.close();
  await lab.close();
});

async function ok<T>(channel: string, input: unknown = {}): Promise<T> {
  const result = await call(channel, input);
  if (!result.ok) throw new Error(`${channel} failed: ${result.error.code} ${result.error.message}`);
  return result.value as T;
}

it('starts on setup, refuses a bad or unreachable relay without writing anything, then creates a motebit', async () => {
  expect(await controller.start()).toEqual({ phase: 'setup' });
  expect(await call('status.get', {})).toMatchObject({ ok: false, error: { code: 'invalid_state' } });

  expect(await call('setup.create', { relayUrl: 'not a url' })).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'relayUrl' } });
  expect(await call('setup.create', { relayUrl: 'http://127.0.0.1:9' })).toMatchObject({ ok: false, error: { code: 'network' } });
  expect(await call('setup.create', { relayUrl: 42 })).toMatchObject({ ok: false, error: { code: 'invalid_argument' } });
  expect(existsSync(configPath(join(lab.dir, 'app')))).toBe(false);

  const relay = await lab.relay();
  const states: string[] = [];
  controller.onState((state) => states.push(state.phase));
  const state = await ok<{ phase: string; motebitId: string }>('setup.create', { relayUrl: relay.url, deviceName: 'desk' });
  expect(state).toMatchObject({ phase: 'ready', motebitId: expect.stringMatching(/^mb_/), deviceName: 'desk', relayUrl: relay.url });
  expect(states).toEqual(['ready']);
  await eventually(() => controller.status().lastSuccessAt !== null, 'the first cycle runs at start');
  expect(await call('setup.create', { relayUrl: relay.url })).toMatchObject({ ok: false, error: { code: 'invalid_state' } });
});

it('notifies once per batch of new conflicts, and "keep the other value" converges both devices', async () => {
  const relay = await lab.relay();
  await controller.start();
  await ok('setup.create', { relayUrl: relay.url, deviceName: 'desk' });
  const other = lab.track(await joinByApproval(controller.current, { ...lab.home('phone'), deviceName: 'phone' }));
  await ok('sync.now');
  expect(platform.notifications).toEqual([]);

  for (const n of [1, 2, 3]) {
    controller.current.put(`memory/${n}`, `desk ${n}`);
    other.put(`memory/${n}`, `phone ${n}`);
  }
  expect((await other.syncNow()).ok).toBe(true);
  expect(await ok<{ ok: boolean }>('sync.now')).toMatchObject({ ok: true });
  expect(platform.notifications).toHaveLength(1); // three conflicts, one notification
  expect(platform.notifications[0]!.title).toBe('3 new conflicts to review');
  await ok('sync.now');
  expect(platform.notifications).toHaveLength(1); // nothing new, nothing said

  const conflicts = await ok<{ id: number; entity: string; currentEventId: string; winner: { eventId: string; value: unknown; deviceName: string | null }; loser: { eventId: string; value: unknown; deviceName: string | null } }[]>('conflicts.list');
  expect(conflicts).toHaveLength(3);
  const first = conflicts.find((c) => c.entity === 'memory/1')!;
  expect(new Set([first.winner.deviceName, first.loser.deviceName])).toEqual(new Set(['desk', 'phone']));
  const other_side = first.currentEventId === first.winner.eventId ? first.loser : first.winner;
  const kept = await ok<{ resolvedBy: string | null }>('conflicts.keep', { id: first.id, eventId: other_side.eventId });
  expect(kept.resolvedBy).toEqual(expect.any(String));
  await eventually(async () => (await other.syncNow()).ok && other.get('memory/1')?.value === other_side.value, 'the other device holds the kept value');
  expect(controller.current.get('memory/1')?.value).toBe(other_side.value);

  const reviewed = await ok<{ reviewedAt: number | null }>('conflicts.markReviewed', { id: conflicts.find((c) => c.entity === 'memory/2')!.id });
  expect(reviewed.reviewedAt).toEqual(expect.any(Number));
  expect(await call('conflicts.keep', { id: 999, eventId: other_side.eventId })).toMatchObject({ ok: false, error: { code: 'invalid_argument' } });
});

/** A device set up on a new relay with one value synced; `unchanged` checks its settings and config file are as they were then. */
async function setUpAndSynced(value: string): Promise<{ relay: RunningRelay; unchanged: () => Promise<void> }> {
  const relay = await lab.relay();
  await controller.start();
  await ok('setup.create', { relayUrl: relay.url });
  controller.current.put('memory/1', value);
  await ok('sync.now');
  const before = await ok<{ relayUrl: string }>('settings.get');
  const config = readFileSync(configPath(join(lab.dir, 'app')), 'utf8');
  const unchanged = async (): Promise<void> => {
    expect(await ok('settings.get')).toEqual(before);
    expect(readFileSync(configPath(join(lab.dir, 'app')), 'utf8')).toBe(config);
  };
  return { relay, unchanged };
}

it('an invalid relay URL in settings shows an error and changes nothing; a valid one moves the device and its log', async () => {
  const { unchanged } = await setUpAndSynced('moves with me');

  for (const relayUrl of ['ftp://relay.example', 'http://user:pw@relay.example', 'relay dot example', '']) {
    const result = await call('settings.setRelayUrl', { relayUrl });
    expect(result, relayUrl).toMatchObject({ ok: false, error: { code: 'invalid_argument' } });
  }
  expect(await call('settings.setRelayUrl', { relayUrl: 'http://127.0.0.1:9' })).toMatchObject({ ok: false, error: { code: 'network' } });
  await unchanged();

  const second = await lab.relay({ db: join(lab.dir, 'second-relay.db') });
  expect(await ok('settings.setRelayUrl', { relayUrl: second.url })).toMatchObject({ relayUrl: second.url });
  expect(await ok('sync.now')).toMatchObject({ ok: true }); // the new relay is sent the whole log ...
  expect(controller.status()).toMatchObject({ pendingOut: 0, lastRecovery: null }); // ... which is seeding it, not a recovery
  const joined = lab.track(await joinByApproval(controller.current, lab.home('late')));
  await syncAll([joined]);
  expect(joined.get('memory/1')?.value).toBe('moves with me'); // it came from the second relay
});

it('a move to a relay that refuses this motebit\'s membership log fails at the move and changes nothing', async () => {
  const { relay, unchanged } = await setUpAndSynced('stays here');
  // A relay that takes one new motebit from this address, and has taken it already: it refuses the log.
  const full = await lab.relay({ db: join(lab.dir, 'full-relay.db'), newMotebitCapacity: 1, newMotebitsPerMinute: 0.01 });
  await lab.create(full.url);
  const moved = await call('settings.setRelayUrl', { relayUrl: full.url });
  expect(moved).toMatchObject({
    ok: false,
    error: {
      code: 'network',
      message: `This device did not move to ${full.url}: the relay is busy with too many requests from this network: it still syncs with ${relay.url}; try the move again later, or choose another relay.`,
    },
  });
  await unchanged();
  controller.current.put('memory/2', 'still syncing');
  expect(await ok('sync.now')).toMatchObject({ ok: true });
});

it('changes the interval, the login item, and pauses and resumes sync', async () => {
  const relay = await lab.relay();
  await controller.start();
  await ok('setup.create', { relayUrl: relay.url });
  expect(await ok('settings.setInterval', { seconds: 120 })).toMatchObject({ intervalSeconds: 120 });
  expect(JSON.parse(readFileSync(configPath(join(lab.dir, 'app')), 'utf8')).interval_seconds).toBe(120);
  expect(await call('settings.setInterval', { seconds: 1 })).toMatchObject({ ok: false, error: { code: 'invalid_argument', field: 'seconds' } });
  expect(await ok('settings.setStartAtLogin', { enabled: true })).toMatchObject({ startAtLogin: true });
  expect(platform.startAtLogin).toBe(true);

  expect(await ok('sync.pause')).toMatchObject({ state: 'paused', nextCycleAt: null });
  expect(await ok('sync.now')).toMatchObject({ ok: false, error: { kind: 'local' } });
  await ok('sync.resume');
  await eventually(() => controller.status().state === 'idle', 'sync resumes');
  expect(await ok('sync.now')).toMatchObject({ ok: true });
});
