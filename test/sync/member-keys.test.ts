// Keys that can be taken back (issue 16), end to end: real relay, real SQLite, the real Device, the
// keyring of the test run. A removed device that kept everything it had cannot read what is written after
// its removal, cannot get an event accepted by any member (also when a lying relay serves it), cannot add
// or remove members, and cannot come back.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Device } from '../../main/app/device.ts';
import { EventStore } from '../../main/store/event-store.ts';
import { EncryptedTransport } from '../../main/sync/encrypted-transport.ts';
import { HttpTransport } from '../../main/sync/http-transport.ts';
import { MemberKeyring } from '../../main/sync/member-keyring.ts';
import { toWire } from '../../main/sync/codec.ts';
import { addEntry, removeEntry } from '../../shared/membership/author.ts';
import { MembershipError, applyEntry } from '../../shared/membership/log.ts';
import type { StoredWireEvent } from '../../shared/portable/wire.ts';
import { startRewritingProxy, type RewritingProxy } from '../support/rewriting-proxy.ts';
import { Lab, eventually, freePort, syncAll } from '../support/devices.ts';

let lab: Lab;
let proxy: RewritingProxy | undefined;

beforeEach(() => {
  lab = new Lab();
});

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  await lab.close();
});

/** Two member devices (the second added with the recovery key), on HTTP behind a proxy that can lie. */
async function motebit(): Promise<{ a: Device; b: Device; recoveryKey: string }> {
  const port = await freePort();
  proxy = await startRewritingProxy(() => relay.url, port);
  const relay = await lab.relay({ audience: proxy.url });
  const { device: a, recoveryKey } = await lab.found(proxy.url, { name: 'a', transport: 'http' });
  const b = await lab.recover(proxy.url, a.identity.motebitId, recoveryKey, { name: 'b', transport: 'http' });
  return { a, b, recoveryKey };
}

