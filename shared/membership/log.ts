// Verifying a membership log (docs/keys.md): every device folds the log itself, entry by entry, and
// refuses the whole log at the first entry that breaks a rule, whatever the relay serves. The rules live
// here and nowhere else:
//   - entries form one hash chain from genesis (seq 0, 1, 2 … each naming the previous entry's hash);
//   - each entry is signed by a member as of the entry before it (genesis: by its founding device);
//   - add: any member adds a device never seen before, with the current key wrapped for it;
//   - remove: any member removes a device (itself included), naming the last of its events that stays
//     valid (cutoff), and moves to a new epoch wrapped for exactly the members that remain;
//   - rotate: any member moves to a new epoch, wrapped for exactly the current members;
//   - recovery: only the current recovery key names its successor (so a thief holding a device can never
//     take the recovery key away, and the recovery key can always remove the thief);
//   - never more than MAX_MEMBERS members at once; a removed member never comes back.
import { fromBase64Url } from '../encoding.ts';
import {
  EntrySchema,
  MAX_MEMBERS,
  MEMBERSHIP_VERSION,
  entryHash,
  memberIdOf,
  motebitIdOfGenesis,
  verifyEntrySignature,
  verifyLegacySignature,
  type Entry,
  type Epoch,
  type GenesisEntry,
  type MemberKey,
  type Wrap,
} from './entry.ts';

export interface MemberState {
  readonly key: MemberKey;
  /** The entry that made it a member. */
  readonly addedAt: number;
  /** The entry that removed it (or replaced the recovery key), or null while it is a member. */
  readonly removedAt: number | null;
  /** A removed device's events up to this device_seq stay valid; null while it is a member. */
  readonly cutoff: number | null;
  /** The hash of the event at the cutoff (null for cutoff 0, and while a member). */
  readonly cutoffHash: string | null;
  /** Its wrap of the epoch that was current when it was added (add and recovery entries carry it). */
  readonly joinWrap: Wrap | null;
}

export interface EpochState {
  readonly n: number;
  readonly keyId: string;
  /** The entry that started it. */
  readonly since: number;
  readonly epoch: Epoch;
}

export interface MembershipState {
  readonly motebitId: string;
  readonly head: { readonly seq: number; readonly hash: string };
  /** Every member there has ever been, by id. */
  readonly members: ReadonlyMap<string, MemberState>;
  /** Epochs in order; the last is current. */
  readonly epochs: readonly EpochState[];
  readonly recoveryId: string;
  /** Every entry's hash, by seq: a log served later must hold the same ones (else it is a fork). */
  readonly hashes: readonly string[];
  /**
   * An upgraded protocol-2 motebit: its old identity key, and for each old device the last of its events
   * from before the upgrade that stays valid. Null for a motebit that began with a log.
   */
  readonly legacy: { readonly identityKey: string; readonly cutoffs: ReadonlyMap<string, number> } | null;
}

export type MembershipFault =
  | 'malformed'
  | 'version'
  | 'chain'
  | 'motebit'
  | 'signature'
  | 'not_member'
  | 'not_allowed'
  | 'member_key'
  | 'epoch'
  | 'too_many_members';

/** A log that breaks a rule: which entry (seq), what kind of fault, and what is wrong in words. */
export class MembershipError extends Error {
  override readonly name = 'MembershipError';
  readonly seq: number;
  readonly fault: MembershipFault;
  constructor(seq: number, fault: MembershipFault, message: string) {
    super(`membership entry ${seq}: ${message}`);
    this.seq = seq;
    this.fault = fault;
  }
}

const current = (state: MembershipState): EpochState => state.epochs.at(-1)!;

export function currentMembers(state: MembershipState): MemberState[] {
  return [...state.members.values()].filter((member) => member.removedAt === null);
}

function parse(raw: unknown, seq: number): Entry {
  // The version first: an entry of a later version may have another shape, and saying so tells what to do.
  const v = typeof raw === 'object' && raw !== null ? (raw as { v?: unknown }).v : undefined;
  if (typeof v === 'number' && v !== MEMBERSHIP_VERSION) throw new MembershipError(seq, 'version', `version ${v} is not one this device reads: update this app`);
  const parsed = EntrySchema.safeParse(raw);
  if (!parsed.success) throw new MembershipError(seq, 'malformed', `not a valid entry (${parsed.error.issues[0]!.message})`);
  return parsed.data;
}

