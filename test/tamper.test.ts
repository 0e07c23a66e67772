// A relay (or anyone between devices) that alters, forges, reorders or drops events is detected, and
// nothing of the bad batch is applied. Then the chain rules (shared/chain.ts) a writer that holds its key
// can still break (a Lamport time that does not increase; a membership position in a motebit without a
// log), a copy that differs from an applied event, which copy of an event is kept when it arrives twice,
// and the words of a gap.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChainError, identityAuthority, planChains, type ChainContext } from '../shared/chain.ts';
import { canonicalJson, toBase64Url } from '../shared/encoding.ts';
import { signingKeyFromSeed, randomSeed } from '../shared/crypto.ts';
import { certifyDevice, hashEvent, sealEvent, unsealed } from '../shared/event.ts';
import { GENESIS_HASH, type SealedEvent } from '../shared/portable/event.ts';
import { newDeviceKey, newMotebit, openDevice, pushAll, tempDir, type TestDevice, type TestMotebit } from './support/motebit.ts';
import { refusal as refusalOf } from './support/refusal.ts';

let dir: ReturnType<typeof tempDir>;
let motebit: TestMotebit;
let writer: TestDevice;
let reader: TestDevice;
let batch: SealedEvent[];

beforeEach(() => {
  dir = tempDir('tamper');
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

function rejects(events: unknown[], code: string): void {
  let error: unknown;
  try {
    reader.store.applyRemote(events);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(ChainError);
  expect((error as ChainError).code).toBe(code);
  expect((error as ChainError).message).toMatch(/device dv_|motebit|malformed/);
  // Nothing of the bad batch was applied or held.
  expect(reader.store.eventCount()).toBe(0);
  expect(reader.store.heldCount()).toBe(0);
  expect(reader.store.state()).toEqual([]);
}

describe('tampering is detected and nothing is applied', () => {
  it('the untouched batch applies (the control)', () => {
    expect(reader.store.applyRemote(batch)).toMatchObject({ applied: 4 });
  });

  it('a modified payload in the middle of the chain', () => {
    const altered = batch.map((e) => (e.device_seq === 2 ? { ...e, payload: { n: 'forged' } } : e));
    rejects(altered, 'broken_chain');
  });

  it('a modified payload on the sealed event', () => {
    const altered = batch.map((e) => (e.device_seq === 4 ? { ...e, payload: { n: 'forged' } } : e));
    rejects(altered, 'bad_signature');
  });

  it('a forged signature', () => {
    const last = batch[3]!;
    const forged = { ...last, seal: { ...last.seal!, sig: toBase64Url(new Uint8Array(64).fill(7)) } };
    rejects([...batch.slice(0, 3), forged], 'bad_signature');
  });

  it('a seal by a device key the motebit identity never certified', () => {
    const intruder = signingKeyFromSeed(randomSeed());
    const otherMotebit = newMotebit();
    const resealed = sealEvent(batch[3]!, { deviceKey: intruder, cert: certifyDevice(otherMotebit.identity, motebit.motebitId, intruder.publicKey) });
    rejects([...batch.slice(0, 3), resealed], 'device_key_mismatch');
  });

  it('a new device certified by someone else than the motebit identity', () => {
    const { deviceId, credentials } = newDeviceKey(newMotebit()); // certified by another identity
    const fake: SealedEvent = { ...batch[0]!, device_id: deviceId, clock: { l: 1, v: { [deviceId]: 1 } } };
    const sealed = sealEvent(fake, { ...credentials, cert: certifyDevice(newMotebit().identity, motebit.motebitId, credentials.deviceKey.publicKey) });
    rejects([sealed], 'bad_device_cert');
  });

  it('two events of the chain swapped in position', () => {
    const [e1, e2, e3, e4] = batch;
    const swapped = [e1!, { ...e3!, device_seq: 2 }, { ...e2!, device_seq: 3 }, e4!];
    rejects(swapped, 'malformed'); // the clock names the writer at its real sequence
    const relinked = [e1!, { ...e3!, device_seq: 2, clock: { ...e3!.clock, v: { ...e3!.clock.v, [writer.deviceId]: 2 } } }, { ...e2!, device_seq: 3, clock: { ...e2!.clock, v: { ...e2!.clock.v, [writer.deviceId]: 3 } } }, e4!];
    rejects(relinked, 'broken_chain');
  });

  it('a missing event in the middle of the chain', () => {
    rejects([batch[0], batch[1], batch[3]], 'missing_event');
  });

  it('two different versions of one event (equivocation)', () => {
    rejects([...batch, { ...batch[1]!, payload: { n: 'other' } }], 'fork');
  });

  it('an event of another motebit', () => {
    const foreign = newMotebit();
    rejects(batch.map((e) => ({ ...e, motebit_id: foreign.motebitId })), 'wrong_motebit');
  });

  it('malformed input, with the field named', () => {
    rejects([...batch.slice(0, 3), { ...batch[3], entity: 42 }], 'malformed');
    rejects([{ ...batch[0], extra: 'field' }], 'malformed');
    rejects(['not an event'], 'malformed');
  });

  it('a bad batch leaves what was applied before intact', () => {
    reader.store.applyRemote(batch.slice(0, 4));
    writer.store.put('memory/5', { n: 5 });
    const [fifth] = pushAll(writer);
    expect(() => reader.store.applyRemote([{ ...fifth!, payload: { n: 'forged' } }])).toThrow(ChainError);
    expect(reader.store.eventCount()).toBe(4);
    expect(reader.store.applyRemote([fifth])).toMatchObject({ applied: 1 });
  });

  it('delivery order inside a batch does not matter', () => {
    expect(reader.store.applyRemote([...batch].reverse())).toMatchObject({ applied: 4 });
    expect(reader.store.stateDigest()).toBe(writer.store.stateDigest());
  });

  it('the arrival texts of unsealed events are hashed as they came: identical result, and a re-encoded text is refused', () => {
    const texts = batch.map((e) => canonicalJson(e));
    expect(reader.store.applyRemote(batch, { texts })).toMatchObject({ applied: 4 });
    expect(reader.store.eventsDigest()).toBe(writer.store.eventsDigest());
  });

  it('a text that is not the canonical form of its event breaks the chain', () => {
    const texts = batch.map((e) => canonicalJson(e));
    texts[1] = JSON.stringify(batch[1], null, 2); // same content, other bytes
    let error: unknown;
    try {
      reader.store.applyRemote(batch, { texts });
    } catch (caught) {
      error = caught;
    }
    expect((error as ChainError).code).toBe('broken_chain');
    expect(reader.store.eventCount()).toBe(0);
  });

  it('a text carrying a forged payload is refused, whatever the parsed event says', () => {
    const texts = batch.map((e) => canonicalJson(e));
    texts[2] = canonicalJson({ ...batch[2]!, payload: { n: 'forged' } });
    expect(() => reader.store.applyRemote(batch, { texts })).toThrow(ChainError);
    expect(reader.store.eventCount()).toBe(0);
  });
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
  return refusalOf(ChainError, () => reader.store.applyRemote(events), 'the batch was applied');
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

  it('every seal present must hold: a second copy of an event with a forged seal fails the batch, whichever copy comes first', () => {
    const last = batch.at(-1)!;
    const forged = { ...last, seal: { ...last.seal!, sig: toBase64Url(new Uint8Array(64).fill(7)) } };
    for (const events of [[...batch, forged], [...batch.slice(0, 3), forged, last]]) {
      const error = refusal(events);
      expect([error.code, error.deviceSeq]).toEqual(['bad_signature', 4]);
      expect(reader.store.eventCount()).toBe(0);
    }
    expect(reader.store.applyRemote([...batch, { ...last, seal: { ...last.seal! } }])).toMatchObject({ applied: 4 }); // an identical second copy is fine
  });

  it('a second copy whose seal differs but holds is checked and accepted', () => {
    const last = batch.at(-1)!;
    // The same signature in another text: 86 characters hold 516 bits for 64 bytes, and a decoder ignores the
    // last 4. The copies' seals differ as texts; both verify.
    const sig = last.seal!.sig;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const retyped = { ...last, seal: { ...last.seal!, sig: sig.slice(0, -1) + alphabet[alphabet.indexOf(sig.at(-1)!) ^ 1] } };
    expect(retyped.seal.sig).not.toBe(sig);
    expect(reader.store.applyRemote([...batch, retyped])).toMatchObject({ applied: 4 });
  });

  it('a second copy differing only in its seal\'s key or certificate is checked too, and named; a copy of an applied event is a duplicate', () => {
    const last = batch.at(-1)!;
    const other = signingKeyFromSeed(randomSeed());
    const withKey = { ...last, seal: { ...last.seal!, key: toBase64Url(other.publicKey) } };
    const error = refusal([...batch, withKey]);
    expect([error.code, error.message, error.deviceSeq]).toEqual(['device_key_mismatch', `event 4 of device ${writer.deviceId} arrived twice, once with an invalid seal (device_key_mismatch)`, 4]);
    const withCert = { ...last, seal: { ...last.seal!, cert: toBase64Url(new Uint8Array(64).fill(3)) } };
    expect(refusal([...batch, withCert]).code).toBe('bad_device_cert');
    expect(reader.store.eventCount()).toBe(0);
    expect(reader.store.applyRemote(batch)).toMatchObject({ applied: 4 });
    // Served again later, with a forged second copy: both are copies of an applied event, compared by hash.
    const forged = { ...last, seal: { ...last.seal!, sig: toBase64Url(new Uint8Array(64).fill(7)) } };
    expect(reader.store.applyRemote([last, forged])).toMatchObject({ applied: 0 });
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
