// Snapshots at the store level (issue 12): a new device starts from one, conflicts stay exact across it,
// pruning keeps what can still matter and drops the rest (deleted values included), and a snapshot that
// was tampered with is refused with a clear error. Real SQLite files, real keys.
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../shared/encoding.ts';
import { newSnapshotId } from '../shared/ids.ts';
import { coversOf, sealSnapshot, SnapshotError, verifySnapshot, type SealedSnapshot, type SnapshotContent } from '../shared/snapshot/content.ts';
import { identitySnapshotSigner } from '../shared/snapshot/signer.ts';
import { stableThrough } from '../shared/snapshot/retain.ts';
import Database from 'better-sqlite3';
import { randomSeed, signingKeyFromSeed } from '../shared/crypto.ts';
import { deviceLab, newMotebit, pushAll, type TestDevice } from './support/motebit.ts';
import { refusal } from './support/refusal.ts';

const lab = deviceLab('snapshot');

function snapshotOf(device: TestDevice, writers: { deviceId: string; seen: Record<string, number> }[] = []): SnapshotContent {
  return device.store.snapshots.content({ snapshotId: newSnapshotId(), createdAt: 1_000, writers, relay: null });
}

function verify(sealed: unknown, device: TestDevice) {
  const motebitId = device.store.identity.motebitId;
  return verifySnapshot(JSON.parse(JSON.stringify(sealed)), motebitId, identitySnapshotSigner(motebitId, device.store.identity.identityPublicKey!));
}

function joinFrom(writer: TestDevice, content: SnapshotContent, name: string): TestDevice {
  const joiner = lab.device(name);
  joiner.store.snapshots.adopt(verify(sealSnapshot(content, writer.credentials), joiner), 2_000);
  return joiner;
}

const conflictsOf = (device: TestDevice) =>
  device.store
    .conflicts({ filter: 'all' })
    .map((c) => `${c.entity}|${c.loser.eventId}|${c.winner.eventId}|${c.resolvedBy}`)
    .sort();

const eventRows = (device: TestDevice) => [...device.store.events()];

