// Pairing by approval through a real relay (docs/keys.md), on SQLite and (project postgres) PostgreSQL:
// the rendezvous carries the new device's keys, the member's offer and the new device's reveal, each once;
// the code commits to the keys and the nonce, so both devices show the same six digits only when nothing
// was swapped; the approval is an `add` entry, after which the new device reads the log with its own token.
// A code is worthless once used or expired.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../relay/server.ts';
import { toBase64Url, fromBase64Url } from '../../shared/encoding.ts';
import { addEntry, genesisEntry, memberFromSecret } from '../../shared/membership/author.ts';
import { MemberKeySchema } from '../../shared/membership/entry.ts';
import { verifyLog } from '../../shared/membership/log.ts';
import { commitmentHolds, formatPairingCode, newPairingNonce, pairingCommitment, parsePairingCode, shortAuthString } from '../../shared/membership/pairing-code.ts';
import { mintToken } from '../../shared/token.ts';
import { TEST_STORE } from '../support/test-db.ts';
import { RelayClient, startTestRelay, tempDir } from './support.ts';

let dir: ReturnType<typeof tempDir> | undefined;
let relay: RunningRelay | undefined;

afterEach(async () => {
  await relay?.close();
  dir?.cleanup();
  relay = undefined;
});

async function start(lifetime?: number): Promise<RelayClient> {
  dir = tempDir();
  relay = await startTestRelay(join(dir.dir, 'relay.db'), lifetime === undefined ? {} : { pairingLifetimeSeconds: lifetime });
  return new RelayClient(relay);
}

const post = (client: RelayClient, path: string, body: unknown) => client.send<Record<string, unknown> & { error?: { code: string; message: string } }>({ method: 'POST', path, body: JSON.stringify(body) }, undefined);
const get = (client: RelayClient, path: string) => client.send<Record<string, unknown> & { error?: { code: string; message: string } }>({ method: 'GET', path }, undefined);

