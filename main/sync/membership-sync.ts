// A device keeping its motebit's membership log (docs/keys.md): it folds every entry the relay serves onto
// the log it verified before and stores only what verifies, so whatever the relay serves, the device's
// view of who is a member is one it checked itself. A relay that lost entries (it ends before this
// device's log) is sent them again, as the sync engine re-seeds lost events; a relay that serves another
// history (a fork, an entry that breaks a rule) is refused, and nothing it served is kept.
import { canonicalJson } from '../../shared/encoding.ts';
import { MAX_MEMBERSHIP_ENTRIES } from '../../shared/portable/relay-api.ts';
import { MembershipError, applyEntry, verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import type { LedgerEntry, MembershipLedger } from '../store/membership-ledger.ts';
import { TransportError } from './transport.ts';

/** What the relay does for membership (RelayClient implements it over HTTP). */
export interface MembershipRelay {
  membership(after: number): Promise<{ entries: unknown[]; head: number }>;
  offerMembership(entries: readonly unknown[]): Promise<number>;
}

export type MembershipRefresh =
  /** `added` entries were verified and kept (0: the relay had nothing new). */
  | { kind: 'current'; added: number; state: MembershipState }
  /** The relay had lost entries this device holds; `resent` were offered to it again. */
  | { kind: 'reseeded'; resent: number; state: MembershipState };

/** The relay served a membership log this device refuses; nothing it served was kept. */
export class MembershipRelayError extends Error {
  override readonly name = 'MembershipRelayError';
  readonly fault: MembershipError;
  constructor(fault: MembershipError) {
    super(`the relay served a membership log this device refuses: ${fault.message}`, { cause: fault });
    this.fault = fault;
  }
}

export class MembershipSync {
  readonly #ledger: MembershipLedger;
  readonly #relay: MembershipRelay;
  readonly #motebitId: string;
  #state: MembershipState | null;

  constructor(ledger: MembershipLedger, relay: MembershipRelay, motebitId: string) {
    this.#ledger = ledger;
    this.#relay = relay;
    this.#motebitId = motebitId;
    const held = ledger.entries();
    // What is in the ledger was verified before it was written; verifying again at start costs little and
    // catches a damaged file.
    this.#state = held.length === 0 ? null : verifyLog(held.map((entry) => JSON.parse(entry.text) as unknown), motebitId);
  }

  /** The log as this device verified it, or null before it holds any. */
  get state(): MembershipState | null {
    return this.#state;
  }

  /**
   * Keeps a whole log this device verified itself (the genesis it just made, or the log its approval or
   * recovery read), when it holds none yet. Throws MembershipError for a log that does not verify.
   */
  adopt(entries: readonly unknown[]): MembershipState {
    if (this.#state) return this.#state;
    const { state, kept } = fold(null, entries, this.#motebitId);
    if (!state) throw new MembershipError(0, 'chain', 'the log is empty');
    this.#ledger.append(kept);
    this.#state = state;
    return state;
  }

  /**
   * Offers another relay (a move) the entries of this device's log it lacks, in offers it takes; answers how
   * many were sent. The relay checks them like any entries.
   */
  async offerTo(relay: MembershipRelay): Promise<number> {
    return this.#offerMissing(relay, (await this.#read(relay, this.#state?.head.seq ?? -1)).head);
  }

  /** Fetches what the relay has beyond this device's log, verifies and keeps it; re-seeds a relay that lost entries. */
  async refresh(): Promise<MembershipRefresh> {
    const head = this.#state?.head.seq ?? -1;
    const answer = await this.#read(this.#relay, head);
    if (answer.head < head) {
      // The relay ends before this device's log: it lost entries (a restore, a new database). Offer them
      // again, from the relay's end on.
      return { kind: 'reseeded', resent: await this.#offerMissing(this.#relay, answer.head), state: this.#state! };
    }
    let folded: ReturnType<typeof fold>;
    try {
      folded = fold(this.#state, answer.entries, this.#motebitId);
      const end = folded.state?.head.seq ?? -1;
      if (folded.state && end < answer.head) throw new MembershipError(end + 1, 'chain', `the relay says its log ends at entry ${answer.head} but served entries only up to ${end}`);
    } catch (error) {
      if (error instanceof MembershipError) throw new MembershipRelayError(error);
      throw error;
    }
    const { state, kept } = folded;
    if (kept.length > 0) this.#ledger.append(kept);
    if (!state) throw new MembershipRelayError(new MembershipError(0, 'chain', 'the relay holds no membership log for this motebit'));
    this.#state = state;
    return { kind: 'current', added: kept.length, state };
  }

  /** This device's entries after `relayHead`, offered to `relay` in order, in offers it takes (at most MAX_MEMBERSHIP_ENTRIES each). */
  async #offerMissing(relay: MembershipRelay, relayHead: number): Promise<number> {
    const missing = this.#ledger.entries().filter((entry) => entry.seq > relayHead).map((entry) => JSON.parse(entry.text) as unknown);
    for (let i = 0; i < missing.length; i += MAX_MEMBERSHIP_ENTRIES) await relay.offerMembership(missing.slice(i, i + MAX_MEMBERSHIP_ENTRIES));
    return missing.length;
  }

  /** A relay's entries after `head`; a relay that does not know this device at all (a new, empty relay) holds none. */
  async #read(relay: MembershipRelay, head: number): Promise<{ entries: unknown[]; head: number }> {
    try {
      return await relay.membership(head);
    } catch (error) {
      if (this.#state && error instanceof TransportError && error.code === 'unknown_device') return { entries: [], head: -1 };
      throw error;
    }
  }
}

/** `raws` verified onto `state` (from genesis when null), entry by entry; throws MembershipError at the first that breaks a rule. */
function fold(state: MembershipState | null, raws: readonly unknown[], motebitId: string): { state: MembershipState | null; kept: LedgerEntry[] } {
  const kept: LedgerEntry[] = [];
  for (const raw of raws) {
    state = state ? applyEntry(state, raw) : verifyLog([raw], motebitId);
    kept.push({ seq: state.head.seq, hash: state.head.hash, text: canonicalJson(raw) });
  }
  return { state, kept };
}
