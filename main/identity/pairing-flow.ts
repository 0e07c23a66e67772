// Pairing by approval (docs/keys.md), both sides, for the CLI and the window to drive:
//
//   new device                      relay                       member
//   startJoin: open rendezvous ───▶ keys        ◀─── GET ─────  startApproval: reads the code
//                                   offer       ◀─── POST ────  commits to the motebit (genesis hash)
//   waitForOffer: sees the offer,
//   reveals its nonce ────────────▶ reveal      ◀─── GET ─────  checks the code's commitment
//   both show the same six digits; the person compares them and approves on the member:
//                                   log         ◀─── POST ────  approve: the signed add entry
//   waitForApproval: reads the log with its own token, verifies it from the offered genesis, opens its keys.
//
// A code is used once (the offer is taken once) and worthless after it expires; declining is not calling
// approve. Every failure is a PairingError whose message is words for people; the relay's own answer is
// kept as its cause (for a "Details" disclosure).
import { setTimeout as sleep } from 'node:timers/promises';
import { CodeTextError } from '../../shared/code-text.ts';
import { fromBase64Url, toBase64Url } from '../../shared/encoding.ts';
import { addEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { EntrySchema, MAX_MEMBERS, MemberKeySchema, entryHash, memberIdOf, type Entry, type MemberKey } from '../../shared/membership/entry.ts';
import { keyIdOf } from '../../shared/membership/epoch-keys.ts';
import { MembershipError, currentMembers, verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import { openKeys } from '../../shared/membership/open-keys.ts';
import { commitmentHolds, formatPairingCode, newPairingNonce, pairingCommitment, parsePairingCode, shortAuthString, type PairingCode } from '../../shared/membership/pairing-code.ts';
import type { PairingOffer, PairingState } from '../../shared/portable/relay-api.ts';
import { RelayClient, type RelayClientOptions } from '../sync/relay-client.ts';
import { TransportError } from '../sync/transport.ts';

export const DEFAULT_POLL_MS = 1_000;
/** Network failures in a row a wait rides out (the relay restarting) before it gives up. */
const MAX_NETWORK_FAILURES = 5;

export type PairingErrorCode =
  /** The text is not a pairing code (mistyped, an old protocol-2 code). */
  | 'bad_code'
  /** The relay knows no such code: never made, already used or expired. */
  | 'unknown_code'
  /** The code expired while waiting for the other device. */
  | 'expired'
  /** The device that answered is not the one the code commits to (keys swapped on the way). */
  | 'mismatch'
  /** The device is (or was) a member of this motebit already. */
  | 'already_member'
  /** The motebit has as many members as it may. */
  | 'full'
  /** The log the relay served is not the motebit the member offered. */
  | 'wrong_motebit'
  /** The log the relay served does not verify, or does not give this device its keys. */
  | 'bad_log'
  /** The motebit's log moved on while approving; nothing was added. */
  | 'conflict'
  | 'unreachable'
  /** Any other refusal by the relay. */
  | 'relay'
  /** Stopped by the caller's AbortSignal. */
  | 'cancelled';

export class PairingError extends Error {
  override readonly name = 'PairingError';
  readonly code: PairingErrorCode;
  constructor(code: PairingErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
  }
}

const UNKNOWN_CODE = 'this code is unknown, used or expired; ask the new device for a new one';
const MISMATCH = 'the code does not match the device that answered; do not approve; nothing was changed';

export interface Timing {
  /** Between two reads of the rendezvous or the log (default 1000 ms). */
  readonly pollMs?: number;
  /** The clock, in ms since the epoch (default Date.now). */
  readonly now?: () => number;
}

export interface Waiting {
  readonly signal?: AbortSignal;
}

interface Clock {
  readonly pollMs: number;
  readonly now: () => number;
}

const clockOf = (timing: Timing): Clock => ({ pollMs: timing.pollMs ?? DEFAULT_POLL_MS, now: timing.now ?? Date.now });

/**
 * The last millisecond the relay still serves a rendezvous that expires at `expiresAt` (seconds): it keeps
 * one while its whole-second clock has not passed that second.
 */
const deadlineOf = (expiresAt: number): number => (expiresAt + 1) * 1000;

const isNotFound = (error: unknown): boolean => error instanceof TransportError && error.code === 'not_found';

/** A relay failure in words; the TransportError stays as the cause. */
function relayFailure(error: unknown): PairingError {
  if (error instanceof PairingError) return error;
  if (!(error instanceof TransportError)) return new PairingError('relay', 'pairing failed unexpectedly; nothing was changed; try again', { cause: error });
  if (error.kind === 'network') return new PairingError('unreachable', 'cannot reach the relay; check the connection and try again; nothing was changed', { cause: error });
  if (error.code === 'rate_limited') return new PairingError('relay', 'the relay is getting too many pairing requests from this network; wait a minute and try again', { cause: error });
  if (error.code === 'token_expired' || error.code === 'token_not_yet_valid') {
    return new PairingError('relay', "the relay refused this device's sign-in because the clocks differ; check this computer's date and time, then try again", { cause: error });
  }
  if (error.kind === 'auth') return new PairingError('relay', 'the relay did not accept this device (it may have been removed from the motebit); nothing was changed', { cause: error });
  return new PairingError('relay', 'the relay refused the request; nothing was changed; try again, and update Motebit Sync if it keeps happening', { cause: error });
}

const cancelled = (): PairingError => new PairingError('cancelled', 'pairing was stopped; nothing was changed');

/**
 * Calls `attempt` every poll interval until it answers (not null), the deadline passes (`expired`), or the
 * signal aborts. Network failures and rate limits are ridden out (a few in a row); anything else ends the wait.
 */
async function poll<T>(clock: Clock, deadline: number, signal: AbortSignal | undefined, expired: () => PairingError, attempt: () => Promise<T | null>): Promise<T> {
  let failures = 0;
  for (;;) {
    if (signal?.aborted) throw cancelled();
    if (clock.now() >= deadline) throw expired();
    try {
      const answer = await attempt();
      if (answer !== null) return answer;
      failures = 0;
    } catch (error) {
      const transient = error instanceof TransportError && (error.kind === 'network' || error.code === 'rate_limited');
      if (!transient || ++failures > MAX_NETWORK_FAILURES) throw relayFailure(error);
    }
    try {
      await sleep(clock.pollMs, undefined, signal ? { signal } : {});
    } catch {
      throw cancelled();
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The new device

export interface JoinOptions extends Timing, Pick<RelayClientOptions, 'audience' | 'timeoutMs' | 'fetch'> {
  readonly relayUrl: string;
  /** The new device's keys (from its root secret). */
  readonly member: MemberSecret;
}

/** What the member offered, and the six digits to show: the person compares them with the member's. */
export interface Offered {
  readonly motebitId: string;
  readonly genesisHash: string;
  readonly sas: string;
}

/** The new device, a member now: the log it verified (state and entries as served) and its content keys by key id. */
export interface Joined {
  readonly state: MembershipState;
  readonly entries: readonly unknown[];
  readonly keys: Map<string, Buffer>;
}

export class Join {
  /** The code to show (text; also what a QR code carries). Nothing secret is in it. */
  readonly code: string;
  /** When the relay forgets the rendezvous (ms since the epoch): the code is worthless after it. */
  readonly expiresAt: number;
  readonly #options: JoinOptions;
  readonly #clock: Clock;
  readonly #relay: RelayClient;
  readonly #id: string;
  readonly #nonce: Buffer;
  #offer: PairingOffer | null = null;

  /** Use startJoin. */
  constructor(options: JoinOptions, relay: RelayClient, id: string, expiresAt: number, nonce: Buffer) {
    this.#options = options;
    this.#clock = clockOf(options);
    this.#relay = relay;
    this.#id = id;
    this.#nonce = nonce;
    this.expiresAt = deadlineOf(expiresAt);
    this.code = formatPairingCode({ rendezvousId: fromBase64Url(id), commitment: pairingCommitment(options.member.key, nonce) });
  }

  #expired = (): PairingError => new PairingError('expired', 'the code expired before another device approved it; run join again');

  /** Waits for a member to offer its motebit, then reveals the nonce; answers the six digits to show. */
  async waitForOffer(waiting: Waiting = {}): Promise<Offered> {
    if (this.#offer) throw new Error('the offer was received already; wait for the approval');
    const nonce = toBase64Url(this.#nonce);
    // Read until the offer is there, then reveal; a reveal whose answer was lost shows up at the next read.
    const offer = await poll(this.#clock, this.expiresAt, waiting.signal, this.#expired, async () => {
      try {
        const { offer, reveal } = await this.#relay.pairing(this.#id);
        if (offer === null) return null;
        if (reveal === null) await this.#relay.revealPairing(this.#id, nonce);
        else if (reveal.nonce !== nonce) throw new PairingError('relay', 'the relay says another device answered this code; run join again');
        return offer;
      } catch (error) {
        if (isNotFound(error)) throw this.#expired();
        throw error;
      }
    });
    this.#offer = offer;
    return { motebitId: offer.motebit_id, genesisHash: offer.genesis_hash, sas: shortAuthString(offer.genesis_hash, this.#options.member.key, this.#nonce) };
  }

  /**
   * After waitForOffer: waits until the member has added this device (until then the relay refuses its
   * token), then verifies the whole log from the genesis the member offered and opens this device's keys.
   */
  async waitForApproval(waiting: Waiting = {}): Promise<Joined> {
    const offer = this.#offer;
    if (!offer) throw new Error('wait for the offer first');
    const { member } = this.#options;
    const own = new RelayClient({ ...clientOptions(this.#options), motebitId: offer.motebit_id, deviceId: member.key.id, deviceKey: member.signing });
    const entries = await poll(this.#clock, this.expiresAt, waiting.signal, this.#expired, async () => {
      try {
        const { entries } = await own.membership(-1);
        // A protocol-2 device upgrading later signs in already (its old device row): it waits until the log names it.
        return namesMember(entries, member.key.id) ? entries : null;
      } catch (error) {
        if (error instanceof TransportError && error.code === 'unknown_device') return null; // not added (yet)
        throw error;
      }
    });
    return this.#verify(offer, entries);
  }

  async #verify(offer: PairingOffer, entries: readonly unknown[]): Promise<Joined> {
    const { member } = this.#options;
    const refused = (cause: unknown): PairingError => new PairingError('bad_log', 'the list of devices the relay served does not check out; nothing was kept; run join again', { cause });
    let state: MembershipState;
    try {
      state = verifyLog(entries, offer.motebit_id);
    } catch (error) {
      throw error instanceof MembershipError && error.fault === 'motebit' ? this.#wrongMotebit(error) : refused(error);
    }
    if (state.hashes[0] !== offer.genesis_hash) throw this.#wrongMotebit();
    if (state.members.get(member.key.id)?.removedAt !== null) throw refused(new Error(`${member.key.id} is not a current member of the log served`));
    let keys: Map<string, Buffer>;
    try {
      keys = await openKeys(state, { id: member.key.id, kemPrivateKey: member.kem.privateKey });
    } catch (error) {
      throw refused(error);
    }
    if (!keys.has(state.epochs.at(-1)!.keyId)) throw refused(new Error('the log gives this device no key of the current epoch'));
    return { state, entries, keys };
  }

  #wrongMotebit(cause?: unknown): PairingError {
    return new PairingError('wrong_motebit', 'the relay served another motebit than the one the approving device offered; nothing was kept; run join again', { cause });
  }
}

/** Whether any entry of a served log adds `memberId` (checked properly, with the whole log, once it does). */
function namesMember(entries: readonly unknown[], memberId: string): boolean {
  return entries.some((raw) => {
    const entry = EntrySchema.safeParse(raw);
    return entry.success && (entry.data.kind === 'add' ? entry.data.member.id === memberId : entry.data.kind === 'genesis' && entry.data.members.some((m) => m.id === memberId));
  });
}

function clientOptions(options: JoinOptions): RelayClientOptions {
  const { relayUrl, member, audience, timeoutMs, fetch } = options;
  // Pairing requests are unsigned: the motebit is unknown yet and the device key is never used for them.
  return { relayUrl, motebitId: '', deviceId: member.key.id, deviceKey: member.signing, ...(audience === undefined ? {} : { audience }), ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(fetch === undefined ? {} : { fetch }) };
}

/** The new device opens a rendezvous for its keys and gets the code to show. */
export async function startJoin(options: JoinOptions): Promise<Join> {
  const relay = new RelayClient(clientOptions(options));
  const nonce = newPairingNonce();
  let created: { id: string; expires_at: number };
  try {
    created = await relay.openPairing(options.member.key);
  } catch (error) {
    throw relayFailure(error);
  }
  return new Join(options, relay, created.id, created.expires_at, nonce);
}

// ---------------------------------------------------------------------------------------------------------
// The member

/** What a member needs of the relay to approve (RelayClient signed as the member). */
export type ApprovalRelay = Pick<RelayClient, 'pairing' | 'offerPairing' | 'membership' | 'offerMembership'>;

export interface ApprovalOptions extends Timing, Waiting {
  readonly relay: ApprovalRelay;
  /** The code as the person typed or scanned it. */
  readonly code: string;
  /** The motebit's log as this member verified it. */
  readonly state: MembershipState;
}

/** A new device that answered the code: show its name and the six digits, and approve only if they match. */
export class Approval {
  /** The new device's keys, as the code committed to them. */
  readonly member: MemberKey;
  readonly sas: string;
  readonly #relay: ApprovalRelay;
  readonly #state: MembershipState;
  readonly #now: () => number;
  #approved = false;

  /** Use startApproval. */
  constructor(relay: ApprovalRelay, state: MembershipState, member: MemberKey, sas: string, now: () => number) {
    this.#relay = relay;
    this.#state = state;
    this.member = member;
    this.sas = sas;
    this.#now = now;
  }

  get id(): string {
    return this.member.id;
  }

  get name(): string | null {
    return this.member.name;
  }

  /**
   * The person confirmed the digits match: appends the add entry (signed by `signer`, with `currentKey`,
   * the current epoch's content key, wrapped for the new device; for a protocol-2 device of an upgraded
   * motebit, `legacySeq` keeps its events from before its upgrade valid). Answers the entry the relay took.
   */
  async approve(signer: MemberSecret, currentKey: Buffer, legacySeq?: number): Promise<Entry> {
    if (this.#approved) throw new Error('this device was approved already');
    const epoch = this.#state.epochs.at(-1)!;
    if (keyIdOf(currentKey) !== epoch.keyId) throw new RangeError(`the content key given is not the key of the current epoch (${epoch.keyId})`);
    const entry = await addEntry(this.#state, signer, this.member, currentKey, this.#now(), legacySeq);
    try {
      await this.#relay.offerMembership([entry]);
    } catch (error) {
      // The relay may have taken the entry and lost its answer: its log says which.
      const next = await this.#next(entry);
      if (next === 'unknown') {
        throw new PairingError('unreachable', 'the relay did not answer; the new device may or may not have been added: look at the list of devices before approving again', { cause: error });
      }
      if (next === 'other') {
        throw new PairingError('conflict', "the motebit's devices changed on another device meanwhile; nothing was added; ask the new device for a new code and approve again", { cause: error });
      }
      if (next === 'none') throw relayFailure(error);
    }
    this.#approved = true;
    return entry;
  }

  /** What the relay's log holds where `entry` goes: it, another entry, nothing, or 'unknown' when it cannot be read. */
  async #next(entry: Entry): Promise<'ours' | 'other' | 'none' | 'unknown'> {
    let entries: unknown[];
    try {
      ({ entries } = await this.#relay.membership(this.#state.head.seq));
    } catch {
      return 'unknown';
    }
    if (entries.length === 0) return 'none';
    const next = EntrySchema.safeParse(entries[0]);
    return next.success && entryHash(next.data) === entryHash(entry) ? 'ours' : 'other';
  }
}

/**
 * A member reads a new device's code: offers its motebit, waits for the new device's reveal, and checks the
 * code's commitment. Nothing is appended until Approval.approve.
 */
export async function startApproval(options: ApprovalOptions): Promise<Approval> {
  const { relay, state } = options;
  const clock = clockOf(options);
  let code: PairingCode;
  try {
    code = parsePairingCode(options.code);
  } catch (error) {
    if (error instanceof CodeTextError) throw new PairingError('bad_code', error.message, { cause: error });
    throw error;
  }
  const id = toBase64Url(code.rendezvousId);
  const unknown = (cause?: unknown): PairingError => new PairingError('unknown_code', UNKNOWN_CODE, { cause });

  let rendezvous: PairingState;
  try {
    rendezvous = await relay.pairing(id);
  } catch (error) {
    throw isNotFound(error) ? unknown(error) : relayFailure(error);
  }
  if (rendezvous.offer !== null) throw unknown();
  const member = newDeviceKey(rendezvous.member);
  const known = state.members.get(member.id);
  if (known) {
    throw new PairingError(
      'already_member',
      known.removedAt === null ? 'this device is already one of the devices of this motebit; nothing to approve' : 'this device was removed from this motebit and cannot come back; nothing was changed',
    );
  }
  if (currentMembers(state).length >= MAX_MEMBERS) {
    throw new PairingError('full', `a motebit has at most ${MAX_MEMBERS} members (its devices and its recovery key); remove a device first; nothing was changed`);
  }

  const genesisHash = state.hashes[0]!;
  try {
    await relay.offerPairing(id, { motebit_id: state.motebitId, genesis_hash: genesisHash });
  } catch (error) {
    throw isNotFound(error) ? unknown(error) : relayFailure(error);
  }

  const expired = (): PairingError => new PairingError('expired', 'the code expired before the new device answered; nothing was changed; ask the new device for a new one');
  const reveal = await poll(clock, deadlineOf(rendezvous.expires_at), options.signal, expired, async () => {
    try {
      return (await relay.pairing(id)).reveal;
    } catch (error) {
      if (isNotFound(error)) throw expired();
      throw error;
    }
  });
  const nonce = fromBase64Url(reveal.nonce);
  if (!commitmentHolds(code, member, nonce)) throw new PairingError('mismatch', MISMATCH);
  return new Approval(relay, state, member, shortAuthString(genesisHash, member, nonce), clock.now);
}

/** The keys the relay served for the new device: a device whose id is its key, else the relay swapped something. */
function newDeviceKey(served: unknown): MemberKey {
  const parsed = MemberKeySchema.safeParse(served);
  if (!parsed.success) throw new PairingError('mismatch', MISMATCH, { cause: parsed.error });
  const key = parsed.data;
  if (key.role !== 'device' || memberIdOf('device', fromBase64Url(key.sign_key)) !== key.id) throw new PairingError('mismatch', MISMATCH);
  return key;
}
