// How the engine behaves around the relay: what the relay can read, falling back when WebSocket is refused,
// resuming when the socket dies, the interval timer, and a manual sync joining a running cycle.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { CycleResult } from '../../main/sync/engine.ts';
import { updateConfig } from '../../main/config/config.ts';
import { startCuttableProxy } from '../support/cuttable-proxy.ts';
import { startNoUpgradeProxy } from '../support/no-upgrade-proxy.ts';
import { Lab, eventually, freePort, openAgain, syncAll } from '../support/devices.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

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