describe('joining from a snapshot', () => {
  it('a new device holds the state, conflicts and digests, writes at once, and then takes only newer events', () => {
    const a = lab.device('a');
    const b = lab.device('b');
    for (let i = 0; i < 20; i++) a.store.put('memory/1', { i });
    for (let i = 0; i < 30; i++) a.store.put('memory/3', { i }); // history no conflict involves
    b.store.put('memory/1', { from: 'b' }); // concurrent with all of a's: 20 conflicts
    b.store.applyRemote(pushAll(a));
    a.store.applyRemote(pushAll(b));
    expect(a.store.conflicts({ filter: 'all' })).toHaveLength(20);

    const content = snapshotOf(a, [{ deviceId: b.deviceId, seen: b.store.frontier().heads }]);
    const c = joinFrom(a, content, 'c');
    expect(c.store.stateDigest()).toBe(a.store.stateDigest());
    expect(c.store.eventsDigest()).toBe(a.store.eventsDigest());
    expect(conflictsOf(c)).toEqual(conflictsOf(a));
    expect(c.store.get('memory/1')?.value).toEqual(a.store.get('memory/1')?.value);
    // Each entity's state as the writer holds it, its conflict count and writers included, and the claims.
    expect(c.store.state()).toEqual(a.store.state());
    expect(c.store.missingEvents()).toEqual(a.store.missingEvents());
    // A store that holds events takes no snapshot: a snapshot only starts a new device.
    expect(() => a.store.snapshots.adopt(verify(sealSnapshot(content, a.credentials), a), 3_000)).toThrow(/already holds events/);
    // The snapshot kept what can still matter (the winners, the conflicts' sides), not the whole history.
    expect(content.events).toHaveLength(20 + 1 + 1);

    // The whole log arriving again (a relay that did not compact) changes nothing: copies are duplicates.
    const again = c.store.applyRemote([...eventRows(a)]);
    expect(again.applied).toBe(0);
    expect(c.store.stateDigest()).toBe(a.store.stateDigest());
    const written = c.store.put('memory/2', 'from c'); // usable before any older history
    expect(written.clock.v[a.deviceId]).toBe(50);
    a.store.applyRemote(pushAll(c));
    expect(a.store.get('memory/2')?.value).toBe('from c');
    // The joiner knows memory/1 has conflicts: its own next write there, which saw both sides, settles all 20.
    const settling = c.store.put('memory/1', 'settled on c');
    const settled = c.store.conflicts({ filter: 'all' }).filter((conflict) => conflict.entity === 'memory/1');
    expect(settled.map((conflict) => conflict.resolvedBy)).toEqual(Array.from({ length: 20 }, () => settling.event_id));
  });

  it('a device offline since before the snapshot writes concurrently: the conflict is found on the joiner as on the others', () => {
    const a = lab.device('a');
    const offline = lab.device('offline');
    offline.store.put('memory/1', 'written offline'); // never sent, never seen by a
    a.store.put('memory/1', 'first');
    a.store.put('memory/1', 'second');
    a.store.delete('memory/1');
    a.store.put('memory/1', 'latest');
    // a knows the offline device may write (it is a member) but not what it has seen.
    const c = joinFrom(a, snapshotOf(a, [{ deviceId: offline.deviceId, seen: {} }]), 'c');
    const late = pushAll(offline);
    a.store.applyRemote(late);
    c.store.applyRemote(late);
    offline.store.applyRemote(pushAll(a));
    expect(conflictsOf(a)).toHaveLength(4); // concurrent with each of a's four writes
    expect(conflictsOf(c)).toEqual(conflictsOf(a));
    expect(conflictsOf(offline)).toEqual(conflictsOf(a));
    expect(c.store.stateDigest()).toBe(a.store.stateDigest());
  });

  it('a joiner knows what the writers had seen that nobody has delivered yet (the claims), as the snapshot\'s maker did', () => {
    const a = lab.device('a');
    const b = lab.device('b');
    const d = lab.device('d');
    for (let i = 0; i < 3; i++) b.store.put(`memory/${i}`, i);
    const early = pushAll(b);
    for (let i = 3; i < 5; i++) b.store.put(`memory/${i}`, i);
    d.store.applyRemote([...early, ...pushAll(b)]);
    d.store.put('memory/d', 'd had seen all five of b');
    a.store.applyRemote([...early, ...pushAll(d)]); // b's 4 and 5 have not reached a
    expect(a.store.missingEvents()).toEqual([{ deviceId: b.deviceId, held: 3, claimed: 5 }]);
    const c = joinFrom(a, snapshotOf(a), 'c');
    expect(c.store.missingEvents()).toEqual([{ deviceId: b.deviceId, held: 3, claimed: 5 }]);
  });

  it("the device making a snapshot has seen everything it holds: another writer's losers it holds are stable", () => {
    const a = lab.device('a');
    const b = lab.device('b');
    a.store.put('memory/0', 'from a'); // a's clock then had seen nothing of b
    b.store.applyRemote(pushAll(a));
    for (let i = 0; i < 10; i++) b.store.put('memory/1', { i });
    a.store.applyRemote(pushAll(b));
    // a's own later writes follow all of b's ten; b's own follow its own: only the winners are kept.
    const content = snapshotOf(a);
    expect(content.events.map((text) => (JSON.parse(text) as { entity: string }).entity).sort()).toEqual(['memory/0', 'memory/1']);
  });

  it("an acknowledgement bounds a device's later writes only when none of its earlier ones is missing", () => {
    const a = lab.device('a');
    const d = lab.device('d');
    d.store.put('memory/1', 'd wrote this before seeing a'); // not yet delivered to a
    const early = pushAll(d);
    a.store.put('memory/1', 'old');
    a.store.put('memory/1', 'new');
    d.store.applyRemote(pushAll(a)); // d has now applied a's writes and acknowledges them
    const ack = { deviceId: d.deviceId, seen: d.store.frontier().heads };
    // a holds nothing of d, so d's write 1 may still arrive, concurrent with a's "old": it must be kept.
    const content = snapshotOf(a, [ack]);
    const c = joinFrom(a, content, 'c');
    c.store.applyRemote(early);
    a.store.applyRemote(early);
    expect(conflictsOf(c)).toEqual(conflictsOf(a));
    expect(conflictsOf(a)).toHaveLength(2);
  });
});

