// The content keys one member can read, from a verified membership state: every wrap addressed to it must
// open to the key its epoch names (a forged or damaged wrap fails the whole log for this member), and from
// the newest epoch it holds, each epoch's chained key opens the one before, down to the first.
import { openChainedKey, unwrapKey } from './epoch-keys.ts';
import { MembershipError, epochAt, type EpochState, type MembershipState } from './log.ts';

export interface KeyReader {
  readonly id: string;
  /** Raw X25519 private key. */
  readonly kemPrivateKey: Uint8Array;
}

/** Content keys by key id, newest epoch this member was given down to the first; empty if it was given none. */
export async function openKeys(state: MembershipState, me: KeyReader): Promise<Map<string, Buffer>> {
  const given = new Map<number, Buffer>(); // epoch n -> key, from wraps addressed to me
  const member = state.members.get(me.id);
  const take = async (epoch: EpochState, wrap: Parameters<typeof unwrapKey>[0], at: number): Promise<void> => {
    const key = await unwrapKey(wrap, me.kemPrivateKey, { recipientId: me.id, epoch: epoch.n, keyId: epoch.keyId });
    if (!key) throw new MembershipError(at, 'epoch', `the key of epoch ${epoch.n} wrapped for ${me.id} does not open to the key the log names`);
    given.set(epoch.n, key);
  };
  if (member?.joinWrap) await take(epochAt(state, member.addedAt), member.joinWrap, member.addedAt);
  for (const epoch of state.epochs) {
    const wrap = epoch.epoch.wraps[me.id];
    if (wrap) await take(epoch, wrap, epoch.since);
  }
  const keys = new Map<string, Buffer>();
  const newest = Math.max(-1, ...given.keys());
  if (newest < 0) return keys;
  let key = given.get(newest)!;
  for (let i = state.epochs.findIndex((e) => e.n === newest); i >= 0; i--) {
    const epoch = state.epochs[i]!;
    keys.set(epoch.keyId, key);
    if (i === 0) break;
    const { prev_key: chained, prev_key_id: prevId } = epoch.epoch;
    const prev = chained && prevId ? openChainedKey(key, epoch.n, chained, prevId) : null;
    if (!prev) throw new MembershipError(epoch.since, 'epoch', `the key of epoch ${epoch.n} does not open the key of epoch ${epoch.n - 1}`);
    key = prev;
  }
  return keys;
}
