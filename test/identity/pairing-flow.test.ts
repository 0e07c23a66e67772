// Pairing by approval, both sides as the CLI and the window drive them (main/identity/pairing-flow.ts),
// through a real relay on 127.0.0.1: the new device's code, the member's offer, the reveal, the same six
// digits on both screens, the approval, and the new device's own verified log and keys. Every way it must
// not work (declined, reused, expired, keys swapped, another motebit served) ends in a PairingError in
// words, and the motebit's log on the relay is left as it was.
import { randomBytes } from 'node:crypto';
import { join as joinPath } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../relay/server.ts';
import { toBase64Url } from '../../shared/encoding.ts';
import { addEntry, genesisEntry, memberFromSecret, rotateEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import { formatPairingCode, newPairingNonce, pairingCommitment, parsePairingCode } from '../../shared/membership/pairing-code.ts';
import { PairingError, startApproval, startJoin, type PairingErrorCode } from '../../main/identity/pairing-flow.ts';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { eventually } from '../support/devices.ts';
import { TEST_STORE } from '../support/test-db.ts';
import { RelayClient as TestClient, startTestRelay, tempDir } from '../relay/support.ts';

const POLL_MS = 100;

let dir: ReturnType<typeof tempDir> | undefined;
let relay: RunningRelay | undefined;

afterEach(async () => {
  await relay?.close();
  dir?.cleanup();
  relay = undefined;
  dir = undefined;
});

async function startRelay(lifetime?: number): Promise<RunningRelay> {
  dir = tempDir();
  relay = await startTestRelay(joinPath(dir.dir, 'relay.db'), lifetime === undefined ? {} : { pairingLifetimeSeconds: lifetime });
  return relay;
}

interface Motebit {
  readonly laptop: MemberSecret;
  readonly state: MembershipState;
  readonly contentKey: Buffer;
  /** The laptop's client, signed as the laptop. */
  readonly client: RelayClient;
}

/** A motebit founded by a laptop, its genesis on the relay. */
async function motebit(running: RunningRelay): Promise<Motebit> {
  const laptop = memberFromSecret('device', randomBytes(32), 'laptop');
  const { entry: genesis, contentKey } = await genesisEntry(laptop, memberFromSecret('recovery', randomBytes(32), null).key, Date.now());
  const state = verifyLog([genesis]);
  const posted = await new TestClient(running).send({ method: 'POST', path: `/v1/motebits/${state.motebitId}/membership`, body: JSON.stringify({ entries: [genesis] }) }, undefined);
  expect(posted.status).toBe(200);
  const client = new RelayClient({ relayUrl: running.url, audience: running.audience, motebitId: state.motebitId, deviceId: laptop.key.id, deviceKey: laptop.signing });
  return { laptop, state, contentKey, client };
}

const newDevice = (name = 'phone'): MemberSecret => memberFromSecret('device', randomBytes(32), name);

const joinOptions = (running: RunningRelay, member: MemberSecret) => ({ relayUrl: running.url, audience: running.audience, member, pollMs: POLL_MS });

/** The PairingError a promise rejects with: its code, and a message in words (no request paths, status codes or stack). */
async function refusal(promise: Promise<unknown>, code: PairingErrorCode): Promise<PairingError> {
  const error = await promise.then(
    () => {
      throw new Error(`expected a PairingError (${code}), but it succeeded`);
    },
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(PairingError);
  const pairing = error as PairingError;
  expect(pairing.code).toBe(code);
  expect(pairing.message).not.toMatch(/\/v1\/|HTTP|\b[45]\d\d\b|_[a-z]|\n\s+at /);
  return pairing;
}

describe(`pairing by approval, both sides (${TEST_STORE})`, () => {
  it('joins: both screens show the same six digits, the member approves, the new device verifies the log and opens the current key', async () => {
    const running = await startRelay();
    const { laptop, state, contentKey, client } = await motebit(running);
    const phone = newDevice();

    const join = await startJoin(joinOptions(running, phone));
    expect(join.code).toMatch(/^MBP1-/);
    expect(join.expiresAt).toBeGreaterThan(Date.now() + 500_000); // the relay's 10 minutes
    const [offered, approval] = await Promise.all([join.waitForOffer(), startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS })]);
    expect(offered.motebitId).toBe(state.motebitId);
    expect(offered.genesisHash).toBe(state.hashes[0]);
    expect(offered.sas).toMatch(/^\d{3} \d{3}$/);
    expect(approval.sas).toBe(offered.sas);
    expect(approval.name).toBe('phone');
    expect(approval.id).toBe(phone.key.id);
    expect(approval.member).toEqual(phone.key);

    const joining = join.waitForApproval();
    const entry = await approval.approve(laptop, contentKey);
    const joined = await joining;
    expect(joined.state.motebitId).toBe(state.motebitId);
    expect(joined.state.hashes[0]).toBe(state.hashes[0]);
    expect(joined.state.head.seq).toBe(1);
    expect(joined.entries[1]).toEqual(entry);
    expect(joined.state.members.get(phone.key.id)?.removedAt).toBeNull();
    const current = joined.state.epochs.at(-1)!.keyId;
    expect(joined.keys.get(current)).toEqual(contentKey);

    // The approval is one entry, once; the relay holds it.
    await expect(approval.approve(laptop, contentKey)).rejects.toThrow(/approved already/);
    expect((await client.membership(-1)).head).toBe(1);
  });

  it('an approval whose answer is lost on the way back still counts: the member reads the log and finds its entry', async () => {
    const running = await startRelay();
    const { laptop, state, contentKey } = await motebit(running);
    // The laptop's connection drops right after the relay took the add entry, before the answer arrives.
    let dropped = 0;
    const dropping: typeof fetch = async (input, init) => {
      const answer = await fetch(input, init);
      if (init?.method === 'POST' && String(input).endsWith('/membership')) {
        dropped++;
        await answer.text();
        throw new TypeError('fetch failed');
      }
      return answer;
    };
    const client = new RelayClient({ relayUrl: running.url, audience: running.audience, motebitId: state.motebitId, deviceId: laptop.key.id, deviceKey: laptop.signing, fetch: dropping });
    const phone = newDevice();
    const join = await startJoin(joinOptions(running, phone));
    const [, approval] = await Promise.all([join.waitForOffer(), startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS })]);
    const entry = await approval.approve(laptop, contentKey);
    expect(dropped).toBe(1);
    const joined = await join.waitForApproval();
    expect(joined.entries.at(-1)).toEqual(entry);
  });

  it('the log moved on while the person compared the digits: the approval is refused as a conflict and adds nothing', async () => {
    const running = await startRelay();
    const { laptop, state, contentKey, client } = await motebit(running);
    const join = await startJoin(joinOptions(running, newDevice()));
    const [, approval] = await Promise.all([join.waitForOffer(), startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS })]);
    const { entry: rotated } = await rotateEntry(state, laptop, contentKey, Date.now());
    expect(await client.offerMembership([rotated])).toBe(1);
    await refusal(approval.approve(laptop, contentKey), 'conflict');
    const log = await client.membership(-1);
    expect(log.head).toBe(1);
    expect(log.entries.at(-1)).toEqual(rotated);
  });

  it('declined: the member never approves; the new device waits until the code expires, and the log is unchanged', async () => {
    const running = await startRelay(1);
    const { state, client } = await motebit(running);
    const join = await startJoin(joinOptions(running, newDevice()));
    const [offered, approval] = await Promise.all([join.waitForOffer(), startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS })]);
    expect(approval.sas).toBe(offered.sas);
    // The person says the digits differ (or just walks away): approve is never called.
    const error = await refusal(join.waitForApproval(), 'expired');
    expect(error.message).toBe('the code expired before another device approved it; run join again');
    expect(Date.now()).toBeGreaterThanOrEqual(join.expiresAt);
    expect((await client.membership(-1)).head).toBe(0);
  });

  it('a used code is refused on its second reading, and nothing is appended', async () => {
    const running = await startRelay();
    const { state, client } = await motebit(running);
    const join = await startJoin(joinOptions(running, newDevice()));
    await Promise.all([join.waitForOffer(), startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS })]);
    const error = await refusal(startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS }), 'unknown_code');
    expect(error.message).toBe('this code is unknown, used or expired; ask the new device for a new one');
    expect((await client.membership(-1)).head).toBe(0);
  });

  it('an expired code is refused by the member and ends the new device\u2019s wait; nothing is appended', async () => {
    const running = await startRelay(1);
    const { state, client } = await motebit(running);
    const join = await startJoin(joinOptions(running, newDevice()));
    const id = toBase64Url(parsePairingCode(join.code).rendezvousId);
    const status = async (): Promise<number> => (await new TestClient(running).send({ method: 'GET', path: `/v1/pairings/${id}` }, undefined)).status;
    expect(await status()).toBe(200);
    // Until the relay has forgotten it (read every 250 ms: the relay limits pairing reads per address).
    for (const until = Date.now() + 10_000; (await status()) !== 404; ) {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await refusal(startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS }), 'unknown_code');
    await refusal(join.waitForOffer(), 'expired');
    expect((await client.membership(-1)).head).toBe(0);
  });

  it('the new device stops waiting at the expiry by its own clock, even while the relay still answers', async () => {
    const running = await startRelay();
    const join = await startJoin({ ...joinOptions(running, newDevice()), now: () => Date.now() + 3_600_000 });
    await refusal(join.waitForOffer(), 'expired');
  });

  it('keys swapped on the way: the code commits to other keys than the device that answered, so the member refuses and appends nothing', async () => {
    const running = await startRelay();
    const { state, client } = await motebit(running);
    const join = await startJoin(joinOptions(running, newDevice()));
    // The code the person reads commits to another device's keys (what a relay swapping keys amounts to).
    const other = newDevice();
    const swapped = formatPairingCode({ rendezvousId: parsePairingCode(join.code).rendezvousId, commitment: pairingCommitment(other.key, newPairingNonce()) });
    const [offered, error] = await Promise.all([join.waitForOffer(), refusal(startApproval({ relay: client, code: swapped, state, pollMs: POLL_MS }), 'mismatch')]);
    expect(offered.motebitId).toBe(state.motebitId); // the new device answered; the member caught the swap
    expect(error.message).toBe('the code does not match the device that answered; do not approve; nothing was changed');
    expect((await client.membership(-1)).head).toBe(0);
  });

  it('the new device refuses a log whose genesis is not the one offered, and keeps nothing', async () => {
    const running = await startRelay();
    const { laptop, state, contentKey, client } = await motebit(running);
    const elsewhere = await motebit(running);
    const phone = newDevice();
    const join = await startJoin(joinOptions(running, phone));
    // A member (or a relay) offers one genesis and serves the log of another: offered by hand here.
    const id = toBase64Url(parsePairingCode(join.code).rendezvousId);
    await client.offerPairing(id, { motebit_id: state.motebitId, genesis_hash: elsewhere.state.hashes[0]! });
    const offered = await join.waitForOffer();
    expect(offered.genesisHash).toBe(elsewhere.state.hashes[0]);
    await client.offerMembership([await addEntry(state, laptop, phone.key, contentKey, Date.now())]);
    const error = await refusal(join.waitForApproval(), 'wrong_motebit');
    expect(error.message).toMatch(/another motebit/);
  });

  it('refuses a mistyped code in words, and a device that is a member already without using its code', async () => {
    const running = await startRelay();
    const { laptop, state, contentKey, client } = await motebit(running);
    const bad = await refusal(startApproval({ relay: client, code: 'MBP1-0000-0000', state, pollMs: POLL_MS }), 'bad_code');
    expect(bad.message).toMatch(/pairing code/);

    const phone = newDevice();
    const added = verifyLog([...(await client.membership(-1)).entries, await addEntry(state, laptop, phone.key, contentKey, Date.now())]);
    const join = await startJoin(joinOptions(running, phone));
    await refusal(startApproval({ relay: client, code: join.code, state: added, pollMs: POLL_MS }), 'already_member');
    // Refused before offering: the code is still good for nobody but has not been spent.
    expect((await client.pairing(toBase64Url(parsePairingCode(join.code).rendezvousId))).offer).toBeNull();
  });

  it('the member stops waiting for the new device when told to, with the log unchanged', async () => {
    const running = await startRelay();
    const { state, client } = await motebit(running);
    const join = await startJoin(joinOptions(running, newDevice()));
    const id = toBase64Url(parsePairingCode(join.code).rendezvousId);
    const stop = new AbortController();
    const approving = startApproval({ relay: client, code: join.code, state, pollMs: POLL_MS, signal: stop.signal });
    await eventually(async () => (await client.pairing(id)).offer !== null, 'the member has offered');
    stop.abort();
    await refusal(approving, 'cancelled');
    expect((await client.membership(-1)).head).toBe(0);
  });
});
