// Snapshots, signed acknowledgements and compaction over real HTTP (docs/protocol.md §7, "Snapshots and
// compaction"): the device's RelayClient against a real relay on 127.0.0.1 (SQLite, or PostgreSQL in the
// postgres project), a real TCP proxy to cut the network mid-upload, real signatures.
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { CHUNK, blob, publish, push } from './snapshot-support.ts';
import { pino } from 'pino';
import { RelayClient } from '../../main/sync/relay-client.ts';
import { TransportError } from '../../main/sync/transport.ts';
import { errorWords } from '../../main/app/error-words.ts';
import { coversAll, signAck, verifyAck } from '../../shared/ack.ts';
import { fromBase64Url } from '../../shared/encoding.ts';
import { newSnapshotId } from '../../shared/ids.ts';
import { MAX_SNAPSHOT_CHUNK_BYTES } from '../../shared/portable/relay-api.ts';
import { startCuttableProxy } from '../support/cuttable-proxy.ts';
import { deviceOptions, harnesses, rejection, type Harness } from '../sync/support.ts';
import { WsClient, enrolledMotebit, type TestDevice } from './support.ts';

const h = harnesses();
afterEach(() => h.cleanup());

const clientOf = (harness: Harness, device: TestDevice, via?: string) => new RelayClient(deviceOptions(harness.relay, device, via));

/** Every event a pull from 0 returns, following `next`. */
async function pullAll(client: RelayClient) {
  const seqs: number[] = [];
  for (let after = 0; ; ) {
    const page = await client.pull(after, 2);
    seqs.push(...page.events.map((e) => e.seq));
    after = page.next;
    if (!page.more) return { seqs, next: page.next, head: page.head };
  }
}

