// The membership log (shared/membership), case by case: who may add, remove, rotate and hand on the
// recovery role; what a removed device can still read and write; and logs a relay might serve instead
// (forked, reordered, re-signed, with a forged wrapped key), each refused with the fault it has.
import { createCipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signingKeyFromSeed, type SigningKey } from '../../shared/crypto.ts';
import { certifyDevice, hashEvent, sealEvent, unsealed } from '../../shared/event.ts';
import { GENESIS_HASH, PROTOCOL_VERSION, type SealedEvent } from '../../shared/portable/event.ts';
import { toBase64Url } from '../../shared/encoding.ts';
import { deviceIdFromDeviceKey, motebitIdFromIdentityKey } from '../../shared/ids.ts';
import { addEntry, genesisEntry, memberFromDeviceSeed, memberFromSecret, recoveryEntry, removeEntry, rotateEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { membershipAuthority } from '../../shared/membership/event-authority.ts';
import { PAIRING_NONCE_BYTES, commitmentHolds, formatPairingCode, pairingCommitment, parsePairingCode } from '../../shared/membership/pairing-code.ts';
import { MAX_MEMBERS, entryHash, legacySigningInput, signEntry, verifyLegacySignature, type Entry, type UnsignedEntry } from '../../shared/membership/entry.ts';
import { chainKey, kemKeyPairFromSecret, keyIdOf, newContentKey, openChainedKey, unwrapKey, wrapKey } from '../../shared/membership/epoch-keys.ts';
import { MembershipError, applyEntry, checkExtends, currentMembers, epochAt, mayWrite, mayWriteLegacy, verifyLog, type MembershipFault, type MembershipState } from '../../shared/membership/log.ts';
import { openKeys } from '../../shared/membership/open-keys.ts';

const device = (name: string): MemberSecret => memberFromSecret('device', randomBytes(32), name);
const recoveryKey = (): MemberSecret => memberFromSecret('recovery', randomBytes(32), null);
const reader = (m: MemberSecret) => ({ id: m.key.id, kemPrivateKey: m.kem.privateKey });

function fault(run: () => unknown): MembershipFault | 'none' {
  try {
    run();
    return 'none';
  } catch (error) {
    if (error instanceof MembershipError) return error.fault;
    throw error;
  }
}

/** A motebit founded by `laptop` with `recovery`, as a log and the keys the founder holds. */
async function found() {
  const laptop = device('laptop');
  const recovery = recoveryKey();
  const { entry, contentKey } = await genesisEntry(laptop, recovery.key, 1000);
  const log: Entry[] = [entry];
  return { laptop, recovery, log, key: contentKey, state: verifyLog(log) };
}

async function append(log: Entry[], state: MembershipState, entry: Entry): Promise<MembershipState> {
  log.push(entry);
  return applyEntry(state, entry);
}

/** Some event hash (what mayWrite checks only at a removed device's cutoff). */
const H = 'b'.repeat(64);

describe('membership log', () => {
  it('a new motebit: the id commits to the genesis entry, the founder and the recovery key read epoch 1', async () => {
    const { laptop, recovery, log, key, state } = await found();
    expect(state.motebitId).toMatch(/^mb_[A-Za-z0-9_-]{22}$/);
    expect(state.motebitId).not.toBe(motebitIdFromIdentityKey(laptop.signing.publicKey));
    expect(verifyLog(log, state.motebitId).head.hash).toBe(entryHash(log[0]!));
    expect(fault(() => verifyLog(log, 'mb_' + 'A'.repeat(22)))).toBe('motebit');
    expect([...(await openKeys(state, reader(laptop))).entries()]).toEqual([[keyIdOf(key), key]]);
    expect([...(await openKeys(state, reader(recovery))).values()]).toEqual([key]);
    expect((await openKeys(state, reader(device('stranger')))).size).toBe(0);
  });

  it('an added device reads the current epoch and every one before it; its events count from its entry on', async () => {
    const { laptop, log, key: key1 } = await found();
    let state = verifyLog(log);
    const { entry: rotation, contentKey: key2 } = await rotateEntry(state, laptop, key1, 2000);
    state = await append(log, state, rotation);
    const phone = device('phone');
    state = await append(log, state, await addEntry(state, laptop, phone.key, key2, 3000));
    const keys = await openKeys(verifyLog(log), reader(phone));
    expect(keys.get(keyIdOf(key2))).toEqual(key2);
    expect(keys.get(keyIdOf(key1))).toEqual(key1);
    // Entries: 0 genesis, 1 rotate, 2 add phone.
    expect(mayWrite(state, phone.key.id, 1, 1, H).ok).toBe(false); // not a member yet at entry 1
    expect(mayWrite(state, phone.key.id, 1, 2, H)).toEqual({ ok: true });
    expect(mayWrite(state, phone.key.id, 1, 3, H).ok).toBe(false); // beyond the log held
    expect(mayWrite(state, state.recoveryId, 1, 2, H).ok).toBe(false); // the recovery key writes no events
  });

  it('a removed device: no key of the new epoch, no entry accepted from it, events after its cutoff refused, never back', async () => {
    const { laptop, recovery, log, key: key1 } = await found();
    let state = verifyLog(log);
    const phone = device('phone');
    state = await append(log, state, await addEntry(state, laptop, phone.key, key1, 2000));
    const kept = 'c'.repeat(64); // the hash of its event 41, as the remover holds it
    const { entry: removal, contentKey: key2 } = await removeEntry(state, laptop, phone.key.id, 41, key1, 3000, kept);
    state = await append(log, state, removal);

    const phoneKeys = await openKeys(state, reader(phone));
    expect([...phoneKeys.keys()]).toEqual([keyIdOf(key1)]);
    expect(phoneKeys.has(keyIdOf(key2))).toBe(false);
    for (const member of [laptop, recovery]) expect((await openKeys(state, reader(member))).get(keyIdOf(key2))).toEqual(key2);
    expect(currentMembers(state).map((m) => m.key.id).sort()).toEqual([laptop.key.id, recovery.key.id].sort());

    // Its events: up to the cutoff valid (written before it was removed), later ones refused even when
    // they claim an old log position; nothing at or after the removal; at the cutoff, only the event the
    // removal named (another version of it would rewrite its history below the cutoff).
    expect(mayWrite(state, phone.key.id, 41, 1, kept)).toEqual({ ok: true });
    expect(mayWrite(state, phone.key.id, 41, 1, H).ok).toBe(false);
    expect(mayWrite(state, phone.key.id, 40, 1, H)).toEqual({ ok: true });
    expect(mayWrite(state, phone.key.id, 42, 1, H).ok).toBe(false);
    expect(mayWrite(state, phone.key.id, 5, 2, H).ok).toBe(false);
    // A removal that keeps events names the last one's hash, and one that keeps none names none.
    const { entry: noHash } = await removeEntry(state, laptop, laptop.key.id, 3, key2, 4000);
    expect(fault(() => applyEntry(state, noHash))).toBe('not_allowed');

    // It can no longer add, remove or rotate, and cannot be added back.
    const thief = device('thief');
    expect(fault(() => applyEntry(state, signEntry({ ...(addLike(state, phone, thief)) }, phone.signing)))).toBe('not_member');
    expect(fault(() => applyEntry(state, signEntry({ ...(addLike(state, laptop, phone)) }, laptop.signing)))).toBe('not_allowed');
  });

  it('the recovery key: only it names its successor; it removes any device; a device cannot remove it', async () => {
    const { laptop, recovery, log, key } = await found();
    let state = verifyLog(log);
    const thief = device('stolen phone');
    state = await append(log, state, await addEntry(state, laptop, thief.key, key, 2000));
    // The thief tries to take the recovery role, then to remove the recovery key: refused.
    const fake = recoveryKey();
    expect(fault(() => applyEntry(state, signEntryAs(recoveryLike(state, thief, fake), thief)))).toBe('not_allowed');
    const removeRecovery = await removeEntry(state, thief, recovery.key.id, 0, key, 2500);
    expect(fault(() => applyEntry(state, removeRecovery.entry))).toBe('not_allowed');
    // The thief removes the owner's laptop; the recovery key removes the thief.
    const { entry: kick, contentKey: key2 } = await removeEntry(state, thief, laptop.key.id, 10, key, 3000, 'd'.repeat(64));
    state = await append(log, state, kick);
    const { entry: back, contentKey: key3 } = await removeEntry(state, recovery, thief.key.id, 0, key2, 4000);
    state = await append(log, state, back);
    expect(currentMembers(state).map((m) => m.key.id)).toEqual([recovery.key.id]);
    expect((await openKeys(state, reader(thief))).has(keyIdOf(key3))).toBe(false);
    // A new laptop added by the recovery key reads everything.
    const newLaptop = device('new laptop');
    state = await append(log, state, await addEntry(state, recovery, newLaptop.key, key3, 5000));
    expect([...(await openKeys(verifyLog(log), reader(newLaptop))).keys()].sort()).toEqual([key, key2, key3].map(keyIdOf).sort());
    // The recovery key hands on its role; the old one is out.
    const successor = recoveryKey();
    state = await append(log, state, await recoveryEntry(state, recovery, successor.key, key3, 6000));
    expect(state.recoveryId).toBe(successor.key.id);
    // It stays on record as a key that was a member, removed by that entry, its own events none (cutoff 0).
    expect(state.members.get(recovery.key.id)).toMatchObject({ key: recovery.key, removedAt: log.length - 1, cutoff: 0, cutoffHash: null });
    expect(fault(() => applyEntry(state, signEntryAs(addLike(state, recovery, device('x')), recovery)))).toBe('not_member');
    expect((await openKeys(state, reader(successor))).get(keyIdOf(key3))).toEqual(key3);
  });

  it('refuses a fork, a reordered or shortened log, a tampered entry and an entry signed by someone else', async () => {
    const { laptop, log, key } = await found();
    let state = verifyLog(log);
    const phone = device('phone');
    const tablet = device('tablet');
    state = await append(log, state, await addEntry(state, laptop, phone.key, key, 2000));
    state = await append(log, state, await addEntry(state, phone, tablet.key, key, 3000));
    const known = verifyLog(log);

    expect(fault(() => verifyLog([log[0], log[2], log[1]]))).toBe('chain');
    expect(fault(() => verifyLog([log[0], log[2]]))).toBe('chain');
    expect(fault(() => verifyLog([log[0], log[1], log[1]]))).toBe('chain');
    // A fork: another entry at seq 2 (validly signed by a member) — fine alone, refused against the known log.
    const other = await addEntry(applyEntry(verifyLog([log[0]]), log[1]), laptop, device('other').key, key, 3000);
    const forked = verifyLog([log[0], log[1], other]);
    expect(fault(() => checkExtends(known, forked))).toBe('chain');
    expect(fault(() => checkExtends(known, verifyLog(log.slice(0, 2))))).toBe('chain'); // rolled back
    expect(fault(() => checkExtends(known, verifyLog(log)))).toBe('none');
    // Spliced: an entry made on another branch, put where its seq fits but after another entry.
    const branchA = await addEntry(verifyLog([log[0]]), laptop, device('a').key, key, 2000);
    const afterA = await addEntry(applyEntry(verifyLog([log[0]]), branchA), laptop, device('b').key, key, 2100);
    expect(fault(() => verifyLog([log[0], log[1], afterA]))).toBe('chain');
    // Tampered: a changed name, a changed time.
    const renamed = structuredClone(log[2]!) as Extract<Entry, { kind: 'add' }>;
    renamed.member.name = 'evil';
    expect(fault(() => verifyLog([log[0], log[1], renamed]))).toBe('signature');
    expect(fault(() => verifyLog([log[0], log[1], { ...log[2]!, at: 1 }]))).toBe('signature');
    // Signed by the phone but naming the laptop as signer.
    expect(fault(() => applyEntry(state, signEntryAs({ ...addLike(state, phone, device('z')), signer: laptop.key.id }, phone)))).toBe('signature');
    // Malformed.
    expect(fault(() => verifyLog([log[0], { ...log[1]!, kind: 'promote' }]))).toBe('malformed');
    expect(fault(() => verifyLog([{ ...log[0]!, v: 2 }]))).toBe('version');
  });

  it('a forged wrapped key fails the log for the member it is addressed to', async () => {
    const { laptop, log, key } = await found();
    const state = verifyLog(log);
    const phone = device('phone');
    // A member signs an add whose wrap holds another key than the epoch's (or garbage).
    const entry = await addEntry(state, laptop, phone.key, key, 2000);
    const epoch = state.epochs.at(-1)!;
    const wrongKey = await wrapKey(newContentKey(), phone.key.kem_key, { recipientId: phone.key.id, epoch: epoch.n, keyId: epoch.keyId });
    const forged = signEntry({ ...(entry as Extract<Entry, { kind: 'add' }>), wrap: wrongKey }, laptop.signing) as Entry;
    const forgedState = applyEntry(state, forged);
    await expect(openKeys(forgedState, reader(phone))).rejects.toThrow(/does not open/);
    // A wrap made for another member does not open for this one either.
    const forAnother = await wrapKey(key, phone.key.kem_key, { recipientId: laptop.key.id, epoch: epoch.n, keyId: epoch.keyId });
    const moved = applyEntry(state, signEntry({ ...(entry as Extract<Entry, { kind: 'add' }>), wrap: forAnother }, laptop.signing) as Entry);
    await expect(openKeys(moved, reader(phone))).rejects.toThrow(MembershipError);
    // An epoch that chains another key than the current epoch's is refused by everyone.
    const stray = newContentKey();
    const { entry: strayRotation } = await rotateEntry(state, laptop, stray, 3000);
    expect(fault(() => applyEntry(state, strayRotation))).toBe('epoch');
    // An epoch not wrapped for exactly the current members is refused by everyone.
    const { entry: rotation } = await rotateEntry(state, laptop, key, 3000);
    const partial = structuredClone(rotation) as Extract<Entry, { kind: 'rotate' }>;
    delete partial.epoch.wraps[state.recoveryId];
    expect(fault(() => applyEntry(state, signEntry(partial, laptop.signing) as Entry))).toBe('epoch');
  });

  it(`holds at most ${MAX_MEMBERS} members`, async () => {
    const { laptop, log, key } = await found();
    let state = verifyLog(log);
    for (let i = 2; i < MAX_MEMBERS; i++) state = await append(log, state, await addEntry(state, laptop, device(`d${i}`).key, key, 2000 + i));
    expect(currentMembers(state)).toHaveLength(MAX_MEMBERS);
    expect(fault(() => applyEntry(state, signEntryAs(addLike(state, laptop, device('one too many')), laptop)))).toBe('too_many_members');
  });

  it('an upgraded motebit keeps its id (its old identity key signs the genesis) and chains its old key as epoch 0', async () => {
    const identityKey = signingKeyFromSeed(randomBytes(32));
    const oldKey = newContentKey();
    const laptop = device('laptop');
    const recovery = recoveryKey();
    const { entry, contentKey } = await genesisEntry(laptop, recovery.key, 1000, { identityKey, contentKey: oldKey, frontier: {} });
    const state = verifyLog([entry], motebitIdFromIdentityKey(identityKey.publicKey));
    expect([...(await openKeys(state, reader(laptop))).keys()]).toEqual([keyIdOf(contentKey), keyIdOf(oldKey)]);
    // Another identity key cannot vouch for it: the founder re-signs, the old key's signature fails.
    const genesis = entry as Extract<Entry, { kind: 'genesis' }>;
    const { sig: _sig, ...unsigned } = genesis;
    const otherIdentity = signingKeyFromSeed(randomBytes(32));
    const swapped = signEntry({ ...unsigned, legacy: { identity_key: toBase64Url(otherIdentity.publicKey), sig: genesis.legacy!.sig, frontier: {} } }, laptop.signing) as Entry;
    expect(fault(() => verifyLog([swapped]))).toBe('signature');
  });

  it('a genesis of a new motebit carries no signature of an old identity key', async () => {
    const { log } = await found();
    expect(verifyLegacySignature(log[0] as Extract<Entry, { kind: 'genesis' }>)).toBe(false);
  });
});

describe('membership log: a genesis that breaks a rule', () => {
  type Genesis = Extract<Entry, { kind: 'genesis' }>;
  async function genesisAnd(change: (g: Omit<Genesis, 'sig'>) => Omit<Genesis, 'sig'>, signer?: MemberSecret) {
    const laptop = device('laptop');
    const recovery = recoveryKey();
    const { entry } = await genesisEntry(laptop, recovery.key, 1000);
    const { sig: _sig, ...unsigned } = entry as Genesis;
    return { laptop, recovery, entry: signEntry(change(structuredClone(unsigned)), (signer ?? laptop).signing) as Entry };
  }

  it('is refused when anything about its shape, members, signer or first epoch is wrong', async () => {
    const other = device('other');
    const cases: [string, (g: Omit<Genesis, 'sig'>) => Omit<Genesis, 'sig'>, MembershipFault][] = [
      ['not at seq 0', (g) => ({ ...g, seq: 1 }), 'chain'],
      ['with a previous hash', (g) => ({ ...g, prev: 'a'.repeat(64) }), 'chain'],
      ['two devices', (g) => ({ ...g, members: [g.members[0]!, other.key, g.members[1]!] }), 'not_allowed'],
      ['no recovery key', (g) => ({ ...g, members: [g.members[0]!, other.key] }), 'not_allowed'],
      ['a member listed twice', (g) => ({ ...g, members: [g.members[0]!, g.members[0]!, g.members[1]!] }), 'member_key'],
      ['a member whose id is not its key', (g) => ({ ...g, members: [{ ...g.members[0]!, sign_key: other.key.sign_key }, g.members[1]!] }), 'member_key'],
      ['epoch 2 first', (g) => ({ ...g, epoch: { ...g.epoch, n: 2 } }), 'epoch'],
      ['a chained key without its id', (g) => ({ ...g, epoch: { ...g.epoch, prev_key: { nonce: 'A'.repeat(16), ct: 'A'.repeat(64) } } }), 'epoch'],
      ['a previous key in a new motebit', (g) => ({ ...g, epoch: { ...g.epoch, prev_key: { nonce: 'A'.repeat(16), ct: 'A'.repeat(64) }, prev_key_id: 'ek_AAAAAAAAAAAAAAAA' } }), 'epoch'],
      ['not wrapped for the recovery key', (g) => ({ ...g, epoch: { ...g.epoch, wraps: { [g.members[0]!.id]: g.epoch.wraps[g.members[0]!.id]! } } }), 'epoch'],
      ['a legacy genesis that chains no old key', (g) => ({ ...g, legacy: { identity_key: g.members[0]!.sign_key, sig: 'A'.repeat(86), frontier: {} } }), 'signature'],
    ];
    for (const [what, change, expected] of cases) {
      const { entry } = await genesisAnd(change);
      expect(fault(() => verifyLog([entry])), what).toBe(expected);
    }
    const { entry: byRecovery, recovery } = await genesisAnd((g) => ({ ...g, signer: g.members[1]!.id }));
    expect(fault(() => verifyLog([byRecovery]))).toBe('not_allowed');
    expect(recovery.key.id).toMatch(/^rk_/);
    const { entry: notSigned } = await genesisAnd((g) => g, other);
    expect(fault(() => verifyLog([notSigned]))).toBe('signature');
    expect(fault(() => verifyLog([]))).toBe('chain');
  });

  it('later entries: a removal of a non-member, an epoch reusing a key, a served log of another motebit', async () => {
    const { laptop, log, key, state } = await found();
    const stranger = device('stranger');
    const { entry: removeStranger } = await removeEntry(state, laptop, stranger.key.id, 0, key, 2000);
    expect(fault(() => applyEntry(state, removeStranger))).toBe('not_allowed');
    const { entry: rotation } = await rotateEntry(state, laptop, key, 2000);
    const reused = structuredClone(rotation) as Extract<Entry, { kind: 'rotate' }>;
    reused.epoch.key_id = keyIdOf(key);
    expect(fault(() => applyEntry(state, signEntry(reused, laptop.signing) as Entry))).toBe('epoch');
    const numbered = structuredClone(rotation) as Extract<Entry, { kind: 'rotate' }>;
    numbered.epoch.n = 3;
    expect(fault(() => applyEntry(state, signEntry(numbered, laptop.signing) as Entry))).toBe('epoch');
    const elsewhere = await found();
    expect(fault(() => checkExtends(state, elsewhere.state))).toBe('motebit');
    expect(fault(() => applyEntry(state, { ...rotation, motebit_id: elsewhere.state.motebitId }))).toBe('motebit');
    expect(fault(() => applyEntry(state, log[0]))).toBe('chain'); // a second genesis
  });

  it('epochAt names the epoch in force at each position', async () => {
    const { laptop, log, key } = await found();
    let state = verifyLog(log);
    const phone = device('phone');
    state = await append(log, state, await addEntry(state, laptop, phone.key, key, 2000)); // 1
    const r = await rotateEntry(state, laptop, key, 3000); // 2
    state = await append(log, state, r.entry);
    state = await append(log, state, await addEntry(state, laptop, device('tablet').key, r.contentKey, 4000)); // 3
    const rm = await removeEntry(state, laptop, phone.key.id, 0, r.contentKey, 5000); // 4
    state = await append(log, state, rm.entry);
    expect([0, 1, 2, 3, 4].map((position) => epochAt(state, position).n)).toEqual([1, 1, 2, 2, 3]);
    expect(epochAt(state, 4).keyId).toBe(keyIdOf(rm.contentKey));
  });
});

/** An unsigned add entry of `member` by `signer` after `state` (with a dummy wrap: these are refused before keys matter). */
function addLike(state: MembershipState, signer: MemberSecret, member: MemberSecret) {
  return { v: 1 as const, seq: state.head.seq + 1, prev: state.head.hash, signer: signer.key.id, at: 9, motebit_id: state.motebitId, kind: 'add' as const, member: member.key, wrap: { enc: 'A'.repeat(43), ct: 'A'.repeat(64) } };
}

function recoveryLike(state: MembershipState, signer: MemberSecret, successor: MemberSecret) {
  return { ...addLike(state, signer, successor), kind: 'recovery' as const };
}

function signEntryAs(entry: ReturnType<typeof addLike> | ReturnType<typeof recoveryLike>, signer: MemberSecret): Entry {
  return signEntry(entry, signer.signing) as Entry;
}

/** What a refused log or entry says: which entry, the kind of fault, and the words. */
function refusal(run: () => unknown): { fault: MembershipFault; seq: number; message: string } | 'none' {
  try {
    run();
    return 'none';
  } catch (error) {
    if (error instanceof MembershipError) return { fault: error.fault, seq: error.seq, message: error.message };
    throw error;
  }
}

/** `entry` changed by `change` and signed again by `by`: a well-signed entry that breaks one rule. */
function resigned(entry: Entry, change: (unsigned: Record<string, unknown>) => Record<string, unknown>, by: MemberSecret): Entry {
  const { sig: _sig, ...unsigned } = structuredClone(entry) as Entry;
  return signEntry(change(unsigned) as unknown as UnsignedEntry, by.signing) as Entry;
}

describe('membership log: each rule on its own, naming the entry that breaks it, in words', () => {
  it('genesis: the first entry, the founder and one recovery key, a legacy first epoch', async () => {
    const { laptop, recovery, log, key, state } = await found();
    const add = await addEntry(state, laptop, device('phone').key, key, 2000);
    expect(refusal(() => verifyLog([add]))).toEqual({ fault: 'chain', seq: 0, message: 'membership entry 0: a log starts with a genesis entry at seq 0 with no previous hash' });
    const second = recoveryKey();
    const twoRecoveries = resigned(log[0]!, (g) => ({ ...g, members: [...(g.members as unknown[]), second.key] }), laptop);
    expect(refusal(() => verifyLog([twoRecoveries]))).toEqual({ fault: 'not_allowed', seq: 0, message: 'membership entry 0: a genesis names one founding device and one recovery key' });
    const unpaired = resigned(log[0]!, (g) => ({ ...g, epoch: { ...(g.epoch as object), prev_key: { nonce: 'A'.repeat(16), ct: 'A'.repeat(64) } } }), laptop);
    expect(refusal(() => verifyLog([unpaired]))).toEqual({ fault: 'epoch', seq: 0, message: 'membership entry 0: a chained key and its key id come together' });
    expect(refusal(() => verifyLog([{ ...log[0]!, v: 2 }]))).toEqual({ fault: 'version', seq: 0, message: 'membership entry 0: version 2 is not one this device reads: update this app' });
    expect(refusal(() => verifyLog([{ ...log[0]!, at: -1 }]))).toMatchObject({ fault: 'malformed', seq: 0, message: expect.stringMatching(/^membership entry 0: not a valid entry \(.+\)$/) });
    // An upgrade whose first epoch chains no old key, signed properly by both the founder and the old identity key.
    const identityKey = signingKeyFromSeed(randomBytes(32));
    const { entry: upgrade } = await genesisEntry(laptop, recovery.key, 1000, { identityKey, contentKey: newContentKey(), frontier: {} });
    const { sig: _sig, ...unsigned } = structuredClone(upgrade) as Extract<Entry, { kind: 'genesis' }>;
    const unchained = { ...unsigned, epoch: { ...unsigned.epoch, prev_key: null, prev_key_id: null } };
    const legacySig = toBase64Url(identityKey.sign(legacySigningInput(unchained as Entry)));
    const noOldKey = signEntry({ ...unchained, legacy: { ...unchained.legacy!, sig: legacySig } }, laptop.signing) as Entry;
    expect(refusal(() => verifyLog([noOldKey]))).toEqual({ fault: 'epoch', seq: 0, message: "membership entry 0: an upgraded motebit's first epoch chains its old key" });
  });

  it('later entries: numbering, kinds of member, removals, recovery hand-overs', async () => {
    const { laptop, recovery, log, key } = await found();
    let state = verifyLog(log);
    const phone = device('phone');
    state = await append(log, state, await addEntry(state, laptop, phone.key, key, 2000)); // 1
    const removal = await removeEntry(state, laptop, phone.key.id, 5, key, 3000, H); // 2
    state = await append(log, state, removal.entry);
    const key2 = removal.contentKey;
    const next = await addEntry(state, laptop, device('tablet').key, key2, 4000); // would be 3
    const at3 = (message: string, fault: MembershipFault = 'not_allowed') => ({ fault, seq: 3, message: `membership entry 3: ${message}` });

    expect(refusal(() => applyEntry(state, resigned(log[0]!, (g) => ({ ...g, seq: 3, prev: state.head.hash }), laptop)))).toEqual(at3('a second genesis', 'chain'));
    expect(refusal(() => applyEntry(state, resigned(next, (e) => ({ ...e, seq: 4 }), laptop)))).toEqual(at3('entry numbered 4 where 3 comes next', 'chain'));
    const stranger = device('stranger');
    expect(refusal(() => applyEntry(state, resigned(next, (e) => ({ ...e, signer: stranger.key.id }), stranger)))).toEqual(at3(`its signer ${stranger.key.id} is not a member`, 'not_member'));
    expect(refusal(() => applyEntry(state, resigned(next, (e) => e, stranger)))).toEqual(at3(`${laptop.key.id} did not sign it`, 'signature'));
    expect(refusal(() => applyEntry(state, resigned(next, (e) => ({ ...e, member: { ...(e.member as object), id: stranger.key.id } }), laptop)))).toEqual(at3(`member ${stranger.key.id} does not match its signing key`, 'member_key'));

    const newRecovery = recoveryKey();
    expect(refusal(() => applyEntry(state, addedAs(state, laptop, newRecovery)))).toEqual(at3('only devices are added; a recovery key is replaced by the one before it'));
    expect(refusal(() => applyEntry(state, addedAs(state, laptop, phone)))).toEqual(at3(`${phone.key.id} has been a member before and cannot come back`));
    expect(refusal(() => applyEntry(state, resigned(next, (e) => ({ ...e, legacy_seq: 7 }), laptop)))).toEqual(at3('only an upgraded motebit has devices with events from before its log'));

    const again = await removeEntry(state, laptop, phone.key.id, 0, key2, 5000);
    expect(refusal(() => applyEntry(state, again.entry))).toEqual(at3(`${phone.key.id} is not a member`));
    const ofRecovery = await removeEntry(state, laptop, state.recoveryId, 0, key2, 5000);
    expect(refusal(() => applyEntry(state, ofRecovery.entry))).toEqual(at3('the recovery key is never removed, only replaced by itself'));
    const tablet = device('tablet2');
    state = await append(log, state, await addEntry(state, laptop, tablet.key, key2, 4000)); // 3
    const at4 = (message: string) => ({ fault: 'not_allowed', seq: 4, message: `membership entry 4: ${message}` });
    const cutoffWithoutHash = await removeEntry(state, laptop, tablet.key.id, 3, key2, 5000, null);
    expect(refusal(() => applyEntry(state, cutoffWithoutHash.entry))).toEqual(at4('a removal names the hash of the last event it keeps valid (and none when it keeps none)'));
    const hashWithoutCutoff = await removeEntry(state, laptop, tablet.key.id, 0, key2, 5000, H);
    expect(refusal(() => applyEntry(state, hashWithoutCutoff.entry))).toEqual(at4('a removal names the hash of the last event it keeps valid (and none when it keeps none)'));

    expect(refusal(() => applyEntry(state, recoveredAs(state, laptop, newRecovery)))).toEqual(at4('only the current recovery key names a new one'));
    expect(refusal(() => applyEntry(state, recoveredAs(state, recovery, device('not a recovery key'))))).toEqual(at4('a recovery entry names a recovery key'));
    state = await append(log, state, await recoveryEntry(state, recovery, newRecovery.key, key2, 6000)); // 4
    const back = recoveredAs(state, newRecovery, recovery);
    expect(refusal(() => applyEntry(state, back))).toEqual({ fault: 'not_allowed', seq: 5, message: `membership entry 5: ${recovery.key.id} has been a member before and cannot come back` });
  });

  it('a served log that is shorter than the one held is named as withheld or rolled back, at the first entry missing', async () => {
    const { laptop, log, key } = await found();
    let state = verifyLog(log);
    state = await append(log, state, await addEntry(state, laptop, device('phone').key, key, 2000));
    state = await append(log, state, await addEntry(state, laptop, device('tablet').key, key, 3000));
    expect(refusal(() => checkExtends(state, verifyLog(log.slice(0, 2))))).toEqual({ fault: 'chain', seq: 2, message: 'membership entry 2: the log served ends at entry 1; this device already holds 2 (entries withheld or rolled back)' });
  });

  it('mayWrite: each refusal in words, and the event at a removed device\'s cutoff admitted only in the version its removal kept', async () => {
    const { laptop, log, key } = await found();
    let state = verifyLog(log);
    const phone = device('phone');
    state = await append(log, state, await addEntry(state, laptop, phone.key, key, 2000)); // 1
    state = await append(log, state, (await removeEntry(state, laptop, phone.key.id, 5, key, 3000, H)).entry); // 2
    const id = phone.key.id;
    expect(mayWrite(state, id, 5, 1, H)).toEqual({ ok: true });
    expect(mayWrite(state, id, 4, 1, 'c'.repeat(64))).toEqual({ ok: true }); // below the cutoff the chain pins it
    expect(mayWrite(state, id, 5, 1, 'c'.repeat(64))).toEqual({ ok: false, reason: `${id} was removed; this is not the event number 5 its removal kept (another version)` });
    expect(mayWrite(state, id, 6, 1, H)).toEqual({ ok: false, reason: `${id} was removed; its events after number 5 are refused` });
    expect(mayWrite(state, id, 1, 2, H)).toEqual({ ok: false, reason: `${id} had been removed at entry 2` });
    expect(mayWrite(state, id, 1, 0, H)).toEqual({ ok: false, reason: `${id} was not a member yet at entry 0` });
    expect(mayWrite(state, id, 1, 3, H)).toEqual({ ok: false, reason: 'it names membership entry 3, beyond the log this device holds (2)' });
    expect(mayWrite(state, state.recoveryId, 1, 1, H)).toEqual({ ok: false, reason: `${state.recoveryId} is not a device of this motebit` });
    expect(mayWrite(state, laptop.key.id, 1, 2, H)).toEqual({ ok: true });
  });
});

describe('membership log: the words of every refusal', () => {
  it('epochs: numbering, chaining, keys used before (an older epoch\'s, or the old key of an upgrade), wraps for exactly the members', async () => {
    const { laptop, recovery, log, key: key1 } = await found();
    let state = verifyLog(log);
    const r2 = await rotateEntry(state, laptop, key1, 2000); // 1
    state = await append(log, state, r2.entry);
    const r3 = await rotateEntry(state, laptop, r2.contentKey, 3000);
    const at2 = (message: string) => ({ fault: 'epoch', seq: 2, message: `membership entry 2: ${message}` });
    expect(refusal(() => applyEntry(state, resigned(r3.entry, (e) => ({ ...e, epoch: { ...(e.epoch as object), n: 4 } }), laptop)))).toEqual(at2('epoch 4 should be 3'));
    const stray = await rotateEntry(state, laptop, key1, 3000); // chains epoch 1's key, not epoch 2's
    expect(refusal(() => applyEntry(state, stray.entry))).toEqual(at2('epoch 3 must chain the key of epoch 2'));
    const epoch1Id = keyIdOf(key1);
    expect(refusal(() => applyEntry(state, resigned(r3.entry, (e) => ({ ...e, epoch: { ...(e.epoch as object), key_id: epoch1Id } }), laptop)))).toEqual(at2(`key ${epoch1Id} was used before`));
    // The stranger sorts on the same side of laptop as the recovery key does, so laptop's wrap stands at the same
    // place in both sorted lists: one wrong member among right ones is refused, not only a list wrong throughout.
    let stranger = device('stranger');
    while (stranger.key.id < laptop.key.id !== recovery.key.id < laptop.key.id) stranger = device('stranger');
    const wraps = (r3.entry as Extract<Entry, { kind: 'rotate' }>).epoch.wraps;
    const forStranger = { [laptop.key.id]: wraps[laptop.key.id]!, [stranger.key.id]: wraps[recovery.key.id]! };
    expect(refusal(() => applyEntry(state, resigned(r3.entry, (e) => ({ ...e, epoch: { ...(e.epoch as object), wraps: forStranger } }), laptop)))).toEqual(at2('epoch 3 must be wrapped for exactly the current members (2), not 2'));
    expect(refusal(() => applyEntry(state, resigned(r3.entry, (e) => ({ ...e, epoch: { ...(e.epoch as object), wraps: { [laptop.key.id]: wraps[laptop.key.id]! } } }), laptop)))).toEqual(at2('epoch 3 must be wrapped for exactly the current members (2), not 1'));
    // A genesis: epoch 1 first; a new motebit chains nothing; an upgrade does not reuse its old key as the new one.
    const g = log[0]!;
    expect(refusal(() => verifyLog([resigned(g, (e) => ({ ...e, epoch: { ...(e.epoch as object), n: 2 } }), laptop)]))).toEqual({ fault: 'epoch', seq: 0, message: 'membership entry 0: epoch 2 should be 1' });
    const chained = resigned(g, (e) => ({ ...e, epoch: { ...(e.epoch as object), prev_key: { nonce: 'A'.repeat(16), ct: 'A'.repeat(64) }, prev_key_id: 'ek_AAAAAAAAAAAAAAAA' } }), laptop);
    expect(refusal(() => verifyLog([chained]))).toEqual({ fault: 'epoch', seq: 0, message: 'membership entry 0: the first epoch of a new motebit has no previous key' });
    const identityKey = signingKeyFromSeed(randomBytes(32));
    const oldKey = newContentKey();
    const { entry: upgrade } = await genesisEntry(laptop, recovery.key, 1000, { identityKey, contentKey: oldKey, frontier: {} });
    const { sig: _sig, ...unsigned } = structuredClone(upgrade) as Extract<Entry, { kind: 'genesis' }>;
    const reused = { ...unsigned, epoch: { ...unsigned.epoch, key_id: keyIdOf(oldKey) } };
    const legacySig = toBase64Url(identityKey.sign(legacySigningInput(reused as Entry)));
    const reusedOld = signEntry({ ...reused, legacy: { ...reused.legacy!, sig: legacySig } }, laptop.signing) as Entry;
    expect(refusal(() => verifyLog([reusedOld]))).toEqual({ fault: 'epoch', seq: 0, message: `membership entry 0: key ${keyIdOf(oldKey)} was used before` });
  });

  it('genesis, members, motebits, logs: each refusal in its words', async () => {
    const { laptop, recovery, log, key, state } = await found();
    const g = log[0]! as Extract<Entry, { kind: 'genesis' }>;
    const at0 = (fault: MembershipFault, message: string) => ({ fault, seq: 0, message: `membership entry 0: ${message}` });
    expect(refusal(() => verifyLog([resigned(g, (e) => ({ ...e, members: [g.members[0]!, g.members[0]!, g.members[1]!] }), laptop)]))).toEqual(at0('member_key', 'a member is listed twice'));
    expect(refusal(() => verifyLog([resigned(g, (e) => ({ ...e, signer: recovery.key.id }), recovery)]))).toEqual(at0('not_allowed', 'a genesis is signed by its founding device'));
    expect(refusal(() => verifyLog([resigned(g, (e) => e, device('other'))]))).toEqual(at0('signature', 'the founding device did not sign this genesis'));
    const add = await addEntry(state, laptop, device('phone').key, key, 2000);
    expect(refusal(() => verifyLog([resigned(add, (e) => ({ ...e, seq: 0, prev: null }), laptop)]))).toEqual(at0('chain', 'a log starts with a genesis entry at seq 0 with no previous hash'));
    for (const raw of [null, undefined, 'an entry', 7]) expect(refusal(() => verifyLog([raw]))).toMatchObject({ fault: 'malformed', seq: 0 });
    expect(refusal(() => applyEntry(state, null))).toMatchObject({ fault: 'malformed', seq: 1 });
    expect(refusal(() => verifyLog([]))).toEqual(at0('chain', 'the log is empty'));
    const elsewhere = await found();
    expect(refusal(() => verifyLog(log, elsewhere.state.motebitId))).toEqual(at0('motebit', `this log belongs to motebit ${state.motebitId}, not ${elsewhere.state.motebitId}`));
    expect(refusal(() => checkExtends(state, elsewhere.state))).toEqual(at0('motebit', `the log served belongs to motebit ${elsewhere.state.motebitId}`));
    expect(refusal(() => applyEntry(state, resigned(add, (e) => ({ ...e, motebit_id: elsewhere.state.motebitId }), laptop)))).toEqual({ fault: 'motebit', seq: 1, message: `membership entry 1: it belongs to motebit ${elsewhere.state.motebitId}` });
    const known = applyEntry(state, add);
    const forked = applyEntry(state, await addEntry(state, laptop, device('another').key, key, 2000));
    expect(refusal(() => checkExtends(known, forked))).toEqual({ fault: 'chain', seq: 1, message: 'membership entry 1: the log served differs from the one this device holds (a fork)' });
    const error = new MembershipError(3, 'chain', 'x');
    expect([error.name, error.message, error.seq, error.fault]).toEqual(['MembershipError', 'membership entry 3: x', 3, 'chain']);
    // A recovery hand-over whose new key is not the key its id names.
    const next = recoveryKey();
    const other = recoveryKey();
    const handover = await recoveryEntry(state, recovery, next.key, key, 3000);
    expect(refusal(() => applyEntry(state, resigned(handover, (e) => ({ ...e, member: { ...next.key, sign_key: other.key.sign_key } }), recovery)))).toEqual({ fault: 'member_key', seq: 1, message: `membership entry 1: member ${next.key.id} does not match its signing key` });
  });

  it(`the member limit, in words`, async () => {
    const { laptop, log, key } = await found();
    let state = verifyLog(log);
    for (let i = 2; i < MAX_MEMBERS; i++) state = await append(log, state, await addEntry(state, laptop, device(`d${i}`).key, key, 2000 + i));
    expect(refusal(() => applyEntry(state, addedAs(state, laptop, device('one too many'))))).toEqual({ fault: 'too_many_members', seq: MAX_MEMBERS - 1, message: `membership entry ${MAX_MEMBERS - 1}: a motebit has at most ${MAX_MEMBERS} members` });
  });
});

/** An add entry of `member` by `signer` after `state`, well signed, whatever the member's role. */
function addedAs(state: MembershipState, signer: MemberSecret, member: MemberSecret): Entry {
  return signEntryAs(addLike(state, signer, member), signer);
}

/** A recovery entry naming `successor`, signed by `signer`. */
function recoveredAs(state: MembershipState, signer: MemberSecret, successor: MemberSecret): Entry {
  return signEntryAs(recoveryLike(state, signer, successor), signer);
}

/** Event `seq` of `member`, naming log position `m` (none: a protocol-2 event), sealed with `key` (default its own signing key). */
function eventOf(member: MemberSecret, motebitId: string, m: number | undefined, options: { key?: SigningKey; cert?: string | null } = {}): SealedEvent {
  const event: SealedEvent = { v: PROTOCOL_VERSION, motebit_id: motebitId, device_id: member.key.id, event_id: randomUUID(), device_seq: 1, prev: GENESIS_HASH, clock: { l: 1, v: { [member.key.id]: 1 } }, entity: 'note/1', op: 'set', payload: 'x', ts: 1, ...(m === undefined ? {} : { m }) };
  return sealEvent(event, { deviceKey: options.key ?? member.signing, cert: options.cert ?? null });
}

describe('membership: who may write events, the keys of members, pairing codes', () => {
  it("the event authority admits a member's events sealed by its own key, and names what is wrong with any other", async () => {
    const { laptop, recovery, log, key } = await found();
    let state = verifyLog(log);
    const phone = device('phone');
    state = await append(log, state, await addEntry(state, laptop, phone.key, key, 2000)); // 1
    const authority = membershipAuthority(state);
    const good = eventOf(phone, state.motebitId, 1);
    expect([authority.admit(good, hashEvent(good)), authority.seal(good, hashEvent(good))]).toEqual([null, null]);
    expect(authority.admit(eventOf(phone, state.motebitId, 0), H)).toBe(`${phone.key.id} was not a member yet at entry 0`);
    expect(authority.admit(eventOf(phone, state.motebitId, undefined), H)).toBe('it names no membership log position (an event from before this motebit had a membership log, or a forgery)');
    const check = (event: SealedEvent) => authority.seal(event, hashEvent(event));
    expect(check(unsealed(good) as SealedEvent)).toBe('bad_signature');
    expect(check(eventOf(phone, state.motebitId, 1, { key: laptop.signing }))).toBe('device_key_mismatch'); // another member's key
    expect(check(eventOf(device('stranger'), state.motebitId, 1))).toBe('device_key_mismatch'); // no member at all
    expect(check(eventOf(recovery, state.motebitId, 1))).toBe('device_key_mismatch'); // the recovery key writes no events
    expect(check(eventOf(phone, state.motebitId, 1, { cert: 'A'.repeat(86) }))).toBe('bad_device_cert'); // members carry no certificate
    expect(check({ ...good, payload: 'changed' })).toBe('bad_signature');
    expect(check(eventOf(phone, state.motebitId, undefined))).toBe('bad_device_cert'); // a protocol-2 event in a motebit that never had protocol 2
  });

  it('an upgraded motebit: each old device writes with the old identity key up to its cutoff (the genesis frontier, or a later upgrade of it), never after', async () => {
    const identityKey = signingKeyFromSeed(randomBytes(32));
    const laptop = device('laptop');
    const recovery = recoveryKey();
    const oldPhone = device('old phone');
    const oldTablet = device('old tablet');
    const { entry, contentKey } = await genesisEntry(laptop, recovery.key, 1000, { identityKey, contentKey: newContentKey(), frontier: { [oldPhone.key.id]: 5 } });
    let state = verifyLog([entry]);
    expect(mayWriteLegacy(state, oldPhone.key.id, 5)).toEqual({ ok: true });
    expect(mayWriteLegacy(state, oldPhone.key.id, 6)).toEqual({ ok: false, reason: `it was written with the old shared key after this motebit's upgrade (${oldPhone.key.id} had 5 events from before it)` });
    expect(mayWriteLegacy(state, oldTablet.key.id, 1)).toEqual({ ok: false, reason: `it was written with the old shared key after this motebit's upgrade (${oldTablet.key.id} had 0 events from before it)` });
    // The old tablet upgrades later: its events from before are valid up to what its own add entry says.
    state = applyEntry(state, await addEntry(state, laptop, oldTablet.key, contentKey, 2000, 3));
    expect([3, 4].map((seq) => mayWriteLegacy(state, oldTablet.key.id, seq).ok)).toEqual([true, false]);
    // A protocol-2 event is sealed as protocol 2 sealed it: certified by the old identity key.
    const cert = certifyDevice(identityKey, state.motebitId, oldPhone.signing.publicKey);
    const old = eventOf(oldPhone, state.motebitId, undefined, { cert });
    const authority = membershipAuthority(state);
    expect([authority.admit(old, hashEvent(old)), authority.seal(old, hashEvent(old))]).toEqual([null, null]);
    const otherIdentity = signingKeyFromSeed(randomBytes(32));
    const forged = eventOf(oldPhone, state.motebitId, undefined, { cert: certifyDevice(otherIdentity, state.motebitId, oldPhone.signing.publicKey) });
    expect(authority.seal(forged, hashEvent(forged))).toBe('bad_device_cert');
    // The founder's and the old identity key's signatures cover the frontier and the identity key: neither can be changed.
    const { sig: _sig, ...unsigned } = structuredClone(entry) as Extract<Entry, { kind: 'genesis' }>;
    const widened = signEntry({ ...unsigned, legacy: { ...unsigned.legacy!, frontier: { [oldPhone.key.id]: 500 } } }, laptop.signing) as Entry;
    expect(refusal(() => verifyLog([widened]))).toEqual({ fault: 'signature', seq: 0, message: "membership entry 0: the motebit's old identity key did not sign this genesis" });
    const overNothing = signEntry({ ...unsigned, legacy: { ...unsigned.legacy!, sig: toBase64Url(identityKey.sign(Buffer.alloc(0))) } }, laptop.signing) as Entry;
    expect(refusal(() => verifyLog([overNothing]))).toMatchObject({ fault: 'signature' });
  });

  it('member keys come from 32-byte secrets; an upgraded device keeps its device id', () => {
    for (const bytes of [31, 33]) {
      expect(() => memberFromSecret('device', randomBytes(bytes), null)).toThrow(new RangeError('a root secret is 32 bytes'));
      expect(() => memberFromDeviceSeed(randomBytes(bytes), null)).toThrow(new RangeError('a device seed is 32 bytes'));
      expect(() => kemKeyPairFromSecret(randomBytes(bytes), 'salt')).toThrow(new RangeError('a root secret is 32 bytes'));
    }
    const seed = randomBytes(32);
    const upgraded = memberFromDeviceSeed(seed, 'old laptop');
    const deviceKey = signingKeyFromSeed(seed);
    expect(upgraded.key).toMatchObject({ id: deviceIdFromDeviceKey(deviceKey.publicKey), role: 'device', sign_key: toBase64Url(deviceKey.publicKey), name: 'old laptop' });
    expect(upgraded.key.kem_key).toBe(toBase64Url(upgraded.kem.publicKey));
  });

  it("content keys: ids are the documented hash; a chained key opens only in its own place and only to the key it names; a member's keys fail loudly", async () => {
    const key = Buffer.alloc(32, 7);
    const reference = 'ek_' + createHash('sha256').update(Buffer.concat([Buffer.from('motebit/key-id/v1\0'), key])).digest().subarray(0, 12).toString('base64url');
    expect(keyIdOf(key)).toBe(reference);
    const prev = newContentKey();
    const chained = chainKey(key, 2, prev);
    expect(openChainedKey(key, 2, chained, keyIdOf(prev))).toEqual(prev);
    expect(openChainedKey(key, 3, chained, keyIdOf(prev))).toBeNull(); // moved to another epoch
    // Sealed in the documented place but holding another key than the one it names.
    const other = newContentKey();
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(`motebit/epoch-chain/v1\n2\n${keyIdOf(key)}\n${keyIdOf(prev)}`));
    const lying = { nonce: nonce.toString('base64url'), ct: Buffer.concat([cipher.update(other), cipher.final(), cipher.getAuthTag()]).toString('base64url') };
    expect(openChainedKey(key, 2, lying, keyIdOf(other))).toBeNull();
    expect(openChainedKey(key, 2, lying, keyIdOf(prev))).toBeNull();

    // A member who rotates with a chained key that opens to nothing: the log holds, but nobody reads the old epoch, and says so.
    const { laptop, log, key: key1 } = await found();
    let state = verifyLog(log);
    const { entry: rotation } = await rotateEntry(state, laptop, key1, 2000);
    const garbage = resigned(rotation, (e) => ({ ...e, epoch: { ...(e.epoch as object), prev_key: { nonce: 'A'.repeat(16), ct: 'A'.repeat(64) } } }), laptop);
    state = applyEntry(state, garbage);
    await expect(openKeys(state, reader(laptop))).rejects.toThrow(new MembershipError(1, 'epoch', 'the key of epoch 2 does not open the key of epoch 1'));
    // A wrap that opens, but to another key than the epoch names.
    const phone = device('phone');
    const base = verifyLog(log);
    const epoch = base.epochs.at(-1)!;
    const add = await addEntry(base, laptop, phone.key, key1, 2000);
    const wrongKey = await wrapKey(newContentKey(), phone.key.kem_key, { recipientId: phone.key.id, epoch: epoch.n, keyId: epoch.keyId });
    const forged = applyEntry(base, resigned(add, (e) => ({ ...e, wrap: wrongKey }), laptop));
    await expect(openKeys(forged, reader(phone))).rejects.toThrow(new MembershipError(1, 'epoch', `the key of epoch 1 wrapped for ${phone.key.id} does not open to the key the log names`));
  });

  it('a chained key opens only with a whole 16-byte tag: one cut short (a forger need only guess 4 bytes) is refused', () => {
    const key = newContentKey();
    const short = Buffer.from('8 bytes!'); // with a 4-byte tag, 12 bytes: openChainedKey reads its last 4 as the tag
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(`motebit/epoch-chain/v1\n2\n${keyIdOf(key)}\n${keyIdOf(short)}`));
    const ct = Buffer.concat([cipher.update(short), cipher.final(), cipher.getAuthTag().subarray(0, 4)]);
    expect(openChainedKey(key, 2, { nonce: nonce.toString('base64url'), ct: ct.toString('base64url') }, keyIdOf(short))).toBeNull();
  });

  it('a wrapped key opens only with its recipient\'s key, in its own place, to a 32-byte key it names; anything else is null', async () => {
    const phone = device('phone');
    const key = newContentKey();
    const context = { recipientId: phone.key.id, epoch: 1, keyId: keyIdOf(key) };
    const wrap = await wrapKey(key, phone.key.kem_key, context);
    expect(await unwrapKey(wrap, phone.kem.privateKey, context)).toEqual(key);
    expect(await unwrapKey(wrap, device('laptop').kem.privateKey, context)).toBeNull(); // another member's key
    expect(await unwrapKey(wrap, phone.kem.privateKey, { ...context, epoch: 2 })).toBeNull(); // moved to another epoch
    const half = key.subarray(0, 16); // not a content key, though it is the key the context names
    const halfContext = { ...context, keyId: keyIdOf(half) };
    expect(await unwrapKey(await wrapKey(half, phone.key.kem_key, halfContext), phone.kem.privateKey, halfContext)).toBeNull();
  });

  it('pairing codes: parts of the right size, a nonce of the right size, old codes named as old', () => {
    const key = device('phone').key;
    const code = { rendezvousId: randomBytes(6), commitment: randomBytes(10) };
    expect(parsePairingCode(formatPairingCode(code))).toEqual(code);
    for (const bad of [{ ...code, rendezvousId: randomBytes(5) }, { ...code, commitment: randomBytes(11) }]) {
      expect(() => formatPairingCode(bad)).toThrow(new RangeError('a pairing code holds a 6-byte rendezvous id and a 10-byte commitment'));
    }
    const shortNonce = randomBytes(8);
    expect(commitmentHolds({ ...code, commitment: pairingCommitment(key, shortNonce) }, key, shortNonce)).toBe(false);
    const nonce = randomBytes(PAIRING_NONCE_BYTES);
    expect(commitmentHolds({ ...code, commitment: pairingCommitment(key, nonce) }, key, nonce)).toBe(true);
    expect(() => parsePairingCode('  motebit-pair:abc')).toThrow(/this is an old pairing code/);
    expect(() => parsePairingCode('not motebit-pair:abc')).not.toThrow(/this is an old pairing code/);
  });
});