describe('per-device keys and a membership log', () => {
  it('two members sync both ways, end to end encrypted, and their events name the log position', async () => {
    const { a, b } = await motebit();
    expect(a.identity.kind).toBe('member');
    a.put('note/1', 'from a');
    b.put('note/2', 'from b');
    await syncAll([a, b]);
    expect(b.get('note/1')?.value).toBe('from a');
    expect(a.get('note/2')?.value).toBe('from b');
    const written = [...b.store.events()].find((event) => event.entity === 'note/2')!;
    expect(written.m).toBe(1); // genesis 0, b's add 1
    expect(written.seal?.cert).toBeUndefined();
  });

  it('a removed device that kept everything cannot read, write, add, remove or come back', async () => {
    const { a, b } = await motebit();
    a.put('before', 1);
    b.put('b/1', 'kept');
    await syncAll([a, b]);
    const bKnew = b.membership!.state!;
    const bKeysBefore = await MemberKeyring.open(bKnew, { id: b.identity.deviceId, kemPrivateKey: b.identity.kind === 'member' ? b.identity.member.kem.privateKey : Buffer.alloc(0) });

    await a.revoke(b.identity.deviceId);
    const aState = a.membership!.state!;
    expect(aState.members.get(b.identity.deviceId)).toMatchObject({ cutoff: 1 });
    expect(aState.epochs.at(-1)!.n).toBe(2);
    a.put('after', 'secret');
    expect((await a.syncNow()).ok).toBe(true);

    // The relay refuses it at once.
    const refused = await b.syncNow();
    expect(refused.ok).toBe(false);
    expect(b.status().revoked).toBe(true);

    // Read: the event written after the removal, served to it by a lying relay, does not open with any key it
    // kept, nor with any it could get from the whole new log (no wrap of epoch 2 is addressed to it).
    const served = (await a.relay.pull(0)).events.find((event) => event.device_id === a.identity.deviceId && event.device_seq === 2)!;
    expect(served.key_id).toBe(aState.epochs.at(-1)!.keyId);
    const bKeysFromNewLog = await MemberKeyring.open(aState, { id: b.identity.deviceId, kemPrivateKey: b.identity.kind === 'member' ? b.identity.member.kem.privateKey : Buffer.alloc(0) });
    for (const keys of [bKeysBefore, bKeysFromNewLog]) {
      expect(keys.byId(served.key_id!)).toBeUndefined();
      const opener = new EncryptedTransport({ inner: new HttpTransport(b.relay), motebitId: b.identity.motebitId, keys });
      expect(opener.openEvent(served).problem?.code).toBe('unknown_key');
    }

    // Write: an event it writes now (its second, past the cutoff of 1), served to `a` by a lying relay, is refused.
    b.put('b/2', 'after removal');
    const forged = b.store.outboxBatch(10, b.identity.credentials);
    const wire = new EncryptedTransport({ inner: new HttpTransport(b.relay), motebitId: b.identity.motebitId, keys: bKeysBefore }).sealEvent(toWire(forged.at(-1)!));
    proxy!.rewrite((answer) => {
      if (answer.method !== 'GET' || !answer.path.endsWith('/events') || answer.status !== 200) return undefined;
      const page = answer.body as { events: StoredWireEvent[]; head: number };
      const seq = Math.max(page.head, ...page.events.map((e) => e.seq)) + 1;
      return { ...page, events: [...page.events, { ...wire, seq }], head: seq };
    });
    const fooled = await a.syncNow();
    proxy!.rewrite(null);
    expect(a.get('b/2')).toBeUndefined();
    expect(fooled.ok).toBe(false);
    expect(a.store.rejectedEvents().some((r) => r.deviceId === b.identity.deviceId && r.code === 'not_member')).toBe(true);

    // Rewrite its past: another version of its event at the cutoff, served to a store that never held the
    // original (a device added later), is refused: the removal pinned that event's hash.
    const forger = EventStore.open(join(lab.dir, 'forger.db'), { motebitId: b.identity.motebitId, deviceId: b.identity.deviceId, membership: () => bKnew });
    forger.put('b/1', 'rewritten');
    const rewritten = forger.outboxBatch(10, b.identity.credentials);
    forger.close();
    expect(rewritten[0]!.device_seq).toBe(1);
    const later = EventStore.open(join(lab.dir, 'later.db'), { motebitId: a.identity.motebitId, deviceId: 'dv_' + 'L'.repeat(22), membership: () => a.membership!.state! });
    expect(() => later.applyRemote(rewritten)).toThrow(/not the event number 1 its removal kept/);
    expect(later.get('b/1')).toBeUndefined();
    later.close();

    // Add or remove members: an entry it signs is refused by the relay and, served by a lying relay, by `a`.
    if (b.identity.kind !== 'member') throw new Error('b is a member device');
    const bKey = bKeysBefore.byId(bKnew.epochs.at(-1)!.keyId)!;
    const intruder = (await lab.found(proxy!.url, { name: 'intruder' })).device;
    if (intruder.identity.kind !== 'member') throw new Error('a member device');
    const forgedAdd = await addEntry(aState, b.identity.member, intruder.identity.member.key, bKey, Date.now());
    const { entry: forgedRemove } = await removeEntry(aState, b.identity.member, a.identity.deviceId, 99, bKey, Date.now(), 'e'.repeat(64));
    for (const entry of [forgedAdd, forgedRemove]) {
      expect(() => applyEntry(aState, entry)).toThrow(MembershipError);
      await expect(b.relay.offerMembership([entry])).rejects.toMatchObject({ kind: 'auth' });
    }
    proxy!.rewrite((answer) => {
      if (answer.method !== 'GET' || !answer.path.endsWith('/membership') || answer.status !== 200) return undefined;
      const log = answer.body as { entries: unknown[]; head: number };
      return { entries: [...log.entries, forgedRemove], head: log.head + 1 };
    });
    const headBefore = a.store.membership.head();
    const servedForged = await a.syncNow();
    proxy!.rewrite(null);
    expect(servedForged.ok).toBe(false);
    expect(servedForged.error?.kind).toBe('integrity');
    expect(a.store.membership.head()).toBe(headBefore);
    expect(a.membership!.state!.members.get(a.identity.deviceId)?.removedAt).toBeNull();

    // Come back: not even a member's add entry for its old key is taken, and its token stays refused.
    if (a.identity.kind !== 'member') throw new Error('a is a member device');
    const aKey = (await MemberKeyring.open(a.membership!.state!, { id: a.identity.deviceId, kemPrivateKey: a.identity.member.kem.privateKey })).current.key;
    const readd = await addEntry(a.membership!.state!, a.identity.member, b.identity.member.key, aKey, Date.now());
    await expect(a.relay.offerMembership([readd])).rejects.toMatchObject({ code: 'membership_refused' });
    await expect(b.relay.frontier()).rejects.toMatchObject({ kind: 'auth' });
    expect((await a.syncNow()).ok).toBe(true);
  });

  it('a member listening live opens events sealed under an epoch it had not read yet, without a failure', async () => {
    const relay = await lab.relay();
    const { device: a, recoveryKey } = await lab.found(relay.url, { name: 'a', transport: 'websocket' });
    const b = await lab.recover(relay.url, a.identity.motebitId, recoveryKey, { name: 'b', transport: 'websocket' });
    const c = await lab.recover(relay.url, a.identity.motebitId, recoveryKey, { name: 'c', transport: 'websocket' });
    await syncAll([a, b, c]);
    c.engine.start(); // c listens on its socket from now on
    await eventually(() => c.status().transport === 'websocket' && c.status().state === 'idle', 'c listening');
    const epochBefore = c.membership!.state!.epochs.at(-1)!.n;
    await a.revoke(b.identity.deviceId); // a new epoch c has not read
    a.put('after/rotation', 'hello c');
    expect((await a.syncNow()).ok).toBe(true);
    await eventually(() => c.get('after/rotation')?.value === 'hello c', 'c applies the event live');
    expect(c.membership!.state!.epochs.at(-1)!.n).toBe(epochBefore + 1);
    expect(c.status().lastError).toBeNull();
    expect(c.store.rejectedEvents()).toEqual([]);
  });

  it('removing a device keeps every event it pushed while a member, so devices that applied them agree with the remover', async () => {
    const relay = await lab.relay();
    const { device: a, recoveryKey } = await lab.found(relay.url, { name: 'a', transport: 'http' });
    const b = await lab.recover(relay.url, a.identity.motebitId, recoveryKey, { name: 'b', transport: 'http' });
    const c = await lab.recover(relay.url, a.identity.motebitId, recoveryKey, { name: 'c', transport: 'http' });
    await syncAll([a, b, c]);
    b.put('b/late', 'pushed before its removal');
    expect((await b.syncNow()).ok).toBe(true);
    expect((await c.syncNow()).ok).toBe(true); // c applies it; a has not seen it yet
    expect(c.get('b/late')?.value).toBe('pushed before its removal');
    await a.revoke(b.identity.deviceId);
    expect(a.membership!.state!.members.get(b.identity.deviceId)?.cutoff).toBe(b.store.frontier().heads[b.identity.deviceId]);
    await syncAll([a, c]);
    expect(a.get('b/late')?.value).toBe('pushed before its removal');
    expect(a.store.stateDigest()).toBe(c.store.stateDigest());
  });
});
