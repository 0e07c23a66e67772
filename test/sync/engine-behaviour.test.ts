// How the engine behaves around the relay: what the relay can read, falling back when WebSocket is refused,
// resuming when the socket dies, the interval timer, and a manual sync joining a running cycle.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { SyncFailure, type CycleResult } from '../../main/sync/engine.ts';
import { errorWords } from '../../main/app/error-words.ts';
import { Device } from '../../main/app/device.ts';
import { updateConfig } from '../../main/config/config.ts';
import { startCuttableProxy } from '../support/cuttable-proxy.ts';
import { startNoUpgradeProxy } from '../support/no-upgrade-proxy.ts';
import { Lab, eventually, freePort, openAgain, progressDuring, syncAll } from '../support/devices.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(async () => {
  vi.restoreAllMocks();
  await lab.close();
});

/** Every byte the relay keeps (database and WAL files), plus every stored body decoded from base64url. */
function relayBytes(dir: string): Buffer {
  const files = readdirSync(dir).filter((f) => f.startsWith('relay.db')).map((f) => readFileSync(join(dir, f)));
  const db = new Database(join(dir, 'relay.db'), { readonly: true });
  const bodies = (db.prepare('SELECT body FROM events').pluck().all() as string[]).map((body) => Buffer.from(body, 'base64url'));
  db.close();
  return Buffer.concat([...files, ...bodies]);
}

it.each([true, false])('with encryption %s, the relay database holds plaintext only when encryption is off', async (encryption) => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { encryption, name: 'a' });
  const b = await lab.join(a, { name: 'b' });
  a.put('secret-entity/diary', { text: 'PAYLOAD-MARKER-7f3a' });
  b.put('another-secret-entity', 'SECOND-MARKER-91bc');
  await syncAll([a, b]);
  expect(b.get('secret-entity/diary')?.value).toEqual({ text: 'PAYLOAD-MARKER-7f3a' });
  await relay.close(); // flush the WAL into the files we read

  const bytes = relayBytes(lab.dir);
  const markers = ['PAYLOAD-MARKER-7f3a', 'SECOND-MARKER-91bc', 'secret-entity/diary', 'another-secret-entity'];
  const found = markers.filter((m) => bytes.includes(Buffer.from(m)));
  // Without encryption every marker is there (the control that shows the search finds plaintext);
  // with encryption none is, in the files or in any decoded body.
  expect(found).toEqual(encryption ? [] : markers);
});

it('syncs over HTTP when a proxy refuses WebSocket upgrades, and says so', async () => {
  const port = await freePort();
  const proxy = await startNoUpgradeProxy(`http://127.0.0.1:${port}`);
  const relay = await lab.relay({ port, audience: proxy.url }); // the relay is known by the proxy's URL
  try {
    const a = await lab.create(proxy.url, { name: 'a' });
    const b = await lab.join(a, { name: 'b' });
    a.put('memory/1', 'through a proxy');
    await syncAll([a, b]);
    expect(b.get('memory/1')?.value).toBe('through a proxy');
    for (const device of [a, b]) expect(device.status()).toMatchObject({ state: 'idle', transport: 'http', lastError: null });
    expect(proxy.upgradesRefused).toBeGreaterThan(0);
  } finally {
    await proxy.close();
    void relay;
  }
});

it('when the live socket dies mid-stream it reconnects and resumes: nothing missed, nothing doubled', async () => {
  const port = await freePort();
  const proxy = await startCuttableProxy(`http://127.0.0.1:${port}`);
  await lab.relay({ port, audience: proxy.url });
  try {
    const a = await lab.create(proxy.url, { name: 'a' });
    const b = await lab.join(a, { name: 'b' });
    await syncAll([a, b]);
    b.engine.start(); // live over WebSocket
    await eventually(() => b.status().transport === 'websocket', 'b is live');

    for (let i = 0; i < 600; i++) a.put(`stream/${i}`, { i, pad: 'x'.repeat(500) });
    const pushing = a.syncNow();
    await eventually(() => b.state().some((s) => s.entity.startsWith('stream/')), 'b starts receiving');
    proxy.cut(); // every connection through the proxy dies, b's socket in the middle of the stream
    await pushing; // a's own cycle may fail with the cut; it retries below
    await eventually(async () => (await a.syncNow()).ok && a.status().pendingOut === 0, 'a has pushed everything');
    await eventually(() => b.state().filter((s) => s.entity.startsWith('stream/')).length === 600, 'b has every event');

    expect(b.store.eventCount()).toBe(a.store.eventCount());
    expect(b.store.eventsDigest()).toBe(a.store.eventsDigest());
    expect(b.status().rejectedEvents).toBe(0);
    expect(proxy.accepted).toBeGreaterThan(2); // b really reconnected
  } finally {
    await proxy.close();
  }
});