function checkMemberKey(key: MemberKey, seq: number): void {
  if (memberIdOf(key.role, fromBase64Url(key.sign_key)) !== key.id) throw new MembershipError(seq, 'member_key', `member ${key.id} does not match its signing key`);
}

/** An epoch entry's checks against the epoch before it (null for genesis) and the members it must be wrapped for. */
function checkEpoch(epoch: Epoch, previous: EpochState | null, state: MembershipState | null, memberIds: readonly string[], seq: number, legacy: boolean): void {
  const expected = previous ? previous.n + 1 : 1;
  if (epoch.n !== expected) throw new MembershipError(seq, 'epoch', `epoch ${epoch.n} should be ${expected}`);
  if ((epoch.prev_key === null) !== (epoch.prev_key_id === null)) throw new MembershipError(seq, 'epoch', 'a chained key and its key id come together');
  if (previous) {
    if (epoch.prev_key_id !== previous.keyId) throw new MembershipError(seq, 'epoch', `epoch ${epoch.n} must chain the key of epoch ${previous.n}`);
  } else if (!legacy && epoch.prev_key !== null) {
    throw new MembershipError(seq, 'epoch', 'the first epoch of a new motebit has no previous key');
  } else if (legacy && epoch.prev_key === null) {
    throw new MembershipError(seq, 'epoch', "an upgraded motebit's first epoch chains its old key");
  }
  if (state?.epochs.some((e) => e.keyId === epoch.key_id) || epoch.key_id === epoch.prev_key_id) throw new MembershipError(seq, 'epoch', `key ${epoch.key_id} was used before`);
  const wrapped = Object.keys(epoch.wraps).sort();
  const members = [...memberIds].sort();
  if (wrapped.length !== members.length || wrapped.some((id, i) => id !== members[i])) {
    throw new MembershipError(seq, 'epoch', `epoch ${epoch.n} must be wrapped for exactly the current members (${members.length}), not ${wrapped.length}`);
  }
}

/** Verifies a genesis entry and starts the state from it. */
export function startLog(raw: unknown): MembershipState {
  const entry = parse(raw, 0);
  if (entry.kind !== 'genesis' || entry.seq !== 0 || entry.prev !== null) throw new MembershipError(0, 'chain', 'a log starts with a genesis entry at seq 0 with no previous hash');
  const genesis: GenesisEntry = entry;
  for (const member of genesis.members) checkMemberKey(member, 0);
  const ids = genesis.members.map((m) => m.id);
  if (new Set(ids).size !== ids.length) throw new MembershipError(0, 'member_key', 'a member is listed twice');
  const devices = genesis.members.filter((m) => m.role === 'device');
  const recoveries = genesis.members.filter((m) => m.role === 'recovery');
  if (devices.length !== 1 || recoveries.length !== 1) throw new MembershipError(0, 'not_allowed', 'a genesis names one founding device and one recovery key');
  if (genesis.signer !== devices[0]!.id) throw new MembershipError(0, 'not_allowed', 'a genesis is signed by its founding device');
  if (!verifyEntrySignature(genesis, devices[0]!.sign_key)) throw new MembershipError(0, 'signature', 'the founding device did not sign this genesis');
  if (genesis.legacy && !verifyLegacySignature(genesis)) throw new MembershipError(0, 'signature', "the motebit's old identity key did not sign this genesis");
  checkEpoch(genesis.epoch, null, null, ids, 0, genesis.legacy !== undefined);
  const members = new Map<string, MemberState>(genesis.members.map((key) => [key.id, { key, addedAt: 0, removedAt: null, cutoff: null, cutoffHash: null, joinWrap: null }]));
  const epochs: EpochState[] = [];
  if (genesis.legacy) epochs.push({ n: 0, keyId: genesis.epoch.prev_key_id!, since: 0, epoch: { n: 0, key_id: genesis.epoch.prev_key_id!, wraps: {}, prev_key: null, prev_key_id: null } });
  epochs.push({ n: genesis.epoch.n, keyId: genesis.epoch.key_id, since: 0, epoch: genesis.epoch });
  const hash = entryHash(genesis);
  const legacy = genesis.legacy ? { identityKey: genesis.legacy.identity_key, cutoffs: new Map(Object.entries(genesis.legacy.frontier)) } : null;
  return { motebitId: motebitIdOfGenesis(genesis), head: { seq: 0, hash }, members, epochs, recoveryId: recoveries[0]!.id, hashes: [hash], legacy };
}