describe('pruning', () => {
  it("drops what every device has seen, keeps winners and conflicts, and a deleted entity's old values are gone", () => {
    const a = lab.device('a');
    const b = lab.device('b');
    for (let i = 0; i < 50; i++) a.store.put(`memory/${i % 5}`, { secret: `value ${i}` });
    a.store.delete('memory/0');
    b.store.put('memory/1', 'b'); // a conflict with a's writes to memory/1
    b.store.applyRemote(pushAll(a));
    a.store.applyRemote(pushAll(b));
    const before = { state: a.store.stateDigest(), conflicts: conflictsOf(a), events: eventRows(a).length };
    const content = snapshotOf(a, [{ deviceId: b.deviceId, seen: b.store.frontier().heads }]);
    const dropped = a.store.snapshots.prune(coversOf(content), [{ deviceId: b.deviceId, seen: b.store.frontier().heads }]);
    expect(dropped).toBeGreaterThan(0);
    expect(eventRows(a).length).toBe(before.events - dropped);
    // What was dropped may never arrive again: its writer's floor is raised over it.
    const keptSeqs = new Set(eventRows(a).filter((e) => e.device_id === a.deviceId).map((e) => e.device_seq));
    const droppedSeqs = Array.from({ length: 51 }, (_, i) => i + 1).filter((seq) => !keptSeqs.has(seq));
    expect(droppedSeqs).toHaveLength(dropped);
    expect(a.store.floor(a.deviceId)).toBeGreaterThanOrEqual(Math.max(...droppedSeqs));
    expect(a.store.stateDigest()).toBe(before.state);
    expect(conflictsOf(a)).toEqual(before.conflicts);
    // memory/0 was deleted: nothing of its values is left, only the tombstone.
    const memory0 = eventRows(a).filter((e) => e.entity === 'memory/0');
    expect(memory0.map((e) => e.op)).toEqual(['delete']);
    // The state and every conflict still read as before, and later events apply on top.
    b.store.put('memory/2', 'after');
    a.store.applyRemote(pushAll(b));
    expect(a.store.get('memory/2')?.value).toBe('after');
  });

  it("a settled conflict of a deleted entity keeps its record but not its values, on the pruned device and on one that joins from it", () => {
    const a = lab.device('a');
    const b = lab.device('b');
    a.store.put('memory/secret', { secret: 'from a' });
    b.store.put('memory/secret', { secret: 'from b' }); // concurrent: a conflict
    b.store.applyRemote(pushAll(a));
    a.store.applyRemote(pushAll(b));
    a.store.delete('memory/secret'); // seen both: settles it, and deletes the entity
    b.store.applyRemote(pushAll(a));
    const acks = [{ deviceId: b.deviceId, seen: b.store.frontier().heads }];
    const [before] = a.store.conflicts({ filter: 'all' });
    expect(before).toMatchObject({ resolvedBy: expect.any(String), loser: { kept: true }, winner: { kept: true } });
    a.store.snapshots.prune(coversOf(snapshotOf(a, acks)), acks);

    const [after] = a.store.conflicts({ filter: 'all' });
    expect(after).toMatchObject({ id: before!.id, resolvedBy: before!.resolvedBy, winReason: before!.winReason });
    expect(after!.loser).toEqual({ eventId: before!.loser.eventId, deviceId: before!.loser.deviceId, kept: false, op: null, value: null, writtenAt: null });
    expect(after!.winner.kept).toBe(false);
    expect(JSON.stringify([...a.store.events()])).not.toMatch(/from a|from b/);
    expect(() => a.store.resolveConflicts([after!.id], 'other')).toThrow(/no longer kept/);
    expect(() => a.store.resolveConflict(after!.id, after!.loser.eventId)).toThrow(/^that value of memory\/secret is no longer kept: the entity was deleted and its old history dropped$/);
    // A device that joins from the pruned device's snapshot records the same conflict, without the values.
    const content = snapshotOf(a, acks);
    expect(JSON.stringify(content)).not.toMatch(/from a|from b/);
    const c = joinFrom(a, content, 'c');
    expect(conflictsOf(c)).toEqual(conflictsOf(a));
    expect(c.store.conflicts({ filter: 'all' })[0]!.winner.kept).toBe(false);
  });

  it('a settled conflict of a deleted entity may keep one side and not the other: a snapshot of that verifies and is joined', () => {
    const x = lab.device('x');
    const y = lab.device('y');
    const z = lab.device('z');
    x.store.put('k', 'x');
    const first = pushAll(x);
    y.store.put('k', 'y'); // concurrent with x's: a conflict
    x.store.applyRemote(pushAll(y));
    z.store.applyRemote(first); // z has seen x's value, not y's
    x.store.delete('k'); // seen both: settles the conflict, and deletes the entity
    y.store.applyRemote(first);
    y.store.applyRemote(pushAll(x));
    const writers = [{ deviceId: y.deviceId, seen: y.store.frontier().heads }, { deviceId: z.deviceId, seen: z.store.frontier().heads }];
    const content = snapshotOf(x, writers);
    // x's value is stable (every device had seen it) and dropped; y's is not (z had not seen it) and kept.
    const held = content.events.map((text) => JSON.parse(text) as { device_id: string; device_seq: number });
    expect(held.map((e) => `${e.device_id === x.deviceId ? 'x' : 'y'}${e.device_seq}`).sort()).toEqual(['x2', 'y1']);
    expect(content.conflicts).toHaveLength(1);
    const joiner = joinFrom(x, content, 'j');
    expect(conflictsOf(joiner)).toEqual(conflictsOf(x));
    expect(joiner.store.stateDigest()).toBe(x.store.stateDigest());
  });

  it('never drops an event of its own the relay has not acknowledged', () => {
    const a = lab.device('a');
    for (let i = 0; i < 10; i++) a.store.put('memory/1', i);
    const dropped = a.store.snapshots.prune(coversOf(snapshotOf(a)));
    expect(dropped).toBe(0);
    expect(a.store.unpushed(100)).toHaveLength(10);
    pushAll(a);
    expect(a.store.snapshots.prune(coversOf(snapshotOf(a)))).toBe(9); // all but the winner
  });

  describe("what a writer's newest event says it had seen counts as much as an acknowledgement", () => {
    /** a writes memory/1 five times, b applies them and writes memory/2 once (its clock: a's 5 seen); a holds all, pushed. */
    function afterBsLastWrite(): { a: TestDevice; b: TestDevice } {
      const a = lab.device('a');
      const b = lab.device('b');
      for (let i = 0; i < 5; i++) a.store.put('memory/1', i);
      b.store.applyRemote(pushAll(a));
      b.store.put('memory/2', 'b');
      a.store.applyRemote(pushAll(b));
      return { a, b };
    }

    it("a snapshot's heads carry each writer's clock", () => {
      const { a, b } = afterBsLastWrite();
      const heads = Object.fromEntries(snapshotOf(a).heads.map((head) => [head.device_id, head.v]));
      expect(heads).toEqual({ [a.deviceId]: { [a.deviceId]: 5 }, [b.deviceId]: { [a.deviceId]: 5, [b.deviceId]: 1 } });
    });

    it('with nothing acknowledged, b\'s newest event makes a\'s events it had seen droppable', () => {
      const { a, b } = afterBsLastWrite();
      const writers = [{ deviceId: b.deviceId, seen: {} }];
      expect(a.store.snapshots.prune(coversOf(snapshotOf(a, writers)), writers)).toBe(4); // a's 1-4, superseded by 5
    });

    it('an acknowledgement older than the newest event adds to it, and does not replace it', () => {
      const { a, b } = afterBsLastWrite();
      const writers = [{ deviceId: b.deviceId, seen: { [a.deviceId]: 2 } }];
      expect(a.store.snapshots.prune(coversOf(snapshotOf(a, writers)), writers)).toBe(4);
    });

    it('an acknowledgement of events of its own not held here is set aside, and the newest event held still counts', () => {
      const { a, b } = afterBsLastWrite();
      b.store.put('memory/2', 'b again'); // not delivered to a
      const writers = [{ deviceId: b.deviceId, seen: b.store.frontier().heads }];
      expect(a.store.snapshots.prune(coversOf(snapshotOf(a, writers)), writers)).toBe(4);
      expect(a.store.floor(a.deviceId)).toBe(5);
    });
  });

  it('a head from before clocks were kept (schema 4) counts as knowing nothing, and a snapshot without writers given is one with none', () => {
    const a = lab.device('a');
    a.store.put('memory/1', 1);
    a.store.put('memory/1', 2);
    pushAll(a);
    const raw = new Database(a.path);
    raw.prepare('UPDATE heads SET clock = NULL').run();
    raw.close();
    expect(snapshotOf(a).heads.map((h) => h.v)).toEqual([{}]);
    const content = a.store.snapshots.content({ snapshotId: newSnapshotId(), createdAt: 1_000, relay: null });
    expect(content.events).toEqual(snapshotOf(a, []).events);
    expect(content.events).toHaveLength(1); // nobody else may write: the superseded first event is not needed
  });

  it("a writer's own bound never holds back its own events: they follow each other in its chain", () => {
    expect(stableThrough(['dv_a'], [{ deviceId: 'dv_a', seen: {} }], { dv_a: 3 })).toEqual(new Map([['dv_a', 3]]));
    expect(stableThrough(['dv_a'], [{ deviceId: 'dv_a', seen: {} }, { deviceId: 'dv_b', seen: { dv_a: 2 } }], { dv_a: 3 })).toEqual(new Map([['dv_a', 2]]));
  });

  it('the file shrinks once vacuumed', () => {
    const a = lab.device('a');
    for (let i = 0; i < 2_000; i++) a.store.put('memory/1', { text: 'x'.repeat(500), i });
    pushAll(a);
    const before = a.store.databaseBytes();
    a.store.snapshots.prune(coversOf(snapshotOf(a)));
    a.store.snapshots.vacuum();
    expect(a.store.databaseBytes()).toBeLessThan(before / 10);
  });
});