it('the interval timer runs cycles by itself, the first at start', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  const b = await lab.join(a, { name: 'b' });
  await a.close();
  await updateConfig(a.home, { interval_seconds: 1 });
  const timed = await openAgain(lab, a, 'http'); // HTTP: nothing live, so only the timer can bring news
  const cycles: CycleResult[] = [];
  timed.engine.onCycle((result) => cycles.push(result));
  timed.engine.start();
  await eventually(() => cycles.length >= 1, 'the first cycle at start', 5_000);
  expect(timed.status().nextCycleAt).not.toBeNull();

  b.put('memory/timer', 'arrives without a manual sync');
  expect((await b.syncNow()).ok).toBe(true);
  const before = cycles.length;
  // A value appears while the cycle that pulls it is still running: wait for that cycle to end as well.
  await eventually(() => timed.get('memory/timer') !== undefined && cycles.length > before, 'a timed cycle pulls it', 10_000);
  expect(cycles.length).toBeGreaterThanOrEqual(2);
  expect(cycles.every((c) => c.ok)).toBe(true);
});

it('a manual sync during a cycle joins it instead of starting another', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  for (let i = 0; i < 2000; i++) a.put(`bulk/${i}`, i);
  const cycles: CycleResult[] = [];
  a.engine.onCycle((result) => cycles.push(result));
  const first = a.syncNow();
  const second = a.syncNow();
  expect(second).toBe(first);
  const result = await first;
  expect(result).toMatchObject({ ok: true, pushed: 2000 });
  expect(cycles).toHaveLength(1);
});

it('a second start runs no cycle of its own: one first cycle, then the timer', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  const cycles: CycleResult[] = [];
  a.engine.onCycle((result) => cycles.push(result));
  a.engine.start();
  await eventually(() => a.status().nextCycleAt !== null, 'the first cycle ends and the next is due');
  const due = a.status().nextCycleAt;
  a.engine.start();
  expect(a.status()).toMatchObject({ state: 'idle', nextCycleAt: due });
  await a.engine.stop();
  expect(cycles).toHaveLength(1);
});

it('pause stops timed and live sync; a cycle asked for while paused fails in words; resume clears that before anyone sees idle, and syncs', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  a.engine.start();
  await eventually(() => a.status().nextCycleAt !== null, 'the first cycle ends and the next is due');
  await a.engine.pause();
  expect(a.engine.isPaused).toBe(true);
  expect(a.status()).toMatchObject({ state: 'paused', nextCycleAt: null, transport: null });

  a.put('memory/while-paused', 1);
  const refused = await a.syncNow();
  expect(refused).toEqual({ ok: false, pushed: 0, pulled: 0, error: expect.objectContaining({ kind: 'local', message: 'sync is paused', nextStep: 'resume sync to continue' }) });
  expect(a.status()).toMatchObject({ state: 'paused', pendingOut: 1, nextCycleAt: null, lastError: { message: 'sync is paused' } });

  const seen: { state: string; error: string | null }[] = [];
  a.engine.onStatus((status) => seen.push({ state: status.state, error: status.lastError?.message ?? null }));
  const resumed = await a.engine.resume();
  expect(resumed).toMatchObject({ ok: true, pushed: 1, error: null });
  expect(a.engine.isPaused).toBe(false);
  expect(seen[0]).toEqual({ state: 'idle', error: null });
  expect(seen.filter((status) => status.error !== null)).toEqual([]);
  expect(a.status()).toMatchObject({ state: 'idle', pendingOut: 0, lastError: null });
  expect(a.status().nextCycleAt).not.toBeNull();
});