/** The state after one more entry; throws MembershipError (the state given is left as it was). */
export function applyEntry(state: MembershipState, raw: unknown): MembershipState {
  const seq = state.head.seq + 1;
  const entry = parse(raw, seq);
  if (entry.kind === 'genesis') throw new MembershipError(seq, 'chain', 'a second genesis');
  if (entry.seq !== seq) throw new MembershipError(seq, 'chain', `entry numbered ${entry.seq} where ${seq} comes next`);
  if (entry.prev !== state.head.hash) throw new MembershipError(seq, 'chain', 'it does not follow the entry before it (a fork or a reordered log)');
  if (entry.motebit_id !== state.motebitId) throw new MembershipError(seq, 'motebit', `it belongs to motebit ${entry.motebit_id}`);
  const signer = state.members.get(entry.signer);
  if (!signer || signer.removedAt !== null) throw new MembershipError(seq, 'not_member', `its signer ${entry.signer} is not a member`);
  if (!verifyEntrySignature(entry, signer.key.sign_key)) throw new MembershipError(seq, 'signature', `${entry.signer} did not sign it`);

  const members = new Map(state.members);
  let epochs = state.epochs;
  let recoveryId = state.recoveryId;
  let legacy = state.legacy;
  const live = currentMembers(state);
  const now = current(state);
  switch (entry.kind) {
    case 'add': {
      checkMemberKey(entry.member, seq);
      if (entry.member.role !== 'device') throw new MembershipError(seq, 'not_allowed', 'only devices are added; a recovery key is replaced by the one before it');
      if (members.has(entry.member.id)) throw new MembershipError(seq, 'not_allowed', `${entry.member.id} has been a member before and cannot come back`);
      if (live.length >= MAX_MEMBERS) throw new MembershipError(seq, 'too_many_members', `a motebit has at most ${MAX_MEMBERS} members`);
      members.set(entry.member.id, { key: entry.member, addedAt: seq, removedAt: null, cutoff: null, cutoffHash: null, joinWrap: entry.wrap });
      if (entry.legacy_seq !== undefined) {
        if (!legacy) throw new MembershipError(seq, 'not_allowed', 'only an upgraded motebit has devices with events from before its log');
        const cutoffs = new Map(legacy.cutoffs);
        cutoffs.set(entry.member.id, Math.max(entry.legacy_seq, cutoffs.get(entry.member.id) ?? 0));
        legacy = { identityKey: legacy.identityKey, cutoffs };
      }
      break;
    }
    case 'remove': {
      const target = members.get(entry.member_id);
      if (!target || target.removedAt !== null) throw new MembershipError(seq, 'not_allowed', `${entry.member_id} is not a member`);
      if (target.key.role !== 'device') throw new MembershipError(seq, 'not_allowed', 'the recovery key is never removed, only replaced by itself');
      if ((entry.cutoff === 0) !== (entry.cutoff_hash === null)) throw new MembershipError(seq, 'not_allowed', 'a removal names the hash of the last event it keeps valid (and none when it keeps none)');
      members.set(entry.member_id, { ...target, removedAt: seq, cutoff: entry.cutoff, cutoffHash: entry.cutoff_hash });
      checkEpoch(entry.epoch, now, state, live.filter((m) => m.key.id !== entry.member_id).map((m) => m.key.id), seq, false);
      epochs = [...epochs, { n: entry.epoch.n, keyId: entry.epoch.key_id, since: seq, epoch: entry.epoch }];
      break;
    }
    case 'rotate': {
      checkEpoch(entry.epoch, now, state, live.map((m) => m.key.id), seq, false);
      epochs = [...epochs, { n: entry.epoch.n, keyId: entry.epoch.key_id, since: seq, epoch: entry.epoch }];
      break;
    }
    case 'recovery': {
      if (entry.signer !== state.recoveryId) throw new MembershipError(seq, 'not_allowed', 'only the current recovery key names a new one');
      checkMemberKey(entry.member, seq);
      if (entry.member.role !== 'recovery') throw new MembershipError(seq, 'not_allowed', 'a recovery entry names a recovery key');
      if (members.has(entry.member.id)) throw new MembershipError(seq, 'not_allowed', `${entry.member.id} has been a member before and cannot come back`);
      const old = members.get(state.recoveryId)!;
      members.set(old.key.id, { ...old, removedAt: seq, cutoff: 0, cutoffHash: null });
      members.set(entry.member.id, { key: entry.member, addedAt: seq, removedAt: null, cutoff: null, cutoffHash: null, joinWrap: entry.wrap });
      recoveryId = entry.member.id;
      break;
    }
  }
  const hash = entryHash(entry);
  return { motebitId: state.motebitId, head: { seq, hash }, members, epochs, recoveryId, hashes: [...state.hashes, hash], legacy };
}

