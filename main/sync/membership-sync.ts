// A device keeping its motebit's membership log (docs/keys.md): it folds every entry the relay serves onto
// the log it verified before and stores only what verifies, so whatever the relay serves, the device's
// view of who is a member is one it checked itself. A relay that lost entries (it ends before this
// device's log) is sent them again, as the sync engine re-seeds lost events; a relay that serves another
// history (a fork, an entry that breaks a rule) is refused, and nothing it served is kept.
import { canonicalJson } from '../../shared/encoding.ts';
import { MAX_MEMBERSHIP_ENTRIES } from '../../shared/relay-api.ts';
import { MembershipError, applyEntry, verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import type { MembershipLedger } from '../store/membership-ledger.ts';
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
    let state: MembershipState | null = null;
    const kept: { seq: number; hash: string; text: string }[] = [];
    for (const raw of entries) {
      state = state ? applyEntry(state, raw) : verifyLog([raw], this.#motebitId);
      kept.push({ seq: state.head.seq, hash: state.head.hash, text: canonicalJson(raw) });
    }
    if (!state) throw new MembershipError(0, 'chain', 'the log is empty');
    this.#ledger.append(kept);
    this.#state = state;
    return state;
  }

  /** Fetches what the relay has beyond this device's log, verifies and keeps it; re-seeds a relay that lost entries. */
  async refresh(): Promise<MembershipRefresh> {
    const head = this.#state?.head.seq ?? -1;
    const answer = await this.#read(head);
    if (answer.head < head) {
      // The relay ends before this device's log: it lost entries (a restore, a new database). Offer them
      // again, from the relay's end on; the relay checks them like any entries.
      const missing = this.#ledger.entries().filter((entry) => entry.seq > answer.head).map((entry) => JSON.parse(entry.text) as unknown);
      // In offers the relay takes (at most MAX_MEMBERSHIP_ENTRIES each), in order.
      for (let i = 0; i < missing.length; i += MAX_MEMBERSHIP_ENTRIES) await this.#relay.offerMembership(missing.slice(i, i + MAX_MEMBERSHIP_ENTRIES));
      return { kind: 'reseeded', resent: missing.length, state: this.#state! };
    }
    let state = this.#state;
    const kept: { seq: number; hash: string; text: string }[] = [];
    try {
      for (const raw of answer.entries) {
        state = state ? applyEntry(state, raw) : verifyLog([raw], this.#motebitId);
        kept.push({ seq: state.head.seq, hash: state.head.hash, text: canonicalJson(raw) });
      }
      if (state && state.head.seq < answer.head) throw new MembershipError(state.head.seq + 1, 'chain', `the relay says its log ends at entry ${answer.head} but served entries only up to ${state.head.seq}`);
    } catch (error) {
      if (error instanceof MembershipError) throw new MembershipRelayError(error);
      throw error;
    }
    if (kept.length > 0) this.#ledger.append(kept);
    if (!state) throw new MembershipRelayError(new MembershipError(0, 'chain', 'the relay holds no membership log for this motebit'));
    this.#state = state;
    return { kind: 'current', added: kept.length, state };
  }

  /** The relay's entries after `head`; a relay that does not know this device at all (a new, empty relay) holds none. */
  async #read(head: number): Promise<{ entries: unknown[]; head: number }> {
    try {
      return await this.#relay.membership(head);
    } catch (error) {
      if (this.#state && error instanceof TransportError && error.code === 'unknown_device') return { entries: [], head: -1 };
      throw error;
    }
  }
}
