// Property: for random histories of a motebit's membership (devices added and removed by random members,
// epochs rotated, the recovery role handed on), the log the members write verifies, and what it says
// matches a plain model kept by this test alone (sets and counters, nothing from shared/membership/log.ts):
// who is a member, which epochs each member can read, which events a removed device may still have written.
// Any change to a valid log (an entry dropped, swapped, duplicated, altered, or signed by someone else) is
// refused, so is a fork, and a forged wrapped key fails the log for its recipient. Seeds: a fixed one and a random one, printed (test/support/property.ts).
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addEntry, genesisEntry, memberFromSecret, recoveryEntry, removeEntry, rotateEntry, type MemberSecret } from '../../shared/membership/author.ts';
import { signEntry, type Entry } from '../../shared/membership/entry.ts';
import { keyIdOf, wrapKey } from '../../shared/membership/epoch-keys.ts';
import { MembershipError, applyEntry, checkExtends, mayWrite, verifyLog, type MembershipState } from '../../shared/membership/log.ts';
import { openKeys } from '../../shared/membership/open-keys.ts';
import { assertAsyncProperty, propertyPlan } from '../support/property.ts';

const PLAN = propertyPlan('membership', 100);
/** The hash a removal names for the event at its cutoff, and a hash of another version of that event. */
const KEPT = 'c'.repeat(64);
const OTHER = 'd'.repeat(64);
const RUNS = PLAN.runs * PLAN.seeds.length;

type Op = { kind: 'add'; by: number } | { kind: 'remove'; by: number; target: number; cutoff: number } | { kind: 'rotate'; by: number } | { kind: 'recovery' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), by: fc.nat(50) }),
  fc.record({ kind: fc.constant('remove' as const), by: fc.nat(50), target: fc.nat(50), cutoff: fc.nat(100) }),
  fc.record({ kind: fc.constant('rotate' as const), by: fc.nat(50) }),
  fc.constant({ kind: 'recovery' as const }),
);

/** The model: plain sets, filled in as the history is written. */
interface Model {
  live: MemberSecret[]; // devices and the recovery key
  recovery: MemberSecret;
  everyone: MemberSecret[];
  /** Per member id: the epoch numbers it was a member during (it may read these, and all before). */
  epochsSeen: Map<string, number>;
  /** Per removed device: [removal position, cutoff]. */
  removed: Map<string, [number, number]>;
  addedAt: Map<string, number>;
  epoch: number;
  keys: Buffer[]; // index = epoch number - 1
}

async function write(ops: readonly Op[]): Promise<{ log: Entry[]; model: Model; state: MembershipState }> {
  const founder = memberFromSecret('device', randomBytes(32), 'founder');
  const recovery = memberFromSecret('recovery', randomBytes(32), null);
  const genesis = await genesisEntry(founder, recovery.key, 1);
  const log: Entry[] = [genesis.entry];
  let state = verifyLog(log);
  const model: Model = {
    live: [founder, recovery],
    recovery,
    everyone: [founder, recovery],
    epochsSeen: new Map([[founder.key.id, 1], [recovery.key.id, 1]]),
    removed: new Map(),
    addedAt: new Map([[founder.key.id, 0], [recovery.key.id, 0]]),
    epoch: 1,
    keys: [genesis.contentKey],
  };
  const key = () => model.keys[model.epoch - 1]!;
  const newEpoch = (contentKey: Buffer) => {
    model.keys.push(contentKey);
    model.epoch++;
    for (const m of model.live) model.epochsSeen.set(m.key.id, model.epoch);
  };
  for (const [i, o] of ops.entries()) {
    const at = 10 + i;
    const by = model.live[o.kind === 'recovery' ? model.live.indexOf(model.recovery) : (o.by % model.live.length)]!;
    let entry: Entry;
    if (o.kind === 'add') {
      if (model.live.length >= 8) continue;
      const member = memberFromSecret('device', randomBytes(32), `d${i}`);
      entry = await addEntry(state, by, member.key, key(), at);
      model.live.push(member);
      model.everyone.push(member);
      model.epochsSeen.set(member.key.id, model.epoch);
      model.addedAt.set(member.key.id, state.head.seq + 1);
    } else if (o.kind === 'remove') {
      const devices = model.live.filter((m) => m.key.role === 'device');
      if (devices.length === 0) continue;
      const target = devices[o.target % devices.length]!;
      const made = await removeEntry(state, by, target.key.id, o.cutoff, key(), at, o.cutoff === 0 ? null : KEPT);
      entry = made.entry;
      model.live = model.live.filter((m) => m !== target);
      model.removed.set(target.key.id, [state.head.seq + 1, o.cutoff]);
      newEpoch(made.contentKey);
    } else if (o.kind === 'rotate') {
      const made = await rotateEntry(state, by, key(), at);
      entry = made.entry;
      newEpoch(made.contentKey);
    } else {
      const successor = memberFromSecret('recovery', randomBytes(32), null);
      entry = await recoveryEntry(state, model.recovery, successor.key, key(), at);
      model.live = [...model.live.filter((m) => m !== model.recovery), successor];
      model.removed.set(model.recovery.key.id, [state.head.seq + 1, 0]);
      model.recovery = successor;
      model.everyone.push(successor);
      model.epochsSeen.set(successor.key.id, model.epoch);
      model.addedAt.set(successor.key.id, state.head.seq + 1);
    }
    log.push(entry);
    state = applyEntry(state, entry);
  }
  return { log, model, state };
}

