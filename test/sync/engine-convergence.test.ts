// Devices in separate homes converge through a real relay, over WebSocket and over HTTP only, with and
// without end-to-end encryption; a concurrent write is the same conflict on every device.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TransportPreference } from '../../main/sync/engine.ts';
import { Lab, conflictPairs, syncAll } from '../support/devices.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

const cases: { transport: TransportPreference; encryption: boolean }[] = [
  { transport: 'websocket', encryption: true },
  { transport: 'websocket', encryption: false },
  { transport: 'http', encryption: true },
  { transport: 'http', encryption: false },
];

describe.each(cases)('over $transport, encryption $encryption', ({ transport, encryption }) => {
  it('three devices converge, and a concurrent write is one conflict everywhere', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { encryption, transport, name: 'a' });
    const b = await lab.join(a, { transport, name: 'b' });
    const c = await lab.join(a, { transport, name: 'c' });
    const devices = [a, b, c];

    a.put('memory/1', { text: 'from a' });
    b.put('memory/2', { text: 'from b' });
    c.put('memory/3', { text: 'from c' });
    c.delete('memory/3');
    await syncAll(devices);
    for (const device of devices) {
      expect(device.status().transport).toBe(transport);
      expect(device.status()).toMatchObject({ state: 'idle', pendingOut: 0, rejectedEvents: 0, lastError: null });
      expect(device.get('memory/1')?.value).toEqual({ text: 'from a' });
      expect(device.get('memory/2')?.value).toEqual({ text: 'from b' });
      expect(device.get('memory/3')?.deleted).toBe(true);
      expect(device.store.stateDigest()).toBe(a.store.stateDigest());
      expect(device.store.eventsDigest()).toBe(a.store.eventsDigest());
    }

    // b edits after seeing a: not a conflict. a and c write memory/9 without seeing each other: one conflict.
    b.put('memory/1', { text: 'b edited it' });
    a.put('memory/9', 'a wrote this');
    c.put('memory/9', 'c wrote this');
    await syncAll(devices);
    const pairs = conflictPairs(a);
    expect(pairs).toHaveLength(1);
    expect(pairs[0]).toMatch(/^memory\/9\|/);
    for (const device of devices) {
      expect(conflictPairs(device)).toEqual(pairs);
      expect(device.get('memory/1')?.value).toEqual({ text: 'b edited it' });
      expect(device.status().openConflicts).toBe(1);
      expect(device.store.stateDigest()).toBe(a.store.stateDigest());
    }
  });
});

it('a device that wrote 1,000 events offline pushes all of them on its next cycle', async () => {
  const relay = await lab.relay();
  const a = await lab.create(relay.url, { name: 'a' });
  const b = await lab.join(a, { name: 'b' });
  await syncAll([a, b]);
  await relay.close(); // offline

  for (let i = 0; i < 1000; i++) a.put(`offline/${i}`, { i });
  const offline = await a.syncNow();
  expect(offline.ok).toBe(false);
  expect(offline.error?.kind).toBe('network');
  expect(a.status()).toMatchObject({ state: 'offline', pendingOut: 1000 });
  expect(a.status().lastError?.nextStep).toMatch(/network|relay URL/);

  const again = await lab.relay({ port: Number(new URL(relay.url).port) }); // same database, same address
  expect(again.url).toBe(relay.url);
  const online = await a.syncNow();
  expect(online).toMatchObject({ ok: true, pushed: 1000 });
  expect(a.status().pendingOut).toBe(0);
  expect((await b.syncNow()).ok).toBe(true);
  expect(b.state().filter((s) => s.entity.startsWith('offline/'))).toHaveLength(1000);
  expect(b.store.eventsDigest()).toBe(a.store.eventsDigest());
});
