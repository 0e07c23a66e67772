// Snapshots end to end (issue 12): real devices (the app's Device: keyring, SQLite, engine) against a real
// relay on 127.0.0.1. A device makes a snapshot by policy and uploads it; a new device starts from it (bytes
// counted with a total, then only newer events), conflicts stay exact across it with a writer that was
// offline all along, the relay compacts once every device acknowledged, and a snapshot the relay alters
// is refused with a clear error and nothing of it kept.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Device } from '../../main/app/device.ts';
import type { TransportPreference } from '../../main/sync/engine.ts';
import { updateConfig } from '../../main/config/config.ts';
import { decodeSnapshotBlob } from '../../shared/snapshot/blob.ts';
import { Lab, conflictPairs, freePort, openAgain, progressDuring, syncAll } from '../support/devices.ts';
import { WithStatus, startRewritingProxy } from '../support/rewriting-proxy.ts';

let lab: Lab;
beforeEach(() => void (lab = new Lab()));
afterEach(() => lab.close());

function writeMany(device: Device, prefix: string, count: number): void {
  device.write(Array.from({ length: count }, (_, i) => ({ entity: `${prefix}/${i % 20}`, op: 'set' as const, payload: { n: i, by: prefix } })));
}

async function withSnapshotsEvery(device: Device, every: number, transport: TransportPreference = 'http'): Promise<Device> {
  await updateConfig(device.home, { snapshot_every_events: every });
  await device.close();
  return openAgain(lab, device, transport);
}


function expectSame(devices: readonly Device[]): void {
  const [first] = devices;
  for (const device of devices) {
    expect(device.store.stateDigest()).toBe(first!.store.stateDigest());
    expect(device.store.eventsDigest()).toBe(first!.store.eventsDigest());
    expect(conflictPairs(device)).toEqual(conflictPairs(first!));
  }
}