const refused = (run: () => unknown): boolean => {
  try {
    run();
    return false;
  } catch (error) {
    if (error instanceof MembershipError) return true;
    throw error;
  }
};

describe('membership log, random histories', () => {
  it(`verifies, and says what the model says: members, readable epochs, valid writes (${RUNS} histories)`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
        const { log, model, state } = await write(ops);
        const verified = verifyLog(JSON.parse(JSON.stringify(log)) as unknown[], state.motebitId);
        const live = [...verified.members.values()].filter((m) => m.removedAt === null).map((m) => m.key.id).sort();
        expect(live).toEqual(model.live.map((m) => m.key.id).sort());
        expect(verified.recoveryId).toBe(model.recovery.key.id);
        expect(verified.epochs.map((e) => e.n)).toEqual(model.keys.map((_, i) => i + 1));
        for (const member of model.everyone) {
          const keys = await openKeys(verified, { id: member.key.id, kemPrivateKey: member.kem.privateKey });
          const readable = model.keys.slice(0, model.epochsSeen.get(member.key.id)).map(keyIdOf).sort();
          expect([...keys.keys()].sort()).toEqual(readable);
          if (member.key.role !== 'device') continue;
          const removal = model.removed.get(member.key.id);
          const added = model.addedAt.get(member.key.id)!;
          for (let position = 0; position <= verified.head.seq; position++) {
            for (const deviceSeq of [1, 50, 101]) {
              // At a removed device's cutoff, only the event its removal named (KEPT) is valid.
              for (const hash of [KEPT, OTHER]) {
                const valid = position >= added && (!removal || (position < removal[0] && deviceSeq <= removal[1] && (deviceSeq < removal[1] || hash === KEPT)));
                expect(mayWrite(verified, member.key.id, deviceSeq, position, hash).ok).toBe(valid);
              }
            }
          }
        }
      }),
      PLAN,
    );
  });

  it(`refuses any entry dropped, swapped, duplicated, altered or re-signed by another member (${RUNS} histories)`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(fc.array(op, { minLength: 2, maxLength: 8 }), fc.nat(), fc.nat(), fc.constantFrom('drop', 'swap', 'duplicate', 'alter', 'resign'), async (ops, a, b, change) => {
        const { log, model } = await write(ops);
        if (log.length < 3) return;
        const i = 1 + (a % (log.length - 1));
        const j = 1 + (b % (log.length - 1));
        const changed = [...log];
        if (change === 'drop') {
          if (i === log.length - 1) return; // dropping the last entry leaves a valid, shorter log (checkExtends refuses that)
          changed.splice(i, 1);
        } else if (change === 'swap') {
          if (i === j) return;
          [changed[i], changed[j]] = [changed[j]!, changed[i]!];
        } else if (change === 'duplicate') {
          changed.splice(i, 0, log[i]!);
        } else if (change === 'alter') {
          changed[i] = { ...log[i]!, at: log[i]!.at + 1 };
        } else {
          const signer = model.everyone.find((m) => m.key.id !== log[i]!.signer)!;
          changed[i] = signEntry({ ...log[i]!, signer: signer.key.id } as never, signer.signing) as Entry;
          // Signed by someone else: refused unless that member had every right to sign it too. The model
          // cannot say that cheaply, so only a non-member at that point (removed or not yet added) counts.
          const before = verifyLog(log.slice(0, i));
          const member = before.members.get(signer.key.id);
          if (member && member.removedAt === null && (log[i]!.kind !== 'recovery' || signer.key.id === before.recoveryId)) return;
        }
        expect(refused(() => verifyLog(changed))).toBe(true);
      }),
      PLAN,
    );
  });

  it(`refuses a fork: a log served later that diverges from the one a device verified (${RUNS} histories)`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 8 }), fc.nat(), fc.nat(), async (ops, at, by) => {
        const { log, model, state } = await write(ops);
        // Another history from entry k on: a member as of k writes a different entry k + 1.
        if (log.length < 2) return;
        const k = at % (log.length - 1); // the original history has an entry k + 1 of its own
        const base = verifyLog(log.slice(0, k + 1));
        const members = model.everyone.filter((m) => base.members.get(m.key.id)?.removedAt === null && m.key.role === 'device');
        if (members.length === 0) return;
        const signer = members[by % members.length]!;
        const keys = await openKeys(base, { id: signer.key.id, kemPrivateKey: signer.kem.privateKey });
        const { entry: other } = await rotateEntry(base, signer, keys.get(base.epochs.at(-1)!.keyId)!, 999_999);
        const forked = applyEntry(base, other);
        expect(refused(() => checkExtends(state, forked))).toBe(true);
        // And the other way round: a device that holds the fork refuses the original history.
        expect(refused(() => checkExtends(forked, state))).toBe(true);
      }),
      PLAN,
    );
  });

  it(`a forged wrapped key fails the log for its recipient, whoever signs it (${RUNS} histories)`, async () => {
    await assertAsyncProperty(
      fc.asyncProperty(fc.array(op, { minLength: 0, maxLength: 8 }), fc.nat(), async (ops, pick) => {
        const { log, model } = await write(ops);
        // The last entry: a wrap in it is replaced by a wrap of another key, for the same member, epoch and
        // key id, and the entry is signed again by its own signer (a relay cannot sign; a member could).
        const last = log.at(-1)!;
        const signer = model.everyone.find((m) => m.key.id === last.signer)!;
        const before = log.length === 1 ? null : verifyLog(log.slice(0, -1));
        let forged: Entry;
        let recipient: string;
        if ('epoch' in last) {
          const ids = Object.keys(last.epoch.wraps);
          recipient = ids[pick % ids.length]!;
          const member = model.everyone.find((m) => m.key.id === recipient)!;
          const wrap = await wrapKey(randomBytes(32), member.key.kem_key, { recipientId: recipient, epoch: last.epoch.n, keyId: last.epoch.key_id });
          forged = { ...last, epoch: { ...last.epoch, wraps: { ...last.epoch.wraps, [recipient]: wrap } } } as Entry;
        } else {
          recipient = last.member.id;
          const epoch = before!.epochs.at(-1)!;
          forged = { ...last, wrap: await wrapKey(randomBytes(32), last.member.kem_key, { recipientId: recipient, epoch: epoch.n, keyId: epoch.keyId }) } as Entry;
        }
        const { sig: _sig, ...unsigned } = forged;
        const resigned = signEntry(unsigned as never, signer.signing) as Entry;
        const state = before ? applyEntry(before, resigned) : verifyLog([resigned]);
        const member = model.everyone.find((m) => m.key.id === recipient)!;
        await expect(openKeys(state, { id: recipient, kemPrivateKey: member.kem.privateKey })).rejects.toThrow(MembershipError);
      }),
      PLAN,
    );
  });
});
