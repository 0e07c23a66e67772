// Writing membership entries (docs/keys.md): what a member signs to found a motebit, add or remove a
// device, start a new epoch or hand the recovery role on. Each function returns the signed entry that
// log.ts accepts after the state it was given, and the new content key when it starts an epoch.
import { hkdfSync } from 'node:crypto';
import { signingKeyFromSeed, type SigningKey } from '../crypto.ts';
import { toBase64Url } from '../encoding.ts';
import { memberIdOf, signEntry, legacySigningInput, type Entry, type Epoch, type MemberKey, type MemberRole, type UnsignedEntry } from './entry.ts';
import { chainKey, keyIdOf, kemKeyPairFromSecret, newContentKey, wrapKey, type KemKeyPair } from './epoch-keys.ts';
import { currentMembers, type MembershipState } from './log.ts';

const SALT = 'motebit-sync/member-keys/v1';
const SIGN_SEED_INFO = 'motebit/sign-key/v1';

/** A member's own keys, all derived from its 32-byte root secret (which never leaves its keyring). */
export interface MemberSecret {
  readonly key: MemberKey;
  readonly signing: SigningKey;
  readonly kem: KemKeyPair;
}

export function memberFromSecret(role: MemberRole, rootSecret: Uint8Array, name: string | null): MemberSecret {
  if (rootSecret.byteLength !== 32) throw new RangeError('a root secret is 32 bytes');
  const signing = signingKeyFromSeed(Buffer.from(hkdfSync('sha256', rootSecret, SALT, SIGN_SEED_INFO, 32)));
  const kem = kemKeyPairFromSecret(rootSecret, SALT);
  const key: MemberKey = { id: memberIdOf(role, signing.publicKey), role, sign_key: toBase64Url(signing.publicKey), kem_key: toBase64Url(kem.publicKey), name };
  return { key, signing, kem };
}

/**
 * A protocol-2 device becoming a member when its motebit is upgraded: it keeps its device key (and so its
 * device id and its chain of events) as its signing key; its X25519 key derives from the same seed.
 */
export function memberFromDeviceSeed(seed: Uint8Array, name: string | null): MemberSecret {
  if (seed.byteLength !== 32) throw new RangeError('a device seed is 32 bytes');
  const signing = signingKeyFromSeed(seed);
  const kem = kemKeyPairFromSecret(seed, SALT);
  return { key: { id: memberIdOf('device', signing.publicKey), role: 'device', sign_key: toBase64Url(signing.publicKey), kem_key: toBase64Url(kem.publicKey), name }, signing, kem };
}

async function newEpoch(n: number, recipients: readonly MemberKey[], prevKey: Buffer | null): Promise<{ epoch: Epoch; contentKey: Buffer }> {
  const contentKey = newContentKey();
  const keyId = keyIdOf(contentKey);
  const wraps: Epoch['wraps'] = {};
  for (const member of recipients) wraps[member.id] = await wrapKey(contentKey, member.kem_key, { recipientId: member.id, epoch: n, keyId });
  return {
    epoch: { n, key_id: keyId, wraps, prev_key: prevKey ? chainKey(contentKey, n, prevKey) : null, prev_key_id: prevKey ? keyIdOf(prevKey) : null },
    contentKey,
  };
}

const sign = <E extends UnsignedEntry>(entry: E, signer: MemberSecret): Entry => signEntry(entry, signer.signing) as unknown as Entry;

export interface Legacy {
  /** The protocol-2 identity key, derived from the old master token: it vouches for the upgrade. */
  readonly identityKey: SigningKey;
  /** The protocol-2 content key (epoch 0): chained into epoch 1 so members read the old events. */
  readonly contentKey: Buffer;
  /** Each old device's last event the upgrading device holds: those stay valid (device id → device_seq). */
  readonly frontier: Readonly<Record<string, number>>;
}

/** A new motebit (or an upgraded one, with `legacy`): the founding device and the recovery key, epoch 1. */
export async function genesisEntry(founder: MemberSecret, recovery: MemberKey, at: number, legacy?: Legacy): Promise<{ entry: Entry; contentKey: Buffer }> {
  const members = [founder.key, recovery];
  const { epoch, contentKey } = await newEpoch(1, members, legacy?.contentKey ?? null);
  const unsigned = { v: 1 as const, seq: 0, prev: null, signer: founder.key.id, at, kind: 'genesis' as const, members, epoch };
  if (!legacy) return { entry: sign(unsigned, founder), contentKey };
  const withLegacy = { ...unsigned, legacy: { identity_key: toBase64Url(legacy.identityKey.publicKey), frontier: { ...legacy.frontier } } };
  const legacySig = toBase64Url(legacy.identityKey.sign(legacySigningInput(withLegacy as unknown as Entry)));
  return { entry: sign({ ...unsigned, legacy: { ...withLegacy.legacy, sig: legacySig } }, founder), contentKey };
}

const next = (state: MembershipState, signer: MemberSecret, at: number) => ({ v: 1 as const, seq: state.head.seq + 1, prev: state.head.hash, signer: signer.key.id, at, motebit_id: state.motebitId });

/** Adds a device, with the current content key wrapped for it (and, for an upgraded device, its events from before). */
export async function addEntry(state: MembershipState, signer: MemberSecret, member: MemberKey, currentKey: Buffer, at: number, legacySeq?: number): Promise<Entry> {
  const epoch = state.epochs.at(-1)!;
  const wrap = await wrapKey(currentKey, member.kem_key, { recipientId: member.id, epoch: epoch.n, keyId: epoch.keyId });
  return sign({ ...next(state, signer, at), kind: 'add' as const, member, wrap, ...(legacySeq === undefined ? {} : { legacy_seq: legacySeq }) }, signer);
}

/**
 * Removes a device (its events after `cutoff` refused; the one at the cutoff must be the event of hash
 * `cutoffHash`, null with cutoff 0) and starts a new epoch for the members that remain.
 */
export async function removeEntry(state: MembershipState, signer: MemberSecret, memberId: string, cutoff: number, currentKey: Buffer, at: number, cutoffHash: string | null = null): Promise<{ entry: Entry; contentKey: Buffer }> {
  const remaining = currentMembers(state).filter((m) => m.key.id !== memberId).map((m) => m.key);
  const { epoch, contentKey } = await newEpoch(state.epochs.at(-1)!.n + 1, remaining, currentKey);
  return { entry: sign({ ...next(state, signer, at), kind: 'remove' as const, member_id: memberId, cutoff, cutoff_hash: cutoffHash, epoch }, signer), contentKey };
}

/** A new epoch for the current members. */
export async function rotateEntry(state: MembershipState, signer: MemberSecret, currentKey: Buffer, at: number): Promise<{ entry: Entry; contentKey: Buffer }> {
  const { epoch, contentKey } = await newEpoch(state.epochs.at(-1)!.n + 1, currentMembers(state).map((m) => m.key), currentKey);
  return { entry: sign({ ...next(state, signer, at), kind: 'rotate' as const, epoch }, signer), contentKey };
}

/** The current recovery key names its successor (with the current content key wrapped for it). */
export async function recoveryEntry(state: MembershipState, signer: MemberSecret, successor: MemberKey, currentKey: Buffer, at: number): Promise<Entry> {
  const epoch = state.epochs.at(-1)!;
  const wrap = await wrapKey(currentKey, successor.kem_key, { recipientId: successor.id, epoch: epoch.n, keyId: epoch.keyId });
  return sign({ ...next(state, signer, at), kind: 'recovery' as const, member: successor, wrap }, signer);
}
