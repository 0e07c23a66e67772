// Truthful progress and presence, engine-level against a real relay: receiving counts other devices' events
// against the relay's head (with a total and time left), this device's own events echoed back are never
// "received", sending and receiving are counted apart, live arrivals between cycles are reported, the
// status says how many entities and how large the local database is, and the relay knows when each device
// was last seen and how far behind it is, written at most once per interval, not a commit per request.
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Device } from '../../main/app/device.ts';
import { SqliteStore } from '../../relay/sqlite-store.ts';
import type { RelayStore } from '../../relay/store.ts';
import { progressLine } from '../../cli/format.ts';
import { RELAY_MOVE_ENTITY, announceMove, dismissMove, moveOffer } from '../../main/app/relay-move.ts';
import { menuTemplate } from '../../main/app/tray-menu.ts';
import { Lab, eventually, progressDuring } from '../support/devices.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

function writeMany(device: Device, prefix: string, count: number): void {
  device.write(Array.from({ length: count }, (_, i) => ({ entity: `${prefix}/${i}`, op: 'set' as const, payload: { n: i } })));
}


describe('progress', () => {
  it('receiving has a total from the relay\'s head, a time left, and counts only other devices\' events', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'websocket' });
    const b = await lab.join(a, { name: 'b', transport: 'websocket' });
    writeMany(a, 'bulk', 3000);
    // The writer's own 3,000 events come back over its socket: sent, never "received".
    const sent = await progressDuring(a, () => a.syncNow());
    expect(sent.result).toMatchObject({ ok: true, pushed: 3000, pulled: 0 });
    expect(sent.seen.filter((p) => p.phase === 'push').at(-1)).toMatchObject({ done: 3000, total: 3000 });
    expect(sent.seen.filter((p) => p.phase === 'pull').every((p) => p.done === 0 && p.total === 0)).toBe(true);
    expect(a.status().lastArrival).toBeNull();

    const received = await progressDuring(b, () => b.syncNow());
    expect(received.result).toMatchObject({ ok: true, pushed: 0, pulled: 3000 });
    const pulls = received.seen.filter((p) => p.phase === 'pull');
    // The total is known from the first receiving figure on, and never moves.
    expect(pulls[0]).toMatchObject({ done: 0, total: 3000 });
    expect(new Set(pulls.map((p) => p.total))).toEqual(new Set([3000]));
    expect(pulls.map((p) => p.done)).toEqual([...pulls.map((p) => p.done)].sort((x, y) => x - y));
    expect(pulls.at(-1)).toMatchObject({ done: 3000, total: 3000, remainingMs: 0 });
    // Midway, a time left from the pace so far.
    const midway = pulls.filter((p) => p.done > 0 && p.done < 3000);
    expect(midway.length).toBeGreaterThan(0);
    expect(midway.every((p) => typeof p.remainingMs === 'number' && p.remainingMs > 0)).toBe(true);
    expect(b.status().entities).toBe(3000);
  });

  it('sending and receiving in one cycle are two figures; this device\'s own events do not shrink or swell the received one', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    writeMany(a, 'from-a', 10);
    expect((await a.syncNow()).ok).toBe(true);
    writeMany(b, 'from-b', 5);
    const cycle = await progressDuring(b, () => b.syncNow());
    expect(cycle.result).toMatchObject({ ok: true, pushed: 5, pulled: 10 });
    expect(cycle.seen.filter((p) => p.phase === 'push').at(-1)).toMatchObject({ done: 5, total: 5 });
    expect(cycle.seen.filter((p) => p.phase === 'pull').at(-1)).toMatchObject({ done: 10, total: 10 });

    // A cycle that failed after pushing leaves its own events behind the cursor: the next one's total
    // leaves them out, as it reads them.
    writeMany(a, 'more-a', 7);
    expect((await a.syncNow()).ok).toBe(true);
    const again = await progressDuring(b, () => b.syncNow());
    expect(again.result).toMatchObject({ ok: true, pushed: 0, pulled: 7 });
    expect(again.seen.filter((p) => p.phase === 'pull').at(-1)).toMatchObject({ done: 7, total: 7 });
  });

  it('changes that arrive live between cycles are reported as arrivals, own echoes never', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a', transport: 'websocket' });
    const b = await lab.join(a, { name: 'b', transport: 'websocket' });
    expect((await b.syncNow()).ok).toBe(true); // b's socket stays open after the cycle
    expect(b.status().lastArrival).toBeNull();
    const before = Date.now();
    writeMany(a, 'live', 120);
    expect((await a.syncNow()).ok).toBe(true);
    await eventually(() => b.status().lastArrival?.count === 120, 'b heard 120 changes live');
    expect(b.status().lastArrival!.at).toBeGreaterThanOrEqual(before);
    expect(b.get('live/119')?.value).toEqual({ n: 119 });
    expect(a.status().lastArrival).toBeNull();
    // A second burst soon after adds up.
    writeMany(a, 'live-more', 30);
    expect((await a.syncNow()).ok).toBe(true);
    await eventually(() => b.status().lastArrival?.count === 150, 'b counts the second burst with the first');
  });

  it('the status says how many entities this device holds and how large its database is', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a' });
    expect(a.status().entities).toBe(0);
    const empty = a.status().databaseBytes!;
    expect(empty).toBeGreaterThan(0);
    writeMany(a, 'e', 500);
    a.delete('e/0');
    expect(a.status().entities).toBe(499);
    expect(a.status().databaseBytes!).toBeGreaterThan(empty);
  });

  it('a revoked device says it was revoked, not merely that sync failed', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a' });
    const b = await lab.join(a, { name: 'b' });
    expect((await b.syncNow()).ok).toBe(true);
    expect(b.status().revoked).toBe(false);
    await a.revoke(b.identity.deviceId);
    b.engine.start(); // timed cycles from now on
    const result = await b.syncNow(); // the first of them, to its end
    expect(result.ok).toBe(false);
    expect(b.status()).toMatchObject({ revoked: true, lastError: { kind: 'auth' } });
    expect(a.status().revoked).toBe(false);
    // no more timed cycles for it; the tray says what happened and offers no Sync now
    expect(b.status().nextCycleAt).toBeNull();
    const menu = menuTemplate(b.status(), { phase: 'ready', motebitId: b.identity.motebitId, deviceId: b.identity.deviceId, deviceName: 'b', relayUrl: relay.url });
    expect(menu.statusLine).toBe('This device was revoked — open Settings');
    expect(menu.items.find((item) => item.type === 'normal' && item.id === 'sync-now')).toMatchObject({ enabled: false });
  });

  it('the CLI prints sending, sending again and receiving as their own lines', () => {
    expect(progressLine({ phase: 'push', done: 2, total: 5 })).toBe('pushing 2 of 5 events…');
    expect(progressLine({ phase: 'resend', done: 1, total: 4 })).toBe('pushing again 1 of 4 events the relay lost…');
    expect(progressLine({ phase: 'pull', done: 1000, total: 3000, remainingMs: 20_000 })).toBe('pulling 1000 of 3000 events… about 20 s left');
    expect(progressLine({ phase: 'pull', done: 0, total: null, remainingMs: null })).toBe('pulling 0 events…');
  });
});