describe('snapshots through a real relay', () => {
  it.each<TransportPreference>(['http', 'websocket'])('a new device starts from the snapshot, shows bytes with a total, then pulls only newer events; the relay compacts once both acknowledged (%s)', async (transport) => {
    const relay = await lab.relay();
    const founded = await lab.found(relay.url, { transport });
    const a = await withSnapshotsEvery(founded.device, 100, transport);
    writeMany(a, 'memory', 400);
    const first = await a.syncNow();
    expect(first.ok).toBe(true);
    const latest = await a.relay.latestSnapshot();
    expect(latest.snapshot).not.toBeNull();
    expect(latest.snapshot!.covers[a.identity.deviceId]).toBe(400);
    writeMany(a, 'later', 30); // after the snapshot: pulled as events
    expect((await a.syncNow()).ok).toBe(true);

    const b = await lab.recover(relay.url, a.identity.motebitId, founded.recoveryKey, { transport });
    const { result, seen } = await progressDuring(b, () => b.syncNow());
    expect(result.ok).toBe(true);
    const download = seen.filter((p) => p.phase === 'snapshot_download');
    expect(download.at(-1)).toMatchObject({ done: latest.snapshot!.size, total: latest.snapshot!.size });
    // Only the 30 events written after the snapshot were pulled (not the 400 it covers).
    expect(result.pulled).toBe(30);
    expect(b.store.eventCount()).toBeLessThan(a.store.eventCount());
    await syncAll([a, b]);
    expectSame([a, b]);
    expect(b.get('memory/3')?.value).toEqual(a.get('memory/3')?.value);

    // Both acknowledged everything the snapshot covers: the relay dropped those events' bodies.
    expect((await relayFloors(a))?.[a.identity.deviceId]).toBe(400);
    // A third device joins after compaction and still converges.
    const c = await lab.recover(relay.url, a.identity.motebitId, founded.recoveryKey, { transport });
    await syncAll([a, b, c]);
    expectSame([a, b, c]);
  });

  it('a device offline since before the snapshot writes concurrently: every device records the same conflicts, and compaction waits for it', async () => {
    const relay = await lab.relay();
    const a0 = await lab.create(relay.url, { transport: 'http' });
    const offline = await lab.join(a0, { transport: 'http' });
    const a = await withSnapshotsEvery(a0, 50);
    await syncAll([a, offline]);
    offline.put('memory/1', 'written offline'); // not synced until the end
    for (let i = 0; i < 60; i++) a.put('memory/1', { i });
    expect((await a.syncNow()).ok).toBe(true);
    const latest = await a.relay.latestSnapshot();
    expect(latest.snapshot).not.toBeNull();
    // The offline device has not acknowledged what the snapshot covers: nothing was compacted.
    expect(await relayFloors(a)).toBeUndefined();

    const joiner = await lab.join(a, { transport: 'http' });
    expect((await joiner.syncNow()).ok).toBe(true);
    // The snapshot kept every one of a's writes, although each lost to the next: the offline device had
    // seen none of them, so each may still be concurrent with what it wrote.
    expect([...joiner.store.events()].filter((e) => e.device_id === a.identity.deviceId)).toHaveLength(60);
    expect(joiner.store.floor(a.identity.deviceId)).toBe(60);
    await syncAll([a, offline, joiner]);
    expect(conflictPairs(a)).toHaveLength(60); // the offline write is concurrent with each of a's
    expectSame([a, offline, joiner]);
  });

  it("a snapshot leaves out the losers every writer acknowledged seeing; an acknowledgement the relay forged changes nothing", async () => {
    const proxy = await startRewritingProxy(() => relay.url, await freePort());
    const relay = await lab.relay({ audience: proxy.url });
    try {
      const a = await lab.create(proxy.url, { transport: 'http' });
      const b = await lab.join(a, { transport: 'http' });
      await syncAll([a, b]);
      for (let i = 0; i < 30; i++) a.put('memory/1', { i });
      expect((await a.syncNow()).ok).toBe(true); // b has seen none of these 30
      const aId = a.identity.deviceId;
      const bId = b.identity.deviceId;
      // The relay serves b's acknowledgement as if b had seen all of them; b never signed that.
      proxy.rewrite((answer) => {
        if (answer.method !== 'GET' || !answer.path.endsWith('/snapshots/latest')) return undefined;
        const body = answer.body as { acks: { device_id: string; covers: Record<string, number>; at: number; sig: string }[] };
        const sig = body.acks[0]!.sig; // a signature, by another device over other words
        return { ...body, acks: [...body.acks.filter((ack) => ack.device_id !== bId), { device_id: bId, covers: { [aId]: 1_000 }, at: Date.now(), sig }] };
      });
      const forged = await a.makeSnapshot();
      // Each of the 30 may still be concurrent with something b writes: all are kept.
      expect(forged.kept).toBeGreaterThanOrEqual(30);
      proxy.rewrite(null);
      await syncAll([b, a]); // b applies the 30 and acknowledges them, signed
      const acked = await a.makeSnapshot();
      // Now only what still matters is kept: each entity's winner (29 of the 30 writes lost and are stable).
      expect(acked.kept).toBeLessThanOrEqual(forged.kept - 29);
      expect(acked.covered).toBe(forged.covered);
    } finally {
      await proxy.close();
    }
  });

  it('a snapshot is readable only by current members: after a removal the next one is sealed under the new epoch', async () => {
    const relay = await lab.relay();
    const founded = await lab.found(relay.url, { transport: 'http' });
    const a = await withSnapshotsEvery(founded.device, 0);
    writeMany(a, 'memory', 30);
    const b = await lab.recover(relay.url, a.identity.motebitId, founded.recoveryKey, { transport: 'http' });
    await syncAll([a, b]);
    // What the removed device keeps: the content keys it was given while a member.
    const keptKeys = (b as unknown as { memberKeys: { byId(id: string): Buffer | undefined } }).memberKeys;
    await a.revoke(b.identity.deviceId);
    a.put('memory/after', 'written after the removal');
    const made = await a.makeSnapshot();
    const blob = await a.relay.snapshotChunk(made.snapshotId, 0);
    const ids = { motebitId: a.identity.motebitId, snapshotId: made.snapshotId };
    expect(() => decodeSnapshotBlob(blob, ids, { encrypted: true, keyById: (id) => keptKeys.byId(id) })).toThrow(/does not have/);
    // A current member opens it; the relay does not even serve it to the removed device.
    const current = (a as unknown as { memberKeys: { byId(id: string): Buffer | undefined } }).memberKeys;
    expect(decodeSnapshotBlob(blob, ids, { encrypted: true, keyById: (id) => current.byId(id) })).toContain('written after the removal');
    await expect(b.relay.latestSnapshot()).rejects.toMatchObject({ kind: 'auth' });
  });

  it('a relay that lost everything: a device that started from a snapshot says what it cannot send again; one with the whole history refills it', async () => {
    const port = await freePort();
    let relay = await lab.relay({ port, db: join(lab.dir, 'first.db') });
    const full = await withSnapshotsEvery(await lab.create(relay.url, { transport: 'http' }), 20);
    writeMany(full, 'memory', 60);
    expect((await full.syncNow()).ok).toBe(true);
    const joined = await lab.join(full, { transport: 'http' });
    expect((await joined.syncNow()).ok).toBe(true);
    expect(joined.store.floor(full.identity.deviceId)).toBe(60); // it started from the snapshot
    joined.put('memory/joined', 'written after the join');
    expect((await joined.syncNow()).ok).toBe(true);

    await relay.close();
    relay = await lab.relay({ port, db: join(lab.dir, 'empty.db') }); // the same address, an empty log
    const cannot = await joined.syncNow();
    expect(cannot.ok).toBe(false);
    expect(cannot.error).toMatchObject({ kind: 'integrity', message: expect.stringMatching(/lost events of device .* that this device no longer keeps: it started from a snapshot/) });
    // The device that holds the whole history refills the relay; then both converge.
    await syncAll([full, joined]);
    expectSame([full, joined]);
    expect(joined.get('memory/joined')?.value).toBe('written after the join');
  });

  it("a snapshot the relay altered is refused with a clear error and nothing of it is kept", async () => {
    const proxy = await startRewritingProxy(() => relay.url, await freePort());
    const relay = await lab.relay({ audience: proxy.url });
    try {
      const founded = await lab.found(proxy.url, { transport: 'http' });
      const a = await withSnapshotsEvery(founded.device, 10);
      writeMany(a, 'memory', 40);
      expect((await a.syncNow()).ok).toBe(true);
      const latest = (await a.relay.latestSnapshot()).snapshot!;
      expect(latest.chunks).toBe(1);
      const tampered = await a.relay.snapshotChunk(latest.snapshot_id, 0);
      tampered.writeUInt8(tampered.readUInt8(tampered.byteLength - 1) ^ 1, tampered.byteLength - 1);
      const b = await lab.recover(proxy.url, a.identity.motebitId, founded.recoveryKey, { transport: 'http' });
      // 1. The relay serves the chunk with one byte changed: its bytes are not the ones uploaded.
      const isChunk = (path: string) => /\/snapshots\/sn_[^/]+\/chunks\/0$/.test(path);
      proxy.rewrite((answer) => (answer.method === 'GET' && isChunk(answer.path) ? { data: tampered.toString('base64url') } : undefined));
      const changed = await b.syncNow();
      expect(changed.ok).toBe(false);
      expect(changed.error).toMatchObject({ kind: 'integrity', message: expect.stringMatching(/snapshot of this motebit was refused: .*bytes differ/) });
      // 2. It also claims the changed bytes are what was uploaded: they no longer open under the content key.
      proxy.rewrite((answer) => {
        if (answer.method === 'GET' && isChunk(answer.path)) return { data: tampered.toString('base64url') };
        if (answer.method === 'GET' && answer.path.endsWith('/snapshots/latest')) {
          const body = answer.body as { snapshot: object };
          return { ...body, snapshot: { ...body.snapshot, sha256: sha256(tampered) } };
        }
        return undefined;
      });
      const failed = await b.syncNow();
      expect(failed.ok).toBe(false);
      expect(failed.error).toMatchObject({ kind: 'integrity' });
      expect(failed.error!.message).toMatch(/snapshot of this motebit was refused: .*does not open/);
      expect(b.store.snapshots.isEmpty()).toBe(true);
      expect(b.status().lastError?.kind).toBe('integrity');
      // Honest again: the same device starts from the snapshot and converges.
      proxy.rewrite(null);
      await syncAll([b, a]);
      expectSame([a, b]);
    } finally {
      await proxy.close();
    }
  });

  it('a relay from before snapshots (revision 3): devices sync without them and "save a snapshot" says why; a relay claiming a later revision that hides them fails the cycle, saying so', async () => {
    const proxy = await startRewritingProxy(() => relay.url, await freePort());
    const relay = await lab.relay({ audience: proxy.url });
    try {
      let revision = 3;
      const hidden: string[] = [];
      proxy.rewrite((answer) => {
        if (answer.path === '/healthz') return { ...(answer.body as object), revision };
        if (!/\/(snapshots|acks)(\/|$)/.test(answer.path)) return undefined;
        hidden.push(`${answer.method} ${answer.path}`);
        return new WithStatus(404, { error: { code: 'not_found', message: 'no such endpoint' } });
      });
      const founded = await lab.found(proxy.url, { transport: 'http' });
      const a = await withSnapshotsEvery(founded.device, 10);
      writeMany(a, 'memory', 40);
      const cycle = await a.syncNow();
      expect(cycle).toMatchObject({ ok: true, error: null });
      expect(hidden.length).toBeGreaterThan(0); // the device did ask
      expect(a.status().lastError).toBeNull();
      await expect(a.saveSnapshot()).rejects.toThrow(/this relay keeps no snapshots \(it runs an older version\)/);
      // The same answers from a relay that says it has snapshots: not an old relay, a faulty one.
      revision = 5;
      writeMany(a, 'later', 5);
      const failed = await a.syncNow();
      expect(failed.ok).toBe(false);
      expect(failed.error).toMatchObject({ kind: 'relay', message: 'the relay says it keeps snapshots (version 5) but answered that it has none of them', details: expect.stringMatching(/not_found: no such endpoint/) });
      expect(a.status().lastError).toEqual(failed.error);
      expect(a.status().state).not.toBe('idle');
      // Honest again: snapshots work, nothing was lost.
      proxy.rewrite(null);
      expect((await a.syncNow()).ok).toBe(true);
      expect((await a.relay.latestSnapshot()).snapshot).not.toBeNull();
      expect(a.status().lastError).toBeNull();
    } finally {
      await proxy.close();
    }
  });
});

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** What the relay says it compacted, as a device of the motebit reads it: each writer's floor. */
async function relayFloors(device: Device): Promise<Record<string, number> | undefined> {
  return (await device.relay.frontier()).floors;
}
