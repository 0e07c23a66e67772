// The hash-chain rules (shared/chain.ts) that the tamper suite does not reach: a writer that holds its key
// and still breaks a rule (a Lamport time that does not increase; a membership position in a motebit that
// has no membership log), a copy of an event that differs from the one already applied, which copy of an
// event is kept when it arrives twice, and the words of a gap. Real stores; events made and sealed as a
// device makes them.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChainError, identityAuthority, planChains, type ChainContext } from '../shared/chain.ts';
import { hashEvent, sealEvent, unsealed } from '../shared/event.ts';
import { GENESIS_HASH, type SealedEvent } from '../shared/portable/event.ts';
import { newMotebit, openDevice, pushAll, tempDir, type TestDevice, type TestMotebit } from './support/motebit.ts';

let dir: ReturnType<typeof tempDir>;
let motebit: TestMotebit;
let writer: TestDevice;
let reader: TestDevice;
let batch: SealedEvent[];

beforeEach(() => {
  dir = tempDir('chain-rules');
  motebit = newMotebit();
  writer = openDevice(motebit, dir.path, 'writer');
  reader = openDevice(motebit, dir.path, 'reader');
  for (let i = 1; i <= 4; i++) writer.store.put(`memory/${i}`, { n: i });
  batch = pushAll(writer); // four events, the last sealed
});
afterEach(() => {
  writer.store.close();
  reader.store.close();
  dir.remove();
});

/** The writer's events with `change` applied, linked again and sealed again with the writer's own key: a valid chain that breaks a rule. */
function rewritten(change: (event: SealedEvent) => SealedEvent): SealedEvent[] {
  let prev = GENESIS_HASH;
  return batch.map((original, i) => {
    const event = { ...change(unsealed(original)), prev };
    prev = hashEvent(event);
    return i === batch.length - 1 ? sealEvent(event, writer.credentials) : event;
  });
}

function refusal(events: unknown[]): ChainError {
  try {
    reader.store.applyRemote(events);
  } catch (error) {
    if (error instanceof ChainError) return error;
    throw error;
  }
  throw new Error('the batch was applied');
}

describe('chain rules', () => {
  it('a Lamport time that does not increase is refused, equal as well as lower, even in a well-sealed chain', () => {
    for (const l of [batch[1]!.clock.l, batch[0]!.clock.l]) {
      const events = rewritten((e) => (e.device_seq === 3 ? { ...e, clock: { ...e.clock, l } } : e));
      const error = refusal(events);
      expect([error.name, error.code, error.message]).toEqual(['ChainError', 'clock_regressed', `event 3 of device ${writer.deviceId} has a Lamport time that does not increase`]);
      expect([error.deviceId, error.deviceSeq]).toEqual([writer.deviceId, 3]);
      expect(reader.store.eventCount()).toBe(0);
    }
    expect(reader.store.applyRemote(rewritten((e) => e))).toMatchObject({ applied: 4 }); // the control: rewriting alone changes nothing
  });

  it('a motebit without a membership log refuses an event that names a log position', () => {
    const events = rewritten((e) => (e.device_seq === 3 ? { ...e, m: 1 } : e));
    const error = refusal(events);
    expect([error.code, error.message]).toEqual(['not_member', `event 3 of device ${writer.deviceId} is refused: it names a membership log position, but this motebit has no membership log`]);
  });

  it('a copy of an applied event that differs from it is a fork, not a duplicate', () => {
    expect(reader.store.applyRemote(batch)).toMatchObject({ applied: 4 });
    const other = { ...batch[1]!, payload: { n: 'other' } };
    const error = refusal([other]);
    expect([error.code, error.message]).toEqual(['fork', `event 2 of device ${writer.deviceId} differs from the one already applied`]);
    expect(reader.store.applyRemote([batch[1]!])).toMatchObject({ applied: 0 }); // the same copy again is a duplicate
  });

  it('of two copies of one event, the sealed one is kept, whichever arrives first', () => {
    const last = batch.at(-1)!;
    const bare = unsealed(last); // the same event without its seal: same hash, so not a fork
    expect(reader.store.applyRemote([...batch, bare])).toMatchObject({ applied: 4 });
    const other = openDevice(motebit, dir.path, 'other');
    try {
      expect(other.store.applyRemote([bare, ...batch])).toMatchObject({ applied: 4 });
      expect(other.store.heldCount()).toBe(0);
    } finally {
      other.store.close();
    }
  });

  it('a gap names the event that is missing and the one after it', () => {
    const error = refusal(batch.filter((e) => e.device_seq !== 3));
    expect([error.code, error.message]).toEqual(['missing_event', `event 3 of device ${writer.deviceId} is missing before 4`]);
  });

  it('planChains needs no arrival texts: without them every event is hashed from its canonical form', () => {
    const ctx: ChainContext = { motebitId: motebit.motebitId, authority: identityAuthority(motebit.identity.publicKey), head: () => undefined, appliedHash: () => undefined };
    const plan = planChains(batch, ctx);
    expect(plan.verified.map((h) => [h.event.device_seq, h.hash])).toEqual(batch.map((e) => [e.device_seq, hashEvent(e)]));
    expect([plan.unsealed.length, plan.duplicates]).toEqual([0, 0]);
  });
});