describe('snapshot upload and download', () => {
  it('uploads in chunks, is cut off mid-upload and resumes where it was, then another device downloads it', async () => {
    const harness = await h.start(2);
    const [a, b] = harness.devices as [TestDevice, TestDevice];
    const proxy = await startCuttableProxy(harness.relay.url);
    h.defer(() => proxy.close());
    const viaProxy = clientOf(harness, a, proxy.url);
    const snapshot = blob(3 * CHUNK + 1234, { [a.deviceId]: 1 });
    expect(snapshot.chunks.map((c) => c.length)).toEqual([CHUNK, CHUNK, CHUNK, 1234]);
    expect(await viaProxy.beginSnapshot(snapshot.begin)).toEqual({ snapshot_id: snapshot.begin.snapshot_id, complete: false, received: [] });
    expect(await viaProxy.putSnapshotChunk(snapshot.begin.snapshot_id, 0, snapshot.chunks[0]!)).toBe(1);
    expect(await viaProxy.putSnapshotChunk(snapshot.begin.snapshot_id, 2, snapshot.chunks[2]!)).toBe(2);
    // The network goes: the next chunk fails as a network failure, not as anything stored.
    proxy.refuse(true);
    proxy.cut();
    expect(await rejection(viaProxy.putSnapshotChunk(snapshot.begin.snapshot_id, 1, snapshot.chunks[1]!))).toMatchObject({ kind: 'network' });
    // It comes back (a new client, as after a restart): the same begin says which chunks the relay holds.
    proxy.refuse(false);
    const again = clientOf(harness, a, proxy.url);
    expect(await again.beginSnapshot(snapshot.begin)).toEqual({ snapshot_id: snapshot.begin.snapshot_id, complete: false, received: [0, 2] });
    expect(await rejection(again.commitSnapshot(snapshot.begin.snapshot_id))).toMatchObject({ kind: 'refused', code: 'snapshot_incomplete', message: expect.stringContaining('2 chunks are still missing') as unknown });
    expect(await again.putSnapshotChunk(snapshot.begin.snapshot_id, 1, snapshot.chunks[1]!)).toBe(3);
    // Re-sending a chunk the relay holds, with the same bytes, is fine.
    expect(await again.putSnapshotChunk(snapshot.begin.snapshot_id, 2, snapshot.chunks[2]!)).toBe(3);
    expect(await again.putSnapshotChunk(snapshot.begin.snapshot_id, 3, snapshot.chunks[3]!)).toBe(4);
    const info = await again.commitSnapshot(snapshot.begin.snapshot_id);
    expect(info).toMatchObject({ snapshot_id: snapshot.begin.snapshot_id, device_id: a.deviceId, size: snapshot.begin.size, sha256: snapshot.begin.sha256, chunk_bytes: CHUNK, chunks: 4, covers: snapshot.begin.covers });
    expect(await again.beginSnapshot(snapshot.begin)).toEqual({ snapshot_id: snapshot.begin.snapshot_id, complete: true, received: [0, 1, 2, 3] });

    // b finds it and downloads it; a download cut off resumes by fetching the chunks still missing.
    const reader = clientOf(harness, b, proxy.url);
    const latest = await reader.latestSnapshot();
    expect(latest.snapshot).toEqual(info);
    const got = new Map<number, Buffer>();
    got.set(0, await reader.snapshotChunk(info.snapshot_id, 0));
    got.set(3, await reader.snapshotChunk(info.snapshot_id, 3));
    proxy.refuse(true);
    proxy.cut();
    expect(await rejection(reader.snapshotChunk(info.snapshot_id, 1))).toMatchObject({ kind: 'network' });
    proxy.refuse(false);
    for (let i = 0; i < info.chunks; i++) if (!got.has(i)) got.set(i, await reader.snapshotChunk(info.snapshot_id, i));
    const whole = Buffer.concat([0, 1, 2, 3].map((i) => got.get(i)!));
    expect(whole.equals(snapshot.bytes)).toBe(true);
    expect(createHash('sha256').update(whole).digest('hex')).toBe(info.sha256);
    expect(await rejection(reader.snapshotChunk(info.snapshot_id, 4))).toMatchObject({ kind: 'refused', code: 'not_found' });
  });

  it('keeps the two newest snapshots, and discards an upload whose bytes do not match its hash', async () => {
    const harness = await h.start(1);
    const a = clientOf(harness, harness.devices[0]!);
    const made = [];
    for (let i = 1; i <= 3; i++) made.push(await publish(a, blob(1000, { [a.deviceId]: i })));
    expect((await a.latestSnapshot()).snapshot).toEqual(made[2]);
    expect(await rejection(a.snapshotChunk(made[0]!.snapshot_id, 0))).toMatchObject({ code: 'not_found' });
    expect((await a.snapshotChunk(made[1]!.snapshot_id, 0)).length).toBe(1000);

    const forged = blob(2 * CHUNK, { [a.deviceId]: 9 });
    await a.beginSnapshot(forged.begin);
    await a.putSnapshotChunk(forged.begin.snapshot_id, 0, forged.chunks[0]!);
    await a.putSnapshotChunk(forged.begin.snapshot_id, 1, Buffer.alloc(CHUNK, 1)); // the right length, other bytes
    const mismatch = await rejection(a.commitSnapshot(forged.begin.snapshot_id));
    expect(mismatch).toMatchObject({ kind: 'refused', code: 'snapshot_mismatch' });
    // Discarded: nothing of it is held, and the latest is still the last good one.
    expect(await a.beginSnapshot(forged.begin)).toMatchObject({ complete: false, received: [] });
    expect((await a.latestSnapshot()).snapshot).toEqual(made[2]);
    // A person reads what happened, not a code.
    const words = errorWords(mismatch);
    expect(words.message).toBe('the snapshot the relay received is not the one this device sent, so the relay discarded it');
    expect(`${words.message} ${words.nextStep}`).not.toMatch(/snapshot_|sha256|\/v1\//);
  });

  it('lets only the device that began an upload write and commit it, and refuses a revoked device', async () => {
    const harness = await h.start(3);
    const [a, b, c] = harness.devices.map((d) => clientOf(harness, d)) as [RelayClient, RelayClient, RelayClient];
    const snapshot = blob(CHUNK + 10, { [a.deviceId]: 1 });
    await a.beginSnapshot(snapshot.begin);
    await a.putSnapshotChunk(snapshot.begin.snapshot_id, 0, snapshot.chunks[0]!);
    expect(await rejection(b.putSnapshotChunk(snapshot.begin.snapshot_id, 1, snapshot.chunks[1]!))).toMatchObject({ kind: 'refused', code: 'snapshot_conflict' });
    expect(await rejection(b.commitSnapshot(snapshot.begin.snapshot_id))).toMatchObject({ kind: 'refused', code: 'snapshot_conflict' });
    expect(await rejection(b.beginSnapshot(snapshot.begin))).toMatchObject({ kind: 'refused', code: 'snapshot_conflict' });
    // a's own begin with other fields under the same id is refused too; the upload is as it was.
    expect(await rejection(a.beginSnapshot({ ...snapshot.begin, covers: { [a.deviceId]: 2 } }))).toMatchObject({ code: 'snapshot_conflict' });
    expect(await a.beginSnapshot(snapshot.begin)).toMatchObject({ received: [0] });
    // A chunk held with other bytes is refused, not replaced.
    expect(await rejection(a.putSnapshotChunk(snapshot.begin.snapshot_id, 0, Buffer.alloc(CHUNK)))).toMatchObject({ code: 'snapshot_conflict' });
    // Nobody downloads an upload: it is no snapshot yet.
    expect(await rejection(b.snapshotChunk(snapshot.begin.snapshot_id, 0))).toMatchObject({ code: 'not_found' });

    await harness.client.revoke(harness.motebit, c.deviceId);
    const calls = [() => c.beginSnapshot(blob(10, { [c.deviceId]: 1 }).begin), () => c.latestSnapshot(), () => c.postAck({ [a.deviceId]: 1 }), () => c.snapshotChunk(snapshot.begin.snapshot_id, 0)];
    for (const call of calls) expect(await rejection(call())).toMatchObject({ kind: 'auth', code: 'revoked_device' });
    await a.putSnapshotChunk(snapshot.begin.snapshot_id, 1, snapshot.chunks[1]!);
    expect((await a.commitSnapshot(snapshot.begin.snapshot_id)).snapshot_id).toBe(snapshot.begin.snapshot_id);
  });

  it('refuses bad input with a clear 4xx that says what is wrong, and keeps serving', async () => {
    const harness = await h.start(2);
    const [da, db] = harness.devices as [TestDevice, TestDevice];
    const a = clientOf(harness, da);
    const snapshot = blob(2 * CHUNK + 5, { [da.deviceId]: 1 });
    await a.beginSnapshot(snapshot.begin);
    const id = snapshot.begin.snapshot_id;
    const base = `/v1/motebits/${harness.motebit.motebitId}/snapshots`;
    const send = (method: string, path: string, body?: string) => harness.client.send<{ error: { code: string; message: string } }>({ method, path, ...(body === undefined ? {} : { body }) }, da.token(harness.relay.audience, { method, path, ...(body === undefined ? {} : { body }) }));
    const refusal = async (answer: ReturnType<typeof send>) => {
      const { status, body } = await answer;
      return { status, code: body.error?.code, message: body.error?.message };
    };
    const chunk = (data: unknown) => JSON.stringify({ data });

    // Ids and indexes in the path: no such endpoint.
    for (const path of [`${base}/sn_short/chunks/0`, `${base}/${id}/chunks/01`, `${base}/${id}/chunks/100000`, `${base}/${id}/chunks/-1`, `${base}/${id}/commit/x`]) {
      expect(await refusal(send('POST', path, '{}')), path).toMatchObject({ status: 404, code: 'not_found' });
    }
    // Begins that fail their schema: each message names what is wrong.
    const badBegins: [unknown, RegExp][] = [
      [{ ...snapshot.begin, snapshot_id: 'sn_nope' }, /snapshot id is sn_ followed by 22/],
      [{ ...snapshot.begin, size: 0 }, /size/],
      [{ ...snapshot.begin, chunk_bytes: 1000 }, /chunk_bytes/],
      [{ ...snapshot.begin, sha256: 'ABC' }, /SHA-256 is 64 lowercase hex/],
      [{ ...snapshot.begin, covers: {} }, /covers names 1 to 1024 writers/],
      [{ ...snapshot.begin, covers: { nobody: 1 } }, /covers names each writer by its device id[^]*covers\.nobody/],
      [{ ...snapshot.begin, covers: { [da.deviceId]: 0 } }, /covers/],
      [{ ...snapshot.begin, size: 100_000 * CHUNK + 1 }, /at most 100000 chunks/],
      [{ ...snapshot.begin, extra: true }, /extra/],
    ];
    for (const [body, message] of badBegins) expect(await refusal(send('POST', base, JSON.stringify(body)))).toMatchObject({ status: 400, code: 'bad_request', message: expect.stringMatching(message) as unknown });
    // Chunks: too long, too short, the last one's remainder, out of range, not base64url.
    const b64 = (bytes: number) => randomBytes(bytes).toString('base64url');
    expect(await refusal(send('POST', `${base}/${id}/chunks/0`, chunk(b64(CHUNK + 1))))).toEqual({ status: 400, code: 'bad_request', message: `chunk 0 is ${CHUNK} bytes long; this one is ${CHUNK + 1}` });
    expect(await refusal(send('POST', `${base}/${id}/chunks/1`, chunk(b64(CHUNK - 1))))).toEqual({ status: 400, code: 'bad_request', message: `chunk 1 is ${CHUNK} bytes long; this one is ${CHUNK - 1}` });
    expect(await refusal(send('POST', `${base}/${id}/chunks/2`, chunk(b64(CHUNK))))).toEqual({ status: 400, code: 'bad_request', message: `chunk 2 is 5 bytes long; this one is ${CHUNK}` });
    expect(await refusal(send('POST', `${base}/${id}/chunks/3`, chunk(b64(5))))).toEqual({ status: 400, code: 'bad_request', message: 'this snapshot has 3 chunks, numbered 0 to 2' });
    for (const data of ['not base64!', 'QUJD=', 'QUI', 'A', 42]) expect(await refusal(send('POST', `${base}/${id}/chunks/2`, chunk(data))), String(data)).toMatchObject({ status: 400, code: 'bad_request' });
    expect(await refusal(send('POST', `${base}/${newSnapshotId()}/chunks/0`, chunk(b64(5))))).toMatchObject({ status: 404, code: 'not_found', message: expect.stringContaining('begin it again') as unknown });
    expect(await refusal(send('POST', `${base}/${id}/commit`, '{"now":true}'))).toMatchObject({ status: 400, code: 'bad_request' });
    expect(await refusal(send('GET', `${base}/latest?x=1`))).toMatchObject({ status: 400, code: 'bad_request' });
    // Acknowledgements: a signature by another key, over other content, or not a signature at all.
    const acks = `/v1/motebits/${harness.motebit.motebitId}/acks`;
    const covers = { [da.deviceId]: 1 };
    const at = Date.now();
    const bySomeoneElse = signAck(db.key, { motebitId: harness.motebit.motebitId, deviceId: da.deviceId, covers, at });
    const overOther = signAck(da.key, { motebitId: harness.motebit.motebitId, deviceId: da.deviceId, covers: { [da.deviceId]: 2 }, at });
    for (const sig of [bySomeoneElse, overOther]) {
      expect(await refusal(send('POST', acks, JSON.stringify({ covers, at, sig })))).toEqual({ status: 400, code: 'bad_request', message: "the acknowledgement's signature does not verify with this device's key" });
    }
    expect(await refusal(send('POST', acks, JSON.stringify({ covers, at, sig: 'short' })))).toMatchObject({ status: 400, code: 'bad_request', message: expect.stringMatching(/signature is 64 bytes/) as unknown });
    expect(await refusal(send('POST', acks, JSON.stringify({ covers, at: -1, sig: bySomeoneElse })))).toMatchObject({ status: 400, code: 'bad_request' });
    expect((await a.latestSnapshot()).acks).toEqual([]);

    // Still serving: the upload completes, a proper acknowledgement is taken.
    expect(await harness.client.healthy()).toBe(true);
    for (const [i, data] of snapshot.chunks.entries()) await a.putSnapshotChunk(id, i, data);
    expect((await a.commitSnapshot(id)).chunks).toBe(3);
    await a.postAck(covers, at);
    expect((await a.latestSnapshot()).acks).toEqual([{ device_id: da.deviceId, covers, at, sig: expect.any(String) as unknown }]);
  });

  it('takes and serves the largest chunk (1 MiB) within the default request cap', async () => {
    const harness = await h.start(1);
    const a = clientOf(harness, harness.devices[0]!);
    const snapshot = blob(MAX_SNAPSHOT_CHUNK_BYTES + 1, { [a.deviceId]: 1 }, MAX_SNAPSHOT_CHUNK_BYTES);
    expect((await publish(a, snapshot)).chunks).toBe(2);
    expect((await a.snapshotChunk(snapshot.begin.snapshot_id, 0)).equals(snapshot.chunks[0]!)).toBe(true);
  });

  it('refuses a snapshot above the size limit as a quota, in words', async () => {
    const harness = await h.start(1, { maxSnapshotBytes: 200_000 });
    const a = clientOf(harness, harness.devices[0]!);
    const refused = await rejection(a.beginSnapshot(blob(200_001, { [a.deviceId]: 1 }).begin));
    expect(refused).toBeInstanceOf(TransportError);
    expect(refused).toMatchObject({ kind: 'refused', code: 'quota_exceeded', quota: 'snapshot_bytes' });
    expect(errorWords(refused)).toMatchObject({ kind: 'relay', message: "the relay refused this motebit's snapshot as bigger than it keeps (snapshot size limit)" });
    expect((await a.latestSnapshot()).snapshot).toBeNull();
    // At the limit it is taken.
    expect((await publish(a, blob(200_000, { [a.deviceId]: 1 }))).size).toBe(200_000);
  });
});

describe('acknowledgements and compaction', () => {
  it('compacts only once every live device acknowledged the snapshot, and never what a device still needs', async () => {
    const lines: { msg: string; motebit_id?: string; dropped?: number; bytes_freed?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as (typeof lines)[0]) });
    const harness = await h.start(3, { logger });
    const [da, db, dc] = harness.devices as [TestDevice, TestDevice, TestDevice];
    const [a, b, c] = harness.devices.map((d) => clientOf(harness, d)) as [RelayClient, RelayClient, RelayClient];
    // Another motebit on the same relay, with its own events, its own snapshot and its own acknowledgement.
    const { devices: otherDevices } = await enrolledMotebit(harness.client, 1);
    const other = clientOf(harness, otherDevices[0]!);
    await push(other, otherDevices[0]!, 4);
    await publish(other, blob(100, { [otherDevices[0]!.deviceId]: 4 }));
    await other.postAck({ [otherDevices[0]!.deviceId]: 4 });

    // a1..a4 at seqs 1..4, b1..b3 at 5..7, c1..c2 at 8..9.
    await push(a, da, 4);
    await push(b, db, 3);
    await push(c, dc, 2);
    const covers = { [da.deviceId]: 3, [db.deviceId]: 2 };
    const snapshot = await publish(a, blob(5000, covers));
    await a.postAck({ [da.deviceId]: 4, [db.deviceId]: 3, [dc.deviceId]: 2 });
    // b acknowledges less than the snapshot covers: b may still need b2, so nothing goes.
    await b.postAck({ [da.deviceId]: 3, [db.deviceId]: 1 });
    expect((await a.frontier()).floors).toBeUndefined();
    // c has acknowledged nothing: it blocks compaction.
    await b.postAck({ [da.deviceId]: 4, [db.deviceId]: 3, [dc.deviceId]: 2 });
    expect((await a.frontier()).floors).toBeUndefined();
    expect((await pullAll(b)).seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const compactions = () => lines.filter((l) => l.msg === 'log compacted' && l.motebit_id === harness.motebit.motebitId);
    expect(compactions()).toEqual([]);

    // c acknowledges: every live device holds what the snapshot covers, so a1..a3 and b1..b2 (seqs 1-3, 5-6) go.
    await c.postAck({ [da.deviceId]: 3, [db.deviceId]: 2, [dc.deviceId]: 2 });
    const frontier = await c.frontier(1);
    expect(frontier.floors).toEqual(covers);
    expect(frontier.devices).toEqual(expect.arrayContaining([{ device_id: da.deviceId, seq: 4 }, { device_id: db.deviceId, seq: 3 }, { device_id: dc.deviceId, seq: 2 }]));
    expect(frontier.at?.event_id).toEqual(expect.any(String)); // a compacted seq still names its event
    const left = await pullAll(c);
    expect(left).toEqual({ seqs: [4, 7, 8, 9], next: 9, head: 9 });
    // One line per compaction: the motebit, how many events, how many bytes; no bodies.
    expect(compactions()).toEqual([expect.objectContaining({ dropped: 5, bytes_freed: 5 * Buffer.alloc(200).toString('base64url').length })]);
    expect(JSON.stringify(lines)).not.toMatch(/"body"|"events"/);
    // A pull after a cursor inside the compacted range returns what is left; a retried push answers duplicate.
    expect((await b.pull(1)).events.map((e) => e.seq)).toEqual([4, 7, 8, 9]);
    // The acknowledgements are served, and each is signed by its device's key.
    const latest = await b.latestSnapshot();
    expect(latest.snapshot).toEqual(snapshot);
    const keys = new Map((await b.listDevices()).map((d) => [d.device_id, fromBase64Url(d.key)]));
    expect(latest.acks.map((ack) => ack.device_id).sort()).toEqual([da.deviceId, db.deviceId, dc.deviceId].sort());
    for (const ack of latest.acks) expect(verifyAck(keys.get(ack.device_id)!, { motebitId: harness.motebit.motebitId, deviceId: ack.device_id, covers: ack.covers, at: ack.at }, ack.sig)).toBe(true);
    expect(latest.acks.every((ack) => coversAll(ack.covers, latest.snapshot!.covers))).toBe(true);

    // A revoked device's acknowledgement is no longer listed: it no longer justifies anything.
    await harness.client.revoke(harness.motebit, dc.deviceId);
    expect((await b.latestSnapshot()).acks.map((ack) => ack.device_id).sort()).toEqual([da.deviceId, db.deviceId].sort());

    // The other motebit: its own compaction only, its events and snapshot its own.
    expect((await other.frontier()).floors).toEqual({ [otherDevices[0]!.deviceId]: 4 });
    expect((await other.latestSnapshot()).snapshot?.covers).toEqual({ [otherDevices[0]!.deviceId]: 4 });
    expect(await rejection(other.snapshotChunk(snapshot.snapshot_id, 0))).toMatchObject({ code: 'not_found' });
  });

  it('a device that never acknowledges blocks compaction; once it is revoked, the next acknowledgement lets it happen', async () => {
    const harness = await h.start(3);
    const [da, db, dc] = harness.devices as [TestDevice, TestDevice, TestDevice];
    const [a, b] = [clientOf(harness, da), clientOf(harness, db)];
    // b1 at seq 1, then a1..a5 at seqs 2..6: once compacted, the log ends in stubs.
    await push(b, db, 1);
    const events = await push(a, da, 5);
    await publish(a, blob(100, { [da.deviceId]: 5 }));
    const all = { [da.deviceId]: 5, [db.deviceId]: 1 };
    await a.postAck(all, 1000);
    await b.postAck(all, 1000);
    expect((await a.frontier()).floors).toBeUndefined();
    // A socket that connects now still gets every event.
    const early = await WsClient.connect(harness.relay.url, db, harness.relay.audience);
    await early.waitFor((m) => m.type === 'caught_up');
    expect(early.events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    await early.close();

    await harness.client.revoke(harness.motebit, dc.deviceId);
    // Revoking is not an acknowledgement: nothing happens until the next one.
    expect((await a.frontier()).floors).toBeUndefined();
    // An older or equal acknowledgement changes nothing and runs nothing.
    await a.postAck(all, 1000);
    expect((await a.frontier()).floors).toBeUndefined();
    await a.postAck(all, 1001);
    expect((await a.frontier()).floors).toEqual({ [da.deviceId]: 5 });
    expect(await pullAll(b)).toEqual({ seqs: [1], next: 6, head: 6 });
    // The revoked device's acknowledgement (it had none) is not listed; the live ones are.
    expect((await b.latestSnapshot()).acks.map((ack) => ack.device_id).sort()).toEqual([da.deviceId, db.deviceId].sort());
    // A retried push of a compacted event answers duplicate with its original seq.
    expect((await a.push(events.slice(0, 2))).results).toEqual([
      { event_id: events[0]!.event_id, status: 'duplicate', seq: 2 },
      { event_id: events[1]!.event_id, status: 'duplicate', seq: 3 },
    ]);
    // A socket that connects from 0 now gets what is left, and is caught up at the head, past the stubs; live events follow.
    const late = await WsClient.connect(harness.relay.url, db, harness.relay.audience);
    expect(await late.waitFor((m) => m.type === 'caught_up')).toEqual({ type: 'caught_up', seq: 6 });
    expect(late.events.map((e) => e.seq)).toEqual([1]);
    await push(a, da, 1);
    expect((await late.waitForEvents(2)).map((e) => e.seq)).toEqual([1, 7]);
    await late.close();
  });
});
