// A device keeping its motebit's membership log (main/sync/membership-sync.ts) against a real relay and
// its own SQLite file: it keeps what verifies and nothing else, survives a restart, re-seeds a relay that
// lost the log, and refuses a relay whose stored log was altered (a fork written into the relay's database).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startRelay, type RunningRelay } from '../../relay/server.ts';
import { signingKeyFromSeed } from '../../shared/crypto.ts';
import { addEntry, genesisEntry, memberFromSecret, rotateEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { MAX_MEMBERSHIP_ENTRIES } from '../../shared/portable/relay-api.ts';
import type { Entry } from '../../shared/membership/entry.ts';
import { MembershipError, applyEntry, verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import { EventStore } from '../../main/store/event-store.ts';
import { MembershipRelayError, MembershipSync } from '../../main/sync/membership-sync.ts';
import { MemberKeyring } from '../../main/sync/member-keyring.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { tempDir } from '../support/motebit.ts';
import { freePort } from '../support/devices.ts';
import { WithStatus, startRewritingProxy } from '../support/rewriting-proxy.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { refusal } from '../support/refusal.ts';

let dir: ReturnType<typeof tempDir>;
const relays: RunningRelay[] = [];
const stores: EventStore[] = [];

beforeEach(() => {
  dir = tempDir('membership-sync');
});

afterEach(async () => {
  for (const store of stores.splice(0)) store.close();
  for (const relay of relays.splice(0)) await relay.close();
  dir.remove();
});

async function relayOn(file: string, audience?: string): Promise<RunningRelay> {
  const relay = await startRelay({ host: '127.0.0.1', port: 0, db: join(dir.path, file), logLevel: 'silent', ...(audience ? { audience } : {}) });
  relays.push(relay);
  return relay;
}

/** The device's own store (its protocol-2 identity is not used here: a placeholder key). */
function storeOf(name: string, motebitId: string, member: MemberSecret): EventStore {
  const store = EventStore.open(join(dir.path, `${name}.db`), { motebitId, deviceId: member.key.id, identityPublicKey: signingKeyFromSeed(randomBytes(32)).publicKey });
  stores.push(store);
  return store;
}

async function offered(client: RelayClient, entry: Entry): Promise<Entry> {
  await client.offerMembership([entry]);
  return entry;
}

const clientFor = (relay: RunningRelay, motebitId: string, member: MemberSecret, audience = relay.audience, relayUrl = relay.url) =>
  new RelayClient({ relayUrl, audience, motebitId, deviceId: member.key.id, deviceKey: member.signing });

async function founded(relay: RunningRelay) {
  const laptop = memberFromSecret('device', randomBytes(32), 'laptop');
  const recovery = memberFromSecret('recovery', randomBytes(32), null);
  const { entry, contentKey } = await genesisEntry(laptop, recovery.key, Date.now());
  const state = verifyLog([entry]);
  await clientFor(relay, state.motebitId, laptop).offerMembership([entry]);
  return { laptop, recovery, entry, key: contentKey, state };
}

describe('membership sync on a device', () => {
  it('keeps what the relay serves once it verifies, and holds it across a restart', async () => {
    const relay = await relayOn('relay.db');
    const { laptop, key, state } = await founded(relay);
    const client = clientFor(relay, state.motebitId, laptop);
    const sync = new MembershipSync(storeOf('laptop', state.motebitId, laptop).membership, client, state.motebitId);
    expect(sync.state).toBeNull();
    expect(await sync.refresh()).toMatchObject({ kind: 'current', added: 1 });
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    await client.offerMembership([await addEntry(state, laptop, phone.key, key, Date.now())]);
    expect(await sync.refresh()).toMatchObject({ kind: 'current', added: 1 });
    expect(await sync.refresh()).toMatchObject({ kind: 'current', added: 0 });
    expect(sync.state?.members.has(phone.key.id)).toBe(true);

    stores.pop()!.close();
    const reopened = new MembershipSync(storeOf('laptop', state.motebitId, laptop).membership, client, state.motebitId);
    expect(reopened.state?.head.seq).toBe(1);
    expect(reopened.state?.head.hash).toBe(sync.state?.head.hash);
  });

  it('re-seeds a relay that lost the log (a new, empty database at the same address)', async () => {
    const first = await relayOn('first.db', 'http://relay.test');
    const { laptop, key, state } = await founded(first);
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    await clientFor(first, state.motebitId, laptop).offerMembership([await addEntry(state, laptop, phone.key, key, Date.now())]);
    const sync = new MembershipSync(storeOf('laptop', state.motebitId, laptop).membership, clientFor(first, state.motebitId, laptop), state.motebitId);
    await sync.refresh();

    const replaced = await relayOn('replaced.db', 'http://relay.test');
    const later = new MembershipSync(stores[0]!.membership, clientFor(replaced, state.motebitId, laptop), state.motebitId);
    expect(await later.refresh()).toMatchObject({ kind: 'reseeded', resent: 2 });
    // The replaced relay holds the whole log again, and the phone can authenticate there.
    const byPhone = await clientFor(replaced, state.motebitId, phone).membership(-1);
    expect(verifyLog(byPhone.entries, state.motebitId).head.hash).toBe(sync.state?.head.hash);
  });

  it('re-seeds a log longer than one offer may carry, in offers the relay takes', async () => {
    const first = await relayOn('first.db', 'http://relay.test');
    const { laptop, key, state: s0 } = await founded(first);
    let state = s0;
    let current = key;
    const rotations: Entry[] = [];
    // With the genesis, exactly two full offers: the last offer ends the log (no empty offer after it, which the relay refuses).
    for (let i = 0; i < 2 * MAX_MEMBERSHIP_ENTRIES - 1; i++) {
      const { entry, contentKey } = await rotateEntry(state, laptop, current, Date.now());
      rotations.push(entry);
      state = applyEntry(state, entry);
      current = contentKey;
    }
    const client = clientFor(first, s0.motebitId, laptop);
    for (let i = 0; i < rotations.length; i += MAX_MEMBERSHIP_ENTRIES) await client.offerMembership(rotations.slice(i, i + MAX_MEMBERSHIP_ENTRIES));
    const store = storeOf('laptop', s0.motebitId, laptop);
    await new MembershipSync(store.membership, client, s0.motebitId).refresh();

    const replaced = await relayOn('replaced.db', 'http://relay.test');
    expect(await new MembershipSync(store.membership, clientFor(replaced, s0.motebitId, laptop), s0.motebitId).refresh()).toMatchObject({ kind: 'reseeded', resent: rotations.length + 1 });
    expect((await clientFor(replaced, s0.motebitId, laptop).membership(-1)).head).toBe(rotations.length);
  });

  it('re-seeds a relay that rolled back to an older log: only the entries it lacks are sent again', async () => {
    const relay = await relayOn('relay.db', 'http://relay.test');
    const { laptop, key, state } = await founded(relay);
    // A backup of the relay's database while it holds only the genesis.
    const live = new Database(join(dir.path, 'relay.db'));
    await live.backup(join(dir.path, 'backup.db'));
    live.close();
    const client = clientFor(relay, state.motebitId, laptop);
    const s1 = applyEntry(state, await offered(client, await addEntry(state, laptop, memberFromSecret('device', randomBytes(32), 'phone').key, key, Date.now())));
    await offered(client, await addEntry(s1, laptop, memberFromSecret('device', randomBytes(32), 'tablet').key, key, Date.now()));
    const store = storeOf('laptop', state.motebitId, laptop);
    const sync = new MembershipSync(store.membership, client, state.motebitId);
    expect(await sync.refresh()).toMatchObject({ kind: 'current', added: 3 });

    // The relay is restored from that backup: it knows the laptop, and its log ends at the genesis.
    const restored = await relayOn('backup.db', 'http://relay.test');
    const again = new MembershipSync(store.membership, clientFor(restored, state.motebitId, laptop), state.motebitId);
    expect(await again.refresh()).toMatchObject({ kind: 'reseeded', resent: 2 });
    const served = await clientFor(restored, state.motebitId, laptop).membership(-1);
    expect(served.head).toBe(2);
    expect(verifyLog(served.entries, state.motebitId).head.hash).toBe(sync.state?.head.hash);
    expect(await again.refresh()).toMatchObject({ kind: 'current', added: 0 });
  });

  it('only a device that holds a log reads "unknown device" as a relay that lost it; one that holds none is told the error', async () => {
    const relay = await relayOn('relay.db');
    const { state } = await founded(relay);
    const stranger = memberFromSecret('device', randomBytes(32), 'stranger');
    const fresh = new MembershipSync(storeOf('stranger', state.motebitId, stranger).membership, clientFor(relay, state.motebitId, stranger), state.motebitId);
    const refused = await fresh.refresh().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TransportError);
    expect((refused as TransportError).code).toBe('unknown_device');
    expect(fresh.state).toBeNull();
  });

  it('a device that holds the log and cannot read the relay\'s (any other refusal) fails the refresh: it re-seeds nothing', async () => {
    const proxy = await startRewritingProxy(() => relay.url, await freePort());
    const relay = await relayOn('relay.db', proxy.url);
    try {
      const { laptop, key, state } = await founded(relay);
      const client = clientFor(relay, state.motebitId, laptop, proxy.url);
      const proxied = clientFor(relay, state.motebitId, laptop, proxy.url, proxy.url);
      const sync = new MembershipSync(storeOf('laptop', state.motebitId, laptop).membership, proxied, state.motebitId);
      expect(await sync.refresh()).toMatchObject({ kind: 'current', added: 1 });
      proxy.rewrite((answer) => (answer.method === 'GET' && answer.path.endsWith('/membership') ? new WithStatus(503, { error: { code: 'unavailable', message: 'try again later' } }) : undefined));
      const failed = await sync.refresh().catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(TransportError);
      expect((failed as Error).message).toMatch(/^GET .*\/membership: /); // the read's failure, not an offer's
      expect(sync.state?.head.seq).toBe(0);
      expect((await client.membership(-1)).head).toBe(0);
      // A relay that says its log goes further than the entries it serves is refused, and nothing is kept.
      await client.offerMembership([await addEntry(state, laptop, memberFromSecret('device', randomBytes(32), 'phone').key, key, Date.now())]);
      proxy.rewrite((answer) => (answer.method === 'GET' && answer.path.endsWith('/membership') ? { ...(answer.body as object), entries: [] } : undefined));
      const short = await sync.refresh().catch((error: unknown) => error);
      expect(short).toBeInstanceOf(MembershipRelayError);
      expect((short as Error).message).toBe('the relay served a membership log this device refuses: membership entry 1: the relay says its log ends at entry 1 but served entries only up to 0');
      expect((short as MembershipRelayError).fault).toMatchObject({ fault: 'chain', seq: 1 });
      expect(sync.state?.head.seq).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('a device without a log, told by a relay that it holds none, is refused in words, keeps nothing, and offers nothing when it moves', async () => {
    const proxy = await startRewritingProxy(() => relay.url, await freePort());
    const relay = await relayOn('relay.db', proxy.url);
    try {
      const { laptop, state } = await founded(relay);
      proxy.rewrite((answer) => (answer.method === 'GET' && answer.path.endsWith('/membership') ? new WithStatus(200, { entries: [], head: -1 }) : undefined));
      const store = storeOf('laptop', state.motebitId, laptop);
      const sync = new MembershipSync(store.membership, clientFor(relay, state.motebitId, laptop, proxy.url, proxy.url), state.motebitId);
      const refused = await sync.refresh().catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(MembershipRelayError);
      expect((refused as Error).message).toBe('the relay served a membership log this device refuses: membership entry 0: the relay holds no membership log for this motebit');
      expect((refused as MembershipRelayError).fault).toMatchObject({ fault: 'chain', seq: 0 });
      expect(sync.state).toBeNull();
      expect(store.membership.entries()).toEqual([]);
      expect(await sync.offerTo(clientFor(relay, state.motebitId, laptop, proxy.url))).toBe(0); // another relay, that holds the log: nothing to add to it
    } finally {
      await proxy.close();
    }
  });

  it('adopting a log: the first one verified is kept; a second is not taken, and an empty one is refused', async () => {
    const relay = await relayOn('relay.db');
    const { laptop, key, state, entry } = await founded(relay);
    const store = storeOf('laptop', state.motebitId, laptop);
    const empty = new MembershipSync(store.membership, clientFor(relay, state.motebitId, laptop), state.motebitId);
    expect(refusal(MembershipError, () => empty.adopt([]))).toMatchObject({ fault: 'chain', seq: 0, message: 'membership entry 0: the log is empty' });
    expect(store.membership.entries()).toEqual([]);
    const sync = new MembershipSync(store.membership, clientFor(relay, state.motebitId, laptop), state.motebitId);
    expect(sync.adopt([entry]).head.hash).toBe(state.head.hash);
    const longer = [entry, await addEntry(state, laptop, memberFromSecret('device', randomBytes(32), 'phone').key, key, Date.now())];
    expect(sync.adopt(longer).head.seq).toBe(0); // it already holds one: that one stands
    expect(store.membership.entries()).toHaveLength(1);
  });

  it('the content keys of a device the log never gave one: refused, saying so', async () => {
    const laptop = memberFromSecret('device', randomBytes(32), 'laptop');
    const { entry } = await genesisEntry(laptop, memberFromSecret('recovery', randomBytes(32), null).key, Date.now());
    const state = verifyLog([entry]);
    expect((await MemberKeyring.open(state, { id: laptop.key.id, kemPrivateKey: laptop.kem.privateKey })).current.id).toBeTruthy();
    const stranger = memberFromSecret('device', randomBytes(32), 'stranger');
    await expect(MemberKeyring.open(state, { id: stranger.key.id, kemPrivateKey: stranger.kem.privateKey })).rejects.toThrow(`member ${stranger.key.id} holds no key of this motebit`);
  });

  it('refuses a relay whose stored log was altered, and keeps nothing it served', async () => {
    const relay = await relayOn('relay.db');
    const { laptop, key, state, entry: genesis } = await founded(relay);
    const sync = new MembershipSync(storeOf('laptop', state.motebitId, laptop).membership, clientFor(relay, state.motebitId, laptop), state.motebitId);
    await sync.refresh();
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    const tablet = memberFromSecret('device', randomBytes(32), 'tablet');
    const add = await addEntry(state, laptop, phone.key, key, Date.now());
    await clientFor(relay, state.motebitId, laptop).offerMembership([add]);
    const s1: MembershipState = applyEntry(state, add);
    await clientFor(relay, state.motebitId, laptop).offerMembership([await addEntry(s1, laptop, tablet.key, key, Date.now())]);

    // Someone with the relay's database swaps entry 1 for another (validly signed, a fork) and keeps entry 2.
    const fork = await addEntry(state, laptop, memberFromSecret('device', randomBytes(32), 'intruder').key, key, Date.now());
    const db = new Database(join(dir.path, 'relay.db'));
    db.prepare('UPDATE membership SET entry = ? WHERE motebit_id = ? AND seq = 1').run(JSON.stringify(fork), state.motebitId);
    db.close();
    const refused = await sync.refresh().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(MembershipRelayError);
    expect(String(refused)).toMatch(/^MembershipRelayError: the relay served a membership log this device refuses: .*(does not follow|fork)/);
    expect((refused as MembershipRelayError).cause).toBe((refused as MembershipRelayError).fault);
    expect(sync.state?.head.seq).toBe(0); // nothing of what it served was kept
    expect(stores[0]!.membership.entries().map((e) => JSON.parse(e.text) as Entry)).toEqual([genesis]);
  });
});
