// A device pushes a backlog with several batches in flight over WebSocket (as many as the relay's 'limits'
// message allows, revision 5), one at a time over HTTP; the relay stores them in the order they were sent,
// and when one is refused mid-window, what the relay acknowledged stays acknowledged and the rest stays
// queued on the device. Real devices, a real relay on 127.0.0.1 whose real SQLite store is watched.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Device } from '../../main/app/device.ts';
import { SqliteStore } from '../../relay/sqlite-store.ts';
import type { RelayStore } from '../../relay/store.ts';
import { Lab } from '../support/devices.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

/** The relay's real store, counting how many appends it has been given that have not settled yet. */
function watchedStore(path: string): { store: RelayStore; mostAtOnce: () => number } {
  const inner = new SqliteStore(path);
  let now = 0;
  let most = 0;
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === 'appendBatch') {
        return async (...args: Parameters<RelayStore['appendBatch']>) => {
          most = Math.max(most, ++now);
          try {
            return await target.appendBatch(...args);
          } finally {
            now--;
          }
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { store, mostAtOnce: () => most };
}

function writeMany(device: Device, count: number): void {
  device.write(Array.from({ length: count }, (_, i) => ({ entity: `bulk/${i}`, op: 'set' as const, payload: { n: i } })));
}

describe('pushing a backlog', () => {
  it('over WebSocket, several batches are in flight at once (at most the 4 the relay allows), stored in order', async () => {
    const { store, mostAtOnce } = watchedStore(join(lab.dir, 'watched.db'));
    const relay = await lab.relay({ store });
    const a = await lab.create(relay.url, { name: 'a', transport: 'websocket' });
    writeMany(a, 2000); // 8 batches of 256 (the last shorter)
    expect(await a.syncNow()).toMatchObject({ ok: true, pushed: 2000 });
    expect(mostAtOnce()).toBeGreaterThanOrEqual(2);
    expect(mostAtOnce()).toBeLessThanOrEqual(4);
    expect(a.status().pendingOut).toBe(0);

    const b = await lab.join(a, { name: 'b', transport: 'websocket' });
    expect(await b.syncNow()).toMatchObject({ ok: true });
    expect(b.get('bulk/1999')?.value).toEqual({ n: 1999 });
    expect(b.store.stateDigest()).toBe(a.store.stateDigest());
    expect(b.store.eventsDigest()).toBe(a.store.eventsDigest());
  });

  it('over HTTP, one batch at a time', async () => {
    const { store, mostAtOnce } = watchedStore(join(lab.dir, 'watched.db'));
    const relay = await lab.relay({ store });
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    writeMany(a, 1000);
    expect(await a.syncNow()).toMatchObject({ ok: true, pushed: 1000 });
    expect(mostAtOnce()).toBe(1);
  });

  it('a batch refused mid-window: the batches before it stay acknowledged, the rest stays queued, the cycle says why', async () => {
    const relay = await lab.relay({ maxStoredEvents: 700 });
    const a = await lab.create(relay.url, { name: 'a', transport: 'websocket' });
    const before = a.status().pendingOut; // what creating the device wrote, if anything
    writeMany(a, 2000);
    const result = await a.syncNow();
    expect(result.ok).toBe(false);
    expect(result.error?.message).toMatch(/the relay is full for this motebit \(stored data limit: number of events\)/);
    // The relay took batches 1 and 2 (512 events); the third would pass 700 and was refused whole, and the
    // ones sent after it could not be stored either. The device marks exactly what was acknowledged.
    expect(a.status().pendingOut).toBe(before + 2000 - 512);
  });
});
