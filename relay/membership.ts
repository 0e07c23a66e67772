// The relay's side of membership logs (docs/keys.md): it stores and serves each motebit's log, and checks
// every entry offered against the rules (shared/membership/log.ts, public keys only) before storing it, so
// a relay never holds a log its devices would refuse. What the log decides about devices becomes device
// rows: an added device can authenticate like any device, a removed one is revoked at once (its sockets
// closed, its tokens refused). Devices still verify the whole log themselves: this is defence in depth,
// not what they trust.
import { canonicalJson, fromBase64Url } from '../shared/encoding.ts';
import { MembershipError, applyEntry, startLog, type MembershipState } from '../shared/membership/log.ts';
import type { Entry } from '../shared/membership/entry.ts';
import type { MembershipAppend, RelayStore, StoredEntry } from './store.ts';

/** Verified logs kept in memory, by motebit (a log is re-read from its cached head on, so other instances' appends are seen). */
const CACHE_LIMIT = 1000;

export type OfferOutcome =
  | { kind: 'appended'; head: number }
  /** The log moved on meanwhile (another device, another instance): nothing was stored. */
  | { kind: 'conflict'; head: number }
  /** An entry breaks a rule: nothing was stored. */
  | { kind: 'refused'; error: MembershipError };

export class MembershipKeeper {
  readonly #store: RelayStore;
  readonly #cache = new Map<string, MembershipState>();

  constructor(store: RelayStore) {
    this.#store = store;
  }

  /** The motebit's log as stored, verified; null when it has none. */
  async state(motebitId: string): Promise<MembershipState | null> {
    const cached = this.#cache.get(motebitId);
    const stored = await this.#store.membership(motebitId, cached?.head.seq ?? -1);
    let state = cached ?? null;
    for (const entry of stored) state = state ? applyEntry(state, JSON.parse(entry.text)) : startLog(JSON.parse(entry.text));
    if (state) this.#remember(motebitId, state);
    return state;
  }

  /** The stored entries after `after` (-1: all), as JSON values. */
  async entries(motebitId: string, after: number): Promise<unknown[]> {
    return (await this.#store.membership(motebitId, after)).map((entry) => JSON.parse(entry.text) as unknown);
  }

  /** Checks `entries` against the stored log and stores them with what they change among devices. */
  async offer(motebitId: string, entries: readonly unknown[], now: number): Promise<OfferOutcome> {
    const current = await this.state(motebitId);
    let state = current;
    const stored: StoredEntry[] = [];
    const added: MembershipAppend['added'] = [];
    const removed: string[] = [];
    try {
      for (const raw of entries) {
        if (state === null) {
          state = startLog(raw);
          if (state.motebitId !== motebitId) throw new MembershipError(0, 'motebit', `this genesis founds motebit ${state.motebitId}, not ${motebitId}`);
        } else {
          state = applyEntry(state, raw);
        }
        const entry = raw as Entry;
        stored.push({ seq: state.head.seq, hash: state.head.hash, text: canonicalJson(entry) });
        // Every member gets a row (the recovery key too: it signs in to read the log and to add a device
        // when all are lost); a member removed or replaced is revoked.
        if (entry.kind === 'genesis') {
          for (const member of entry.members) added.push({ deviceId: member.id, key: fromBase64Url(member.sign_key), name: member.name });
        } else if (entry.kind === 'add') {
          added.push({ deviceId: entry.member.id, key: fromBase64Url(entry.member.sign_key), name: entry.member.name });
        } else if (entry.kind === 'remove') {
          removed.push(entry.member_id);
        } else if (entry.kind === 'recovery') {
          removed.push(entry.signer);
          added.push({ deviceId: entry.member.id, key: fromBase64Url(entry.member.sign_key), name: entry.member.name });
        }
      }
    } catch (error) {
      if (error instanceof MembershipError) return { kind: 'refused', error };
      throw error;
    }
    if (!state || stored.length === 0) return { kind: 'refused', error: new MembershipError(0, 'malformed', 'no entries were offered') };
    const outcome = await this.#store.appendMembership(motebitId, { entries: stored, added, removed, now });
    if (outcome.kind === 'conflict') {
      this.#cache.delete(motebitId);
      return outcome;
    }
    this.#remember(motebitId, state);
    return outcome;
  }

  #remember(motebitId: string, state: MembershipState): void {
    this.#cache.delete(motebitId);
    this.#cache.set(motebitId, state);
    if (this.#cache.size > CACHE_LIMIT) this.#cache.delete(this.#cache.keys().next().value!);
  }
}