it('a new interval reschedules the next timed cycle at once; a stopped engine refuses a manual sync in words', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  expect(a.status()).toMatchObject({ state: 'idle', nextCycleAt: null, lastError: null });
  a.engine.start();
  await eventually(() => a.status().nextCycleAt !== null, 'the first cycle ends and the next is due');
  const due = a.status().nextCycleAt!;
  expect(due - Date.now()).toBeGreaterThan(20_000); // the 30 s default, less 10 % jitter and this test's own time

  const cycles: CycleResult[] = [];
  a.engine.onCycle((result) => cycles.push(result));
  a.engine.setIntervalMs(200);
  expect(a.status().nextCycleAt!).toBeLessThan(due);
  expect(a.status().nextCycleAt! - Date.now()).toBeLessThanOrEqual(220);
  await eventually(() => cycles.length >= 2, 'timed cycles at the new interval', 10_000);
  expect(cycles.every((cycle) => cycle.ok)).toBe(true);

  await a.engine.stop();
  expect(a.status().nextCycleAt).toBeNull();
  const refused = await a.engine.syncNow();
  expect(refused).toEqual({ ok: false, pushed: 0, pulled: 0, error: expect.objectContaining({ kind: 'local', message: 'sync has been stopped', nextStep: 'restart the app' }) });
  expect(a.status()).toMatchObject({ state: 'error', lastError: { message: 'sync has been stopped' } });
});

it("the engine's own failure keeps its words wherever it is put into words", () => {
  const failure = new SyncFailure('integrity', 'the relay served an event no device wrote', 'nothing to do: it was not applied');
  expect(String(failure)).toBe('SyncFailure: the relay served an event no device wrote');
  expect(errorWords(failure)).toMatchObject({ kind: 'integrity', message: 'the relay served an event no device wrote', nextStep: 'nothing to do: it was not applied' });
});

it('a status or cycle listener that throws is logged as its own failure; the cycle still succeeds and the other listeners still hear', async () => {
  const relay = await lab.relay();
  const created = await lab.create(relay.url, { name: 'a' });
  await created.close();
  const warnings: { fields: object; message: string }[] = [];
  const a = lab.track(await Device.open({ ...lab.home('a'), log: { info: () => {}, warn: (fields, message) => warnings.push({ fields, message }) } }));
  a.engine.onStatus(() => {
    throw new Error('the tray is gone');
  });
  a.engine.onCycle(() => {
    throw 'not even an Error';
  });
  const heard: CycleResult[] = [];
  a.engine.onCycle((result) => heard.push(result));
  a.put('memory/1', 1);
  const result = await a.syncNow();
  expect(result).toMatchObject({ ok: true, pushed: 1 });
  expect(heard).toEqual([result]);
  const failures = warnings.filter((w) => w.message === 'a sync listener failed');
  expect(failures.map((w) => w.fields)).toContainEqual({ err: 'the tray is gone' });
  expect(failures.map((w) => w.fields)).toContainEqual({ err: 'not even an Error' });
});

it('resume keeps an error that pausing did not cause until the next cycle says otherwise; resuming with no error at all works', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  await a.engine.pause();
  const quiet = await a.engine.resume(); // no cycle was refused while paused: there is no error to clear
  expect(quiet).toMatchObject({ ok: true, error: null });

  await relay.close(); // the next cycle cannot reach the relay
  const heard: CycleResult[] = [];
  a.engine.onCycle((result) => heard.push(result));
  const offline = await a.syncNow();
  expect(offline).toMatchObject({ ok: false, error: { kind: 'network' } });
  expect(heard).toEqual([offline]); // a failed cycle is heard as one (the tray says it failed)
  await a.engine.pause();
  const seen: (string | null)[] = [];
  a.engine.onStatus((status) => seen.push(status.lastError?.message ?? null));
  const again = await a.engine.resume();
  expect(again).toMatchObject({ ok: false, error: { kind: 'network' } });
  // 'idle' at resume still says why the last cycle failed: only "sync is paused" ends with the pause.
  expect(seen[0]).toBe(offline.error!.message);
});

