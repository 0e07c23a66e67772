// The membership log (shared/membership), case by case: who may add, remove, rotate and hand on the
// recovery role; what a removed device can still read and write; and logs a relay might serve instead
// (forked, reordered, re-signed, with a forged wrapped key), each refused with the fault it has.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signingKeyFromSeed } from '../../shared/crypto.ts';
import { toBase64Url } from '../../shared/encoding.ts';
import { motebitIdFromIdentityKey } from '../../shared/ids.ts';
import { addEntry, genesisEntry, memberFromSecret, recoveryEntry, removeEntry, rotateEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { MAX_MEMBERS, entryHash, signEntry, type Entry } from '../../shared/membership/entry.ts';
import { keyIdOf, newContentKey, wrapKey } from '../../shared/membership/epoch-keys.ts';
import { MembershipError, applyEntry, checkExtends, currentMembers, epochAt, mayWrite, verifyLog, type MembershipFault, type MembershipState } from '../../shared/membership/log.ts';
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
    expect(fault(() => verifyLog([{ ...log[0]!, v: 2 }]))).toBe('malformed');
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