/** Verifies a whole log from its genesis; `motebitId`, when given, is the id the log must belong to. */
export function verifyLog(entries: readonly unknown[], motebitId?: string): MembershipState {
  if (entries.length === 0) throw new MembershipError(0, 'chain', 'the log is empty');
  let state = startLog(entries[0]);
  if (motebitId !== undefined && state.motebitId !== motebitId) throw new MembershipError(0, 'motebit', `this log belongs to motebit ${state.motebitId}, not ${motebitId}`);
  for (let i = 1; i < entries.length; i++) state = applyEntry(state, entries[i]);
  return state;
}

/**
 * Throws unless `served` (a log verified just now) holds every entry of `known` (the log this device
 * verified before) unchanged: a relay may serve more entries, never other ones or fewer.
 */
export function checkExtends(known: MembershipState, served: MembershipState): void {
  if (served.motebitId !== known.motebitId) throw new MembershipError(0, 'motebit', `the log served belongs to motebit ${served.motebitId}`);
  if (served.head.seq < known.head.seq) throw new MembershipError(served.head.seq + 1, 'chain', `the log served ends at entry ${served.head.seq}; this device already holds ${known.head.seq} (entries withheld or rolled back)`);
  const fork = known.hashes.findIndex((hash, seq) => served.hashes[seq] !== hash);
  if (fork !== -1) throw new MembershipError(fork, 'chain', 'the log served differs from the one this device holds (a fork)');
}

/** The epoch in force at log position `position` (the last one started at or before it). */
export function epochAt(state: MembershipState, position: number): EpochState {
  let found = state.epochs[0]!;
  for (const epoch of state.epochs) if (epoch.since <= position) found = epoch; // in order: n and since only grow
  return found;
}

/**
 * Whether an event from before the upgrade of a protocol-2 motebit (it names no log position, and its seal
 * is certified by the old identity key) is valid: only up to its device's cutoff, which the upgrade (or the
 * device's own later upgrade) recorded. Everything a master-token holder writes after that is refused.
 */
export function mayWriteLegacy(state: MembershipState, deviceId: string, deviceSeq: number): WriteVerdict {
  if (!state.legacy) return { ok: false, reason: 'it names no membership log position (an event from before this motebit had a membership log, or a forgery)' };
  const cutoff = state.legacy.cutoffs.get(deviceId);
  if (cutoff === undefined || deviceSeq > cutoff) return { ok: false, reason: `it was written with the old shared key after this motebit's upgrade (${deviceId} had ${cutoff ?? 0} events from before it)` };
  return { ok: true };
}

export type WriteVerdict = { ok: true } | { ok: false; reason: string };

/**
 * Whether an event by `deviceId`, its `deviceSeq`-th (of hash `hash`), written when its device knew the log
 * up to `position`, is valid: the device was a member at that position, and if it was removed since, the
 * event is not after the cutoff its removal named, and the event at the cutoff is the one it named (which
 * pins every earlier one through the hash chain). Every device decides the same for the same log.
 */
export function mayWrite(state: MembershipState, deviceId: string, deviceSeq: number, position: number, hash: string): WriteVerdict {
  if (position > state.head.seq) return { ok: false, reason: `it names membership entry ${position}, beyond the log this device holds (${state.head.seq})` };
  const member = state.members.get(deviceId);
  if (!member || member.key.role !== 'device') return { ok: false, reason: `${deviceId} is not a device of this motebit` };
  if (member.addedAt > position) return { ok: false, reason: `${deviceId} was not a member yet at entry ${position}` };
  if (member.removedAt !== null && position >= member.removedAt) return { ok: false, reason: `${deviceId} had been removed at entry ${member.removedAt}` };
  if (member.cutoff !== null && deviceSeq > member.cutoff) return { ok: false, reason: `${deviceId} was removed; its events after number ${member.cutoff} are refused` };
  if (member.cutoff !== null && deviceSeq === member.cutoff && hash !== member.cutoffHash) return { ok: false, reason: `${deviceId} was removed; this is not the event number ${member.cutoff} its removal kept (another version)` };
  return { ok: true };
}