describe(`pairing by approval through the relay (${TEST_STORE})`, () => {
  it('a new device joins: code, offer, reveal, the same six digits on both screens, approval, then its own access', async () => {
    const client = await start();
    // A member device with its motebit.
    const laptop = memberFromSecret('device', randomBytes(32), 'laptop');
    const { entry: genesis, contentKey } = await genesisEntry(laptop, memberFromSecret('recovery', randomBytes(32), null).key, Date.now());
    const state = verifyLog([genesis]);
    const request = { method: 'POST', path: `/v1/motebits/${state.motebitId}/membership`, body: JSON.stringify({ entries: [genesis] }) };
    expect((await client.send(request, undefined)).status).toBe(200);

    // 1. The new device opens a rendezvous and shows its code (nothing secret in it).
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    const nonce = newPairingNonce();
    const created = await post(client, '/v1/pairings', { member: phone.key });
    expect(created.status).toBe(201);
    const code = formatPairingCode({ rendezvousId: fromBase64Url(created.body.id as string), commitment: pairingCommitment(phone.key, nonce) });

    // 2. The member reads the code, fetches the rendezvous and offers the motebit.
    const parsed = parsePairingCode(code);
    const rendezvous = `/v1/pairings/${toBase64Url(parsed.rendezvousId)}`;
    const seenByMember = await get(client, rendezvous);
    const offered = MemberKeySchema.parse(seenByMember.body.member);
    expect(offered).toEqual(phone.key);
    expect((await post(client, `${rendezvous}/offer`, { motebit_id: state.motebitId, genesis_hash: state.hashes[0] })).status).toBe(200);
    expect((await post(client, `${rendezvous}/offer`, { motebit_id: state.motebitId, genesis_hash: 'f'.repeat(64) })).body.error?.code).toBe('not_found'); // once

    // 3. The new device sees the offer, then reveals its nonce.
    const seenByPhone = await get(client, rendezvous);
    const offer = seenByPhone.body.offer as { motebit_id: string; genesis_hash: string };
    expect(offer.genesis_hash).toBe(state.hashes[0]);
    expect((await post(client, `${rendezvous}/reveal`, { nonce: toBase64Url(nonce) })).status).toBe(200);

    // 4. The member checks the commitment and shows the string; the phone shows its own.
    const revealed = fromBase64Url(((await get(client, rendezvous)).body.reveal as { nonce: string }).nonce);
    expect(commitmentHolds(parsed, offered, revealed)).toBe(true);
    const onLaptop = shortAuthString(state.hashes[0]!, offered, revealed);
    const onPhone = shortAuthString(offer.genesis_hash, phone.key, nonce);
    expect(onPhone).toBe(onLaptop);

    // 5. Approved: the member appends the add entry; the phone now reads the log with its own token.
    const add = await addEntry(state, laptop, offered, contentKey, Date.now());
    const approve = { method: 'POST', path: `/v1/motebits/${state.motebitId}/membership`, body: JSON.stringify({ entries: [add] }) };
    expect((await client.send(approve, mintToken({ motebitId: state.motebitId, signer: laptop.key.id, key: laptop.signing, audience: client.audience, request: approve }))).status).toBe(200);
    const readLog = { method: 'GET', path: `/v1/motebits/${offer.motebit_id}/membership` };
    const log = await client.send<{ entries: unknown[] }>(readLog, mintToken({ motebitId: offer.motebit_id, signer: phone.key.id, key: phone.signing, audience: client.audience, request: readLog }));
    const joined = verifyLog(log.body.entries, offer.motebit_id);
    expect(joined.hashes[0]).toBe(offer.genesis_hash);
    expect(joined.members.get(phone.key.id)?.removedAt).toBeNull();
  });

  it('a relay that swaps the keys or the motebit is caught: the commitment fails, or the digits differ', async () => {
    const client = await start();
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    const nonce = newPairingNonce();
    const code = parsePairingCode(formatPairingCode({ rendezvousId: randomBytes(6), commitment: pairingCommitment(phone.key, nonce) }));
    // Keys swapped for an attacker's: the member's check fails.
    const attacker = memberFromSecret('device', randomBytes(32), 'phone');
    expect(commitmentHolds(code, attacker.key, nonce)).toBe(false);
    // Another motebit offered to the phone: the strings differ.
    expect(shortAuthString('a'.repeat(64), phone.key, nonce)).not.toBe(shortAuthString('b'.repeat(64), phone.key, nonce));
    // A reveal before any offer is refused (the relay could otherwise learn the nonce before committing).
    const created = await post(client, '/v1/pairings', { member: phone.key });
    expect((await post(client, `/v1/pairings/${created.body.id as string}/reveal`, { nonce: toBase64Url(nonce) })).body.error?.code).toBe('not_found');
  });

  it('refuses a rendezvous for anything but a device whose id is its key, and forgets it when it expires', async () => {
    const client = await start(1);
    const recovery = memberFromSecret('recovery', randomBytes(32), null);
    expect((await post(client, '/v1/pairings', { member: recovery.key })).body.error?.code).toBe('bad_request');
    const phone = memberFromSecret('device', randomBytes(32), 'phone');
    expect((await post(client, '/v1/pairings', { member: { ...phone.key, id: memberFromSecret('device', randomBytes(32), 'x').key.id } })).body.error?.code).toBe('bad_request');
    expect((await post(client, '/v1/pairings', { member: { ...phone.key, name: 'a\u0007' } })).body.error?.code).toBe('bad_request');
    const created = await post(client, '/v1/pairings', { member: phone.key });
    expect((await get(client, `/v1/pairings/${created.body.id as string}`)).status).toBe(200);
    // Lifetime 1 s: wait past it (time only adds margin here), then the code is worthless.
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    expect((await get(client, `/v1/pairings/${created.body.id as string}`)).body.error?.code).toBe('not_found');
    expect((await post(client, `/v1/pairings/${created.body.id as string}/offer`, { motebit_id: 'mb_' + 'A'.repeat(22), genesis_hash: 'a'.repeat(64) })).body.error?.code).toBe('not_found');
    expect((await get(client, '/v1/pairings/not-an-id')).body.error?.code).toBe('not_found');
  });
});