it('a new interval given during a cycle is used after it, by one timer; the old interval\'s timer is gone', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  vi.spyOn(Math, 'random').mockReturnValue(0.5); // no jitter: each timer is exactly the interval
  const timers = vi.spyOn(globalThis, 'setTimeout');
  const scheduled = (ms: number): number => timers.mock.calls.filter((call) => call[1] === ms).length;
  a.engine.start();
  await eventually(() => a.status().nextCycleAt !== null, 'the first cycle ends and the next is due');
  const cycles: CycleResult[] = [];
  a.engine.onCycle((result) => cycles.push(result));
  // An interval replaced at once leaves no timer of its own behind.
  a.engine.setIntervalMs(150);
  a.engine.setIntervalMs(30_000);
  await sleep(1000);
  expect(cycles).toEqual([]);

  a.engine.setIntervalMs(200);
  expect(scheduled(200)).toBe(1);
  for (let i = 0; i < 2000; i++) a.put(`bulk/${i}`, i);
  await eventually(() => a.status().state === 'syncing', 'the timed cycle starts');
  a.engine.setIntervalMs(60_000); // during the cycle: nothing is scheduled until it ends
  expect(scheduled(60_000)).toBe(0);
  await eventually(() => cycles.length === 1, 'the cycle ends');
  expect(cycles[0]).toMatchObject({ ok: true, pushed: 2000 });
  expect(scheduled(60_000)).toBe(1);
  // And nothing of the 200 ms interval is left to run another cycle.
  await sleep(1000);
  expect(cycles).toHaveLength(1);
});

it('a manual sync takes the place of the timed cycle that was due: that timer is cancelled, and one new one is set after it', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  vi.spyOn(Math, 'random').mockReturnValue(0.5); // no jitter: each timer is exactly the interval
  a.engine.setIntervalMs(400);
  a.engine.start();
  await eventually(() => a.status().nextCycleAt !== null, 'the first cycle ends and the next is due');
  const cycles: CycleResult[] = [];
  a.engine.onCycle((result) => cycles.push(result));
  const manual = a.syncNow();
  expect(a.status().nextCycleAt).toBeNull(); // nothing is due while the manual cycle runs
  a.engine.setIntervalMs(60_000); // during the cycle: the next timer, set after it, is a minute away
  expect(await manual).toMatchObject({ ok: true });
  expect(a.status().nextCycleAt! - Date.now()).toBeGreaterThan(50_000);
  // Had the timer set before the manual cycle been left to run, it would have started a cycle by now.
  await sleep(1500);
  expect(cycles).toHaveLength(1);
});

it('the last success is null until a cycle succeeds, then its time; a cycle done is logged with what it moved', async () => {
  const relay = await lab.relay();
  const { device: a, log } = await lab.reopenWithLog(await lab.create(relay.url, { name: 'a' }), 'a');
  expect(a.status().lastSuccessAt).toBeNull();
  a.put('memory/one', 1);
  const before = Date.now();
  expect((await a.syncNow()).ok).toBe(true);
  expect(a.status().lastSuccessAt).toBeGreaterThanOrEqual(before);
  expect(log.infos).toContainEqual({ fields: { pushed: 1, pulled: 0, transport: 'http' }, message: 'sync cycle done' });
});

it('a snapshot made at the end of a cycle shows its upload as progress with a total', async () => {
  const relay = await lab.relay();
  const created = await lab.create(relay.url, { name: 'a', transport: 'http' });
  await updateConfig(created.home, { snapshot_every_events: 20 });
  await created.close();
  const a = await openAgain(lab, created, 'http');
  for (let i = 0; i < 40; i++) a.put(`memory/${i}`, i);
  const { result, seen } = await progressDuring(a, () => a.syncNow());
  expect(result.ok).toBe(true);
  const size = (await a.relay.latestSnapshot()).snapshot!.size;
  expect(seen.filter((p) => p.phase === 'snapshot_upload').at(-1)).toMatchObject({ done: size, total: size });
});
