// Membership logs at a real relay (relay/membership.ts; docs/keys.md), over HTTP, on SQLite and (project
// postgres) PostgreSQL: a new motebit is founded by its genesis, members are added and removed by signed
// entries the relay checks before it stores them, and what the log says about devices holds at once — an
// added device authenticates, a removed one is refused and its socket closed. Entries that break a rule,
// that do not follow the stored log, or that found another motebit are refused and change nothing.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../relay/server.ts';
import { addEntry, genesisEntry, memberFromSecret, recoveryEntry, removeEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { signEntry, type Entry } from '../../shared/membership/entry.ts';
import { applyEntry, verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import { mintToken, mintWsToken } from '../../shared/token.ts';
import { TEST_STORE } from '../support/test-db.ts';
import { CLOSE_CODES } from '../../shared/portable/relay-api.ts';
import { RelayClient, WsClient, enrolledMotebit, startTestRelay, tempDir, type Answer } from './support.ts';

let dir: ReturnType<typeof tempDir>;
let relay: RunningRelay;
let client: RelayClient;

beforeEach(async () => {
  dir = tempDir();
  relay = await startTestRelay(join(dir.dir, 'relay.db'));
  client = new RelayClient(relay);
});

afterEach(async () => {
  await relay.close();
  dir.cleanup();
});

const device = (name: string): MemberSecret => memberFromSecret('device', randomBytes(32), name);
const path = (motebitId: string, query = '') => `/v1/motebits/${motebitId}/membership${query}`;

/** POSTs entries, with a token of `as` (a member device) when given. */
function offer(motebitId: string, entries: unknown[], as?: MemberSecret): Promise<Answer<{ head?: number; error?: { code: string; message: string } }>> {
  const request = { method: 'POST', path: path(motebitId), body: JSON.stringify({ entries }) };
  const token = as && mintToken({ motebitId, signer: as.key.id, key: as.signing, audience: relay.audience, request });
  return client.send(request, token);
}

function read(motebitId: string, as: MemberSecret, after = -1): Promise<Answer<{ entries?: Entry[]; head?: number; error?: { code: string } }>> {
  const request = { method: 'GET', path: path(motebitId, after === -1 ? '' : `?after=${after}`) };
  return client.send(request, mintToken({ motebitId, signer: as.key.id, key: as.signing, audience: relay.audience, request }));
}

async function founded(): Promise<{ laptop: MemberSecret; recovery: MemberSecret; log: Entry[]; key: Buffer; state: MembershipState }> {
  const laptop = device('laptop');
  const recovery = memberFromSecret('recovery', randomBytes(32), null);
  const { entry, contentKey } = await genesisEntry(laptop, recovery.key, Date.now());
  const state = verifyLog([entry]);
  expect(await offer(state.motebitId, [entry])).toMatchObject({ status: 200, body: { head: 0 } });
  return { laptop, recovery, log: [entry], key: contentKey, state };
}

describe(`membership logs at the relay (${TEST_STORE})`, () => {
  it('a genesis founds a motebit; its founder reads the log; an added device authenticates at once', async () => {
    const { laptop, log, key, state } = await founded();
    const read0 = await read(state.motebitId, laptop);
    expect(read0.status).toBe(200);
    expect(read0.body.entries).toEqual(log);
    expect(read0.body.head).toBe(0);

    const phone = device('phone');
    const add = await addEntry(state, laptop, phone.key, key, Date.now());
    // Once a log exists, only its current members offer entries (with a device token).
    expect((await offer(state.motebitId, [add])).body.error?.code).toBe('malformed_token');
    expect(await offer(state.motebitId, [add], laptop)).toMatchObject({ status: 200, body: { head: 1 } });
    const byPhone = await read(state.motebitId, phone, 0);
    expect(byPhone.status).toBe(200);
    expect(byPhone.body.entries).toEqual([add]);
    expect(verifyLog([...log, ...byPhone.body.entries!]).head.seq).toBe(1);
    // The device list shows both members.
    const request = { method: 'GET', path: `/v1/motebits/${state.motebitId}/devices` };
    const listed = await client.send<{ devices: { device_id: string }[] }>(request, mintToken({ motebitId: state.motebitId, signer: phone.key.id, key: phone.signing, audience: relay.audience, request }));
    expect(listed.body.devices.map((d) => d.device_id).sort()).toEqual([laptop.key.id, phone.key.id].sort());
  });

  it('a removed device is refused at once, its socket closed, and nothing it signs is stored', async () => {
    const { laptop, key, state: s0 } = await founded();
    const phone = device('phone');
    const add = await addEntry(s0, laptop, phone.key, key, Date.now());
    await offer(s0.motebitId, [add], laptop);
    const s1 = applyEntry(s0, add);
    const socket = new WsClient(relay.url, s1.motebitId);
    await socket.opened;
    socket.sendJson({ type: 'auth', token: mintWsToken({ motebitId: s1.motebitId, signer: phone.key.id, key: phone.signing, audience: relay.audience }), after: 0 });
    await socket.waitFor((m) => m.type === 'ready');

    const { entry: removal } = await removeEntry(s1, laptop, phone.key.id, 0, key, Date.now());
    expect((await offer(s1.motebitId, [removal], laptop)).status).toBe(200);
    expect(await socket.closed).toMatchObject({ code: CLOSE_CODES.revoked });
    expect((await read(s1.motebitId, phone)).body.error?.code).toBe('revoked_device');
    // An entry the removed phone signs (adding a device of its own) is refused, even offered by a member.
    const s2 = applyEntry(s1, removal);
    const accomplice = device('accomplice');
    const sneaky = signEntry({ v: 1, seq: 3, prev: s2.head.hash, signer: phone.key.id, at: Date.now(), motebit_id: s2.motebitId, kind: 'add', member: accomplice.key, wrap: (add as Extract<Entry, { kind: 'add' }>).wrap }, phone.signing);
    const refused = await offer(s2.motebitId, [sneaky], laptop);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ code: 'membership_refused' });
    expect(refused.body.error?.message).toMatch(/not a member/);
    expect((await read(s2.motebitId, laptop)).body.head).toBe(2);
    expect((await read(s2.motebitId, accomplice)).body.error?.code).toBe('unknown_device');
  });

  it('the recovery key signs in to read and extend the log (a new device when all are lost), never to sync events; replaced, it is out', async () => {
    const { laptop, recovery, key, state: s0 } = await founded();
    expect((await read(s0.motebitId, recovery)).body.head).toBe(0);
    // Every device is lost: the recovery key removes the laptop and adds a new one.
    const { entry: removal, contentKey: key2 } = await removeEntry(s0, recovery, laptop.key.id, 0, key, Date.now());
    expect((await offer(s0.motebitId, [removal], recovery)).status).toBe(200);
    const s1 = applyEntry(s0, removal);
    const fresh = device('new laptop');
    expect((await offer(s1.motebitId, [await addEntry(s1, recovery, fresh.key, key2, Date.now())], recovery)).status).toBe(200);
    expect((await read(s1.motebitId, fresh)).body.head).toBe(2);
    expect((await read(s1.motebitId, laptop)).body.error?.code).toBe('revoked_device');
    // Not a device: no events, no device list entry.
    const pull = { method: 'GET', path: `/v1/motebits/${s1.motebitId}/events` };
    expect((await client.send<{ error?: { code: string } }>(pull, mintToken({ motebitId: s1.motebitId, signer: recovery.key.id, key: recovery.signing, audience: relay.audience, request: pull }))).body.error?.code).toBe('unknown_device');
    const list = { method: 'GET', path: `/v1/motebits/${s1.motebitId}/devices` };
    const listed = await client.send<{ devices: { device_id: string }[] }>(list, mintToken({ motebitId: s1.motebitId, signer: fresh.key.id, key: fresh.signing, audience: relay.audience, request: list }));
    expect(listed.body.devices.map((d) => d.device_id).sort()).toEqual([laptop.key.id, fresh.key.id].sort());
    // It names a successor: the old recovery key can no longer sign in.
    const s2 = verifyLog((await read(s1.motebitId, fresh)).body.entries!, s1.motebitId);
    const successor = memberFromSecret('recovery', randomBytes(32), null);
    expect((await offer(s2.motebitId, [await recoveryEntry(s2, recovery, successor.key, key2, Date.now())], recovery)).status).toBe(200);
    expect((await read(s2.motebitId, recovery)).body.error?.code).toBe('revoked_device');
    expect((await read(s2.motebitId, successor)).body.head).toBe(3);
  });

  it('refuses entries that break a rule, that do not follow the stored log, or that found another motebit', async () => {
    const { laptop, key, state, log } = await founded();
    const phone = device('phone');
    const add = await addEntry(state, laptop, phone.key, key, Date.now());
    const tampered = { ...add, at: (add as { at: number }).at + 1 };
    expect((await offer(state.motebitId, [tampered], laptop)).body.error?.code).toBe('membership_refused');
    expect((await offer(state.motebitId, [add], laptop)).status).toBe(200);
    // The same position again (a device that had not seen the add): a conflict, nothing stored.
    const other = await addEntry(state, laptop, device('tablet').key, key, Date.now());
    const conflict = await offer(state.motebitId, [other], laptop);
    expect(conflict.status).toBe(400); // checked against the stored log first: it does not follow it
    expect(conflict.body.error?.message).toMatch(/does not follow|numbered/);
    // A genesis offered under another motebit's id.
    const elsewhere = await genesisEntry(device('x'), memberFromSecret('recovery', randomBytes(32), null).key, Date.now());
    const wrongId = await offer(state.motebitId, [elsewhere.entry], laptop);
    expect(wrongId.body.error?.code).toBe('membership_refused');
    const stray = await offer(verifyLog([elsewhere.entry]).motebitId.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), [elsewhere.entry]);
    expect(stray.body.error?.code).toBe('membership_refused');
    expect((await read(state.motebitId, laptop)).body.entries).toEqual([...log, add]);
    // Two members offering the next entry at once: exactly one is stored.
    const s1 = applyEntry(state, add);
    const [x, y] = await Promise.all([device('a'), device('b')].map(async (d) => offer(s1.motebitId, [await addEntry(s1, laptop, d.key, key, Date.now())], laptop)));
    expect([x!.status, y!.status].filter((status) => status === 200)).toHaveLength(1);
    expect([x!.status, y!.status].filter((status) => status === 409 || status === 400)).toHaveLength(1);
    expect((await read(state.motebitId, laptop)).body.head).toBe(2);
    // No entries at all: refused in words.
    expect((await offer(state.motebitId, [], laptop)).body.error?.code).toBe('bad_request');
  });

  it('a protocol-2 motebit starts its log only through one of its devices; its old enrolment is closed to a new motebit', async () => {
    const { motebit, devices } = await enrolledMotebit(client, 2);
    const laptop = device('laptop');
    const recovery = memberFromSecret('recovery', randomBytes(32), null);
    const { entry } = await genesisEntry(laptop, recovery.key, Date.now(), { identityKey: motebit.identity, contentKey: randomBytes(32), frontier: {} });
    // Without a device token: refused (a revoked device still knows the master token).
    expect((await offer(motebit.motebitId, [entry])).body.error?.code).toBe('malformed_token');
    expect((await client.revoke(motebit, devices[1]!.deviceId)).status).toBe(200);
    const request = { method: 'POST', path: path(motebit.motebitId), body: JSON.stringify({ entries: [entry] }) };
    expect((await client.send(request, devices[1]!.token(relay.audience, request))).body).toMatchObject({ error: { code: 'revoked_device' } });
    const upgraded = await client.send<{ head: number }>(request, devices[0]!.token(relay.audience, request));
    expect(upgraded).toMatchObject({ status: 200, body: { head: 0 } });
    expect((await read(motebit.motebitId, laptop)).body.entries).toEqual([entry]);

    // A motebit founded by a genesis has no identity key: the old enrolment (identity tokens) is refused.
    const { state } = await founded();
    const intruder = motebit.device('intruder');
    const enrol = { method: 'POST', path: `/v1/motebits/${state.motebitId}/devices`, body: motebit.enrolBody(intruder) };
    const refused = await client.send(enrol, motebit.identityToken(relay.audience, enrol));
    expect(refused.status).not.toBe(201);
  });
});