describe('a snapshot that was tampered with is refused', () => {
  function fixture() {
    const a = lab.device('a');
    const b = lab.device('b');
    a.store.put('memory/1', 'one');
    a.store.put('memory/2', 'two');
    b.store.put('memory/1', 'b');
    a.store.applyRemote(pushAll(b));
    return { a, content: snapshotOf(a) };
  }
  const refused = (run: () => unknown): SnapshotError => refusal(SnapshotError, run, 'the snapshot was accepted');

  it('state altered after sealing: the seal no longer holds', () => {
    const { a, content } = fixture();
    const sealed = sealSnapshot(content, a.credentials);
    const event = JSON.parse(sealed.content.events[0]!) as { payload: unknown };
    event.payload = 'forged';
    const tampered: SealedSnapshot = { ...sealed, content: { ...sealed.content, events: [canonicalJson(event), ...sealed.content.events.slice(1)] } };
    const error = refused(() => verify(tampered, a));
    expect(error.fault).toBe('bad_signature');
    expect(error.message).toMatch(/altered after it was sealed/);
  });

  it('digest altered after sealing: the seal no longer holds', () => {
    const { a, content } = fixture();
    const sealed = sealSnapshot(content, a.credentials);
    expect(refused(() => verify({ ...sealed, content: { ...sealed.content, state_digest: '0'.repeat(64) } }, a)).fault).toBe('bad_signature');
  });

  it('a seal by a key that is not a device of the motebit', () => {
    const { a, content } = fixture();
    const stranger = signingKeyFromSeed(randomSeed());
    expect(refused(() => verify(sealSnapshot(content, { deviceKey: stranger, cert: a.credentials.cert }), a)).fault).toBe('device_key_mismatch');
    expect(refused(() => verify(sealSnapshot(content, { deviceKey: a.credentials.deviceKey, cert: null }), a)).fault).toBe('bad_device_cert'); // no cert at all
    // A device of another motebit, whose certificate another identity made.
    const other = newMotebit();
    const cert = a.credentials.cert!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A'));
    expect(refused(() => verify(sealSnapshot(content, { deviceKey: a.credentials.deviceKey, cert }), a)).fault).toBe('bad_device_cert');
    expect(other.motebitId).not.toBe(content.motebit_id);
  });

  it('re-sealed by its writer but inconsistent: a state that does not fold to the digest, a vector that lies', () => {
    const { a, content } = fixture();
    // The kept events fold to another state than the sealed digest (a bug, or a member lying).
    const dropped = { ...content, events: content.events.filter((text) => !text.includes('"entity":"memory/2"')) };
    const unfolded = refused(() => verify(sealSnapshot(dropped, a.credentials), a));
    expect([unfolded.fault, unfolded.message]).toEqual(['digest', 'the state in the snapshot does not hash to its sealed digest']);
    // A vector that says a's chain ends earlier than the events it holds.
    const heads = content.heads.map((h) => (h.device_id === a.deviceId ? { ...h, seq: 1 } : h));
    // Read first, one of a's events past its first: the lie is found there whatever order the events came in
    // (read first, a's event 1 would be refused as not the head instead, its hash being another's).
    const beyond = content.events.find((text) => {
      const event = JSON.parse(text) as { device_id: string; device_seq: number };
      return event.device_id === a.deviceId && event.device_seq > 1;
    })!;
    const events = [beyond, ...content.events.filter((text) => text !== beyond)];
    const lying = refused(() => verify(sealSnapshot({ ...content, heads, events }, a.credentials), a));
    expect([lying.fault, lying.message]).toEqual(['inconsistent', `event ${(JSON.parse(beyond) as { device_seq: number }).device_seq} of ${a.deviceId} lies beyond what the snapshot covers`]);
    // A head hash that is not the event at that number.
    const wrongHash = content.heads.map((h) => (h.device_id === a.deviceId ? { ...h, hash: 'f'.repeat(64) } : h));
    const notTheHead = refused(() => verify(sealSnapshot({ ...content, heads: wrongHash }, a.credentials), a));
    expect([notTheHead.fault, notTheHead.message]).toEqual(['inconsistent', `the head of ${a.deviceId} is not the event the snapshot holds at that number`]);
    // The right hash with another Lamport time: the head is the event's, all of it.
    const wrongTime = content.heads.map((h) => (h.device_id === a.deviceId ? { ...h, lamport: h.lamport + 1 } : h));
    const notItsTime = refused(() => verify(sealSnapshot({ ...content, heads: wrongTime }, a.credentials), a));
    expect([notItsTime.fault, notItsTime.message]).toEqual(['inconsistent', `the head of ${a.deviceId} is not the event the snapshot holds at that number`]);
  });

  it('re-sealed by its writer but its conflicts lie: each field of a side, the order of the sides, a missing side or settler, an event held twice', () => {
    const { a, content } = fixture();
    expect(content.conflicts).toHaveLength(1);
    const c = content.conflicts[0]!;
    expect(verify(sealSnapshot(content, a.credentials), a).content.conflicts).toHaveLength(1); // as made, it verifies
    const lying = (conflict: Record<string, unknown>) => refused(() => verify(sealSnapshot({ ...content, conflicts: [{ ...c, ...conflict }] }, a.credentials), a));
    const mismatch = (entity: string) => `conflict ${c.event_a} / ${c.event_b} of ${entity} does not match the snapshot's events`;
    // Each field that names a side, on either side, must be that event's.
    for (const field of [
      { entity: 'memory/2' },
      { a_device: c.b_device },
      { a_seq: c.a_seq + 1 },
      { a_lamport: c.a_lamport + 1 },
      { b_device: c.a_device },
      { b_seq: c.b_seq + 1 },
      { b_lamport: c.b_lamport + 1 },
    ]) {
      const error = lying(field);
      expect([error.fault, error.message], JSON.stringify(field)).toEqual(['inconsistent', mismatch(field.entity ?? c.entity)]);
    }
    // The sides in the other order: the first must be the one that loses.
    const swapped = lying({ event_a: c.event_b, event_b: c.event_a, a_device: c.b_device, a_seq: c.b_seq, a_lamport: c.b_lamport, b_device: c.a_device, b_seq: c.a_seq, b_lamport: c.a_lamport });
    expect(swapped.fault).toBe('inconsistent');
    // One event as both sides.
    expect(lying({ event_b: c.event_a, b_device: c.a_device, b_seq: c.a_seq, b_lamport: c.a_lamport }).fault).toBe('inconsistent');
    // An open conflict whose side is not among the events.
    const sideText = content.events.find((text) => text.includes(c.event_a))!;
    const withoutSide = content.events.filter((text) => text !== sideText);
    expect(refused(() => verify(sealSnapshot({ ...content, events: withoutSide }, a.credentials), a)).message).toMatch(/does not match the snapshot's events|does not hash to its sealed digest|beyond what|is not the event/);
    // A settled conflict whose sides are here names a settler that is not.
    const settled = lying({ resolved_by: '00000000-0000-4000-8000-000000000000', resolved_lamport: c.sides_lamport + 1 });
    expect([settled.fault, settled.message]).toEqual(['inconsistent', `the event that settled a conflict of ${c.entity} is not in the snapshot`]);
    // One event held twice.
    const twice = refused(() => verify(sealSnapshot({ ...content, events: [...content.events, content.events[0]!] }, a.credentials), a));
    expect([twice.fault, twice.message]).toEqual(['inconsistent', `the snapshot holds event ${(JSON.parse(content.events[0]!) as { event_id: string }).event_id} twice`]);
  });

  it('each other refusal names what is wrong: served under another id, a signer that is not a member or whose seal fails, two heads, an event that is not one', () => {
    const { a, content } = fixture();
    const motebitId = a.store.identity.motebitId;
    const sealed = JSON.parse(JSON.stringify(sealSnapshot(content, a.credentials))) as SealedSnapshot;
    const words = (input: unknown, signer: Parameters<typeof verifySnapshot>[2] = () => null, expectedId?: string) => {
      const error = refused(() => verifySnapshot(input, motebitId, signer, expectedId));
      return [error.name, error.fault, error.message];
    };
    const otherId = newSnapshotId();
    expect(words(sealed, () => null, otherId)).toEqual(['SnapshotError', 'inconsistent', `the relay served snapshot ${content.snapshot_id} as ${otherId}`]);
    expect(verifySnapshot(sealed, motebitId, () => null, content.snapshot_id).content.snapshot_id).toBe(content.snapshot_id);
    expect(words(sealed, () => 'not_member')).toEqual(['SnapshotError', 'not_member', `the snapshot was sealed by ${a.deviceId}, which is not a device of this motebit now`]);
    expect(words(sealed, () => 'bad_device_cert')).toEqual(['SnapshotError', 'bad_device_cert', "the snapshot's seal does not hold (bad_device_cert)"]);
    const reseal = (changed: Partial<SnapshotContent>) => sealSnapshot({ ...content, ...changed }, a.credentials);
    expect(words(reseal({ heads: [...content.heads, content.heads[0]!] }))).toEqual(['SnapshotError', 'inconsistent', `the snapshot names two heads for ${content.heads[0]!.device_id}`]);
    expect(words(reseal({ events: ['{not json', ...content.events] }))).toEqual(['SnapshotError', 'malformed', 'an event of the snapshot is not JSON']);
    const malformed = words(reseal({ events: ['{"t":"not an event"}', ...content.events] }));
    expect(malformed.slice(0, 2)).toEqual(['SnapshotError', 'malformed']);
    expect(malformed[2]).toMatch(/^an event of the snapshot is malformed: /);
    const first = JSON.parse(content.events[0]!) as { event_id: string; motebit_id: string };
    const elsewhere = canonicalJson({ ...first, motebit_id: newMotebit().motebitId });
    expect(words(reseal({ events: [elsewhere, ...content.events.slice(1)] }))).toEqual(['SnapshotError', 'wrong_motebit', `event ${first.event_id} of the snapshot belongs to another motebit`]);
    const malformedSnapshot = words({ ...sealed, content: { ...sealed.content, heads: 'none' } });
    expect(malformedSnapshot[2]).toMatch(/^the snapshot is malformed: /);
  });

  it('a snapshot of another motebit, and one that is not a snapshot at all', () => {
    const { a, content } = fixture();
    const motebitId = newMotebit().motebitId;
    const error = refused(() => verifySnapshot(JSON.parse(JSON.stringify(sealSnapshot(content, a.credentials))), motebitId, () => null));
    expect([error.fault, error.message]).toEqual(['wrong_motebit', `the snapshot belongs to motebit ${content.motebit_id}, not ${motebitId}`]);
    expect(refused(() => verify({ content: { t: 'something else' }, seal: {} }, a)).fault).toBe('malformed');
    expect(refused(() => verify('not json at all', a)).fault).toBe('malformed');
  });

  it('nothing of a refused snapshot is kept', () => {
    const { a, content } = fixture();
    const joiner = lab.device('joiner');
    const sealed = sealSnapshot({ ...content, state_digest: '1'.repeat(64) }, a.credentials);
    expect(() => joiner.store.snapshots.adopt(verify(sealed, joiner), 0)).toThrow(SnapshotError);
    expect(joiner.store.snapshots.isEmpty()).toBe(true);
  });
});