describe('presence on the relay', () => {
  /** The relay's real SQLite store, counting the writes of sightings. */
  function countingStore(path: string): { store: RelayStore; writes: () => number } {
    const inner = new SqliteStore(path);
    let writes = 0;
    const store = new Proxy(inner, {
      get(target, property, receiver) {
        if (property === 'recordSeen') {
          return (...args: Parameters<RelayStore['recordSeen']>) => {
            writes++;
            return target.recordSeen(...args);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { store, writes: () => writes };
  }

  it('serves each device\'s last seen and how far behind it is, kept in memory between writes and written on close', async () => {
    const path = join(lab.dir, 'presence.db');
    const { store, writes } = countingStore(path);
    const relay = await lab.relay({ store, seenWriteMs: 60 * 60_000 });
    const a = await lab.create(relay.url, { name: 'a', transport: 'http' });
    const b = await lab.join(a, { name: 'b', transport: 'http' });
    const start = Date.now();
    for (let i = 0; i < 10; i++) {
      a.put(`n/${i}`, i);
      expect((await a.syncNow()).ok).toBe(true);
      expect((await b.syncNow()).ok).toBe(true);
    }
    const list = await a.relay.deviceList();
    const row = (id: string) => list.devices.find((d) => d.device_id === id)!;
    expect(list.head).toBe(10);
    expect(row(b.identity.deviceId)).toMatchObject({ read_seq: 10 });
    expect(row(b.identity.deviceId).last_seen_at).toBeGreaterThanOrEqual(start);
    // Dozens of authenticated requests, and not one write of a sighting yet: they wait for the interval.
    expect(writes()).toBe(0);

    // b goes away; a writes 312 more: b is 312 behind, and was last seen before them.
    await b.close();
    const bSeen = row(b.identity.deviceId).last_seen_at!;
    a.write(Array.from({ length: 312 }, (_, i) => ({ entity: `later/${i}`, op: 'set' as const, payload: i })));
    expect((await a.syncNow()).ok).toBe(true);
    const later = await a.relay.deviceList();
    const bLater = later.devices.find((d) => d.device_id === b.identity.deviceId)!;
    expect(later.head! - bLater.read_seq!).toBe(312);
    expect(bLater.last_seen_at).toBe(bSeen);
    const aLater = later.devices.find((d) => d.device_id === a.identity.deviceId)!;
    expect(later.head! - aLater.read_seq!).toBe(0);

    // Closing the relay writes what it held, in one write for the motebit.
    await a.close();
    await relay.close();
    expect(writes()).toBe(1);
    const reopened = new SqliteStore(path);
    try {
      const devices = await reopened.devices(a.identity.motebitId);
      expect(devices.find((d) => d.deviceId === b.identity.deviceId)).toMatchObject({ lastSeenAt: bSeen, readSeq: 10 });
      expect(devices.find((d) => d.deviceId === a.identity.deviceId)?.readSeq).toBe(322);
    } finally {
      await reopened.close();
    }
  });
});

describe('word of a move to another relay', () => {
  it('reaches the other devices through the old relay as an offer, never for the mover, and "Not now" lasts until the next move', async () => {
    const relay = await lab.relay();
    const a = await lab.create(relay.url, { name: 'a' });
    const b = await lab.join(a, { name: 'b' });
    announceMove(a.store, { url: 'https://new-relay.example.com/', deviceName: 'a', at: 1_000 });
    expect((await a.syncNow()).ok).toBe(true);
    expect((await b.syncNow()).ok).toBe(true);
    expect(moveOffer(a.store, relay.url)).toBeNull(); // the mover itself
    expect(moveOffer(b.store, relay.url)).toEqual({ url: 'https://new-relay.example.com', deviceId: a.identity.deviceId, deviceName: 'a', at: 1_000 });
    expect(moveOffer(b.store, 'https://new-relay.example.com')).toBeNull(); // already there
    expect(b.identity.relayUrl).toBe(relay.url); // nothing moved by itself
    dismissMove(b.store, 1_000);
    expect(moveOffer(b.store, relay.url)).toBeNull();
    announceMove(a.store, { url: 'https://newer-relay.example.com', deviceName: 'a', at: 2_000 });
    await a.syncNow();
    await b.syncNow();
    expect(moveOffer(b.store, relay.url)?.url).toBe('https://newer-relay.example.com');
    // a value on that entity that is not a move (written by hand, say) offers nothing
    a.put(RELAY_MOVE_ENTITY, { url: 'ftp://nope', device_id: 'x', device_name: null, at: 3_000 });
    await a.syncNow();
    await b.syncNow();
    expect(moveOffer(b.store, relay.url)).toBeNull();
    a.put(RELAY_MOVE_ENTITY, 'not a move');
    await a.syncNow();
    await b.syncNow();
    expect(moveOffer(b.store, relay.url)).toBeNull();
  });
});
