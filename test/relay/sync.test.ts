import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RunningRelay } from '../../relay/server.ts';
import type { WsServerMessage } from '../../shared/portable/relay-api.ts';
import { RelayClient, WsClient, assertContiguous, enrolledMotebit, startTestRelay, tempDir } from './support.ts';

let dir: ReturnType<typeof tempDir>;
let relay: RunningRelay;
let client: RelayClient;

beforeEach(async () => {
  dir = tempDir();
  relay = await startTestRelay(join(dir.dir, 'relay.db'));
  client = new RelayClient(relay);
});

afterEach(async () => {
  await relay.close();
  dir.cleanup();
});

describe('sync through the relay', () => {
  it('two devices: push over HTTP, pull over HTTP, live over WebSocket', async () => {
    const { devices } = await enrolledMotebit(client, 2);
    const [a, b] = devices as [NonNullable<(typeof devices)[0]>, NonNullable<(typeof devices)[1]>];
    const live = await WsClient.connect(relay.url, b, relay.audience, 0);
    await live.waitFor((m) => m.type === 'caught_up');

    const batch = a.events(3);
    const pushed = await client.push(a, batch);
    expect(pushed.status).toBe(200);
    expect(pushed.body).toMatchObject({ stored: 3, duplicate: 0, rejected: 0, head: 3 });
    expect(pushed.body.results.map((r) => (r.status === 'stored' ? r.seq : -1))).toEqual([1, 2, 3]);

    const pulled = await client.pull(b, 0);
    expect(pulled.status).toBe(200);
    expect(pulled.body).toEqual({ events: batch.map((event, i) => ({ ...event, seq: i + 1 })), next: 3, more: false, head: 3, epoch: expect.stringMatching(/^ep_/) });

    const received = await live.waitForEvents(3);
    expect(received.map((e) => e.event_id)).toEqual(batch.map((e) => e.event_id));
    expect(received.map((e) => e.body)).toEqual(batch.map((e) => e.body)); // opaque bodies come back byte for byte

    // And the other way: b pushes over the socket, a hears it live.
    const liveA = await WsClient.connect(relay.url, a, relay.audience, 3);
    await liveA.waitFor((m) => m.type === 'caught_up');
    const fromB = b.events(2);
    live.sendJson({ type: 'push', id: 'p1', events: fromB });
    const ack = await live.waitFor((m) => m.type === 'ack' && m.id === 'p1');
    expect(ack).toMatchObject({ stored: 2, duplicate: 0, rejected: 0, head: 5 });
    const heard = await liveA.waitForEvents(2);
    expect(heard.map((e) => [e.event_id, e.seq])).toEqual([
      [fromB[0]?.event_id, 4],
      [fromB[1]?.event_id, 5],
    ]);
    await live.close();
    await liveA.close();
  });

  it('ten devices: everything written by any reaches all, once, in seq order, and resumes from the cursor', async () => {
    const { devices } = await enrolledMotebit(client, 10);
    const sockets = await Promise.all(devices.map((device) => WsClient.connect(relay.url, device, relay.audience, 0)));
    await Promise.all(sockets.map((s) => s.waitFor((m) => m.type === 'caught_up')));

    // Every device pushes 3 batches of 4 events, half of them over HTTP, half over its socket, concurrently.
    await Promise.all(
      devices.map(async (device, index) => {
        for (let round = 0; round < 3; round++) {
          const events = device.events(4);
          if (index % 2 === 0) {
            const answer = await client.push(device, events);
            expect(answer.body.stored).toBe(4);
          } else {
            const socket = sockets[index];
            if (!socket) throw new Error('no socket');
            socket.sendJson({ type: 'push', id: `r${round}`, events });
            const ack = await socket.waitFor((m) => m.type === 'ack' && m.id === `r${round}`);
            expect(ack).toMatchObject({ stored: 4 });
          }
        }
      }),
    );
    const total = 10 * 3 * 4;
    const log = await client.pullAll(devices[0]!, 0, 7); // small pages: pagination too
    expect(log).toHaveLength(total);
    expect(assertContiguous(log)).toBe(true);
    expect(new Set(log.map((e) => e.event_id)).size).toBe(total);

    for (const socket of sockets) {
      const received = await socket.waitForEvents(total);
      expect(received.map((e) => e.event_id)).toEqual(log.map((e) => e.event_id));
    }

    // Device 3 drops its socket half-way through its own cursor, more is written meanwhile, it reconnects.
    const dropped = sockets[3]!;
    await dropped.close();
    const cursor = 50; // what it had applied when it dropped
    const more = devices[0]!.events(5);
    expect((await client.push(devices[0]!, more)).body.stored).toBe(5);
    const again = await WsClient.connect(relay.url, devices[3]!, relay.audience, cursor);
    const resumed = await again.waitForEvents(total + 5 - cursor);
    await again.waitFor((m) => m.type === 'caught_up');
    expect(resumed.map((e) => e.seq)).toEqual(Array.from({ length: total + 5 - cursor }, (_, i) => cursor + 1 + i));
    expect(resumed.slice(-5).map((e) => e.event_id)).toEqual(more.map((e) => e.event_id));
    const caughtUp = again.messages.find((m): m is Extract<WsServerMessage, { type: 'caught_up' }> => m.type === 'caught_up');
    expect(caughtUp?.seq).toBe(total + 5);
    await Promise.all([...sockets.filter((s) => s !== dropped), again].map((s) => s.close()));
  });

  it('a retried batch stores nothing twice and returns the same sequence numbers', async () => {
    const { devices } = await enrolledMotebit(client, 2);
    const [a, b] = devices as [NonNullable<(typeof devices)[0]>, NonNullable<(typeof devices)[1]>];
    await client.push(b, b.events(2)); // someone else's events first, so seqs are not just 1..n
    const batch = a.events(4);
    const first = await client.push(a, batch);
    expect(first.body).toMatchObject({ stored: 4, duplicate: 0, head: 6 });
    const seqs = first.body.results.map((r) => ('seq' in r ? r.seq : null));
    expect(seqs).toEqual([3, 4, 5, 6]);

    // The retry carries a different ciphertext for the same event ids (re-encrypted), plus one new event.
    const retried = batch.map((event) => ({ ...event, body: `${event.body}AAAA` }));
    const extra = a.events(1);
    const second = await client.push(a, [...retried, ...extra]);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ stored: 1, duplicate: 4, rejected: 0, head: 7 });
    expect(second.body.results.map((r) => ('seq' in r ? [r.status, r.seq] : r.status))).toEqual([
      ['duplicate', 3],
      ['duplicate', 4],
      ['duplicate', 5],
      ['duplicate', 6],
      ['stored', 7],
    ]);
    // First version kept.
    const log = await client.pullAll(b);
    expect(log.slice(2, 6).map((e) => e.body)).toEqual(batch.map((e) => e.body));

    // Within one batch the same event twice is stored once.
    const twice = a.events(1);
    const dup = await client.push(a, [twice[0]!, twice[0]!]);
    expect(dup.body.results).toEqual([
      { event_id: twice[0]!.event_id, status: 'stored', seq: 8 },
      { event_id: twice[0]!.event_id, status: 'duplicate', seq: 8 },
    ]);
  });

  it('rejects, per event and honestly counted, a taken event id, a forked device_seq and a gap in a writer\'s events', async () => {
    const { devices } = await enrolledMotebit(client, 2);
    const [a, b] = devices as [NonNullable<(typeof devices)[0]>, NonNullable<(typeof devices)[1]>];
    const [fromB] = b.events(1);
    await client.push(b, [fromB!]);
    const [ok, forked, third] = a.events(3);
    const answer = await client.push(a, [
      { ...fromB!, event_id: crypto.randomUUID() }, // another event at b's device_seq 1
      { ...fromB!, device_id: a.deviceId, device_seq: 99 }, // b's event id, claimed by a
      ok!,
      { ...forked!, device_seq: ok!.device_seq }, // a second event at the same device_seq
      third!, // a's device_seq 3 while 2 is not stored
    ]);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ stored: 1, duplicate: 0, rejected: 4, head: 2 });
    expect(answer.body.results.map((r) => (r.status === 'rejected' ? r.reason : r.status))).toEqual(['device_seq_conflict', 'event_id_taken', 'stored', 'device_seq_conflict', 'device_seq_gap']);
    expect((await client.pullAll(b)).map((e) => e.event_id)).toEqual([fromB!.event_id, ok!.event_id]);
  });

  it('a member may push another device\'s events (re-seeding a relay that lost them), stored gap-free per writer', async () => {
    const { devices } = await enrolledMotebit(client, 3);
    const [a, b, c] = devices as [NonNullable<(typeof devices)[0]>, NonNullable<(typeof devices)[1]>, NonNullable<(typeof devices)[2]>];
    const ofB = b.events(3);
    const answer = await client.push(a, ofB); // a holds b's events; b may be gone for good
    expect(answer.body).toMatchObject({ stored: 3, rejected: 0, head: 3 });
    // b itself, or another member, sending them again finds them there: duplicates with the same seqs.
    expect((await client.push(b, ofB)).body).toMatchObject({ stored: 0, duplicate: 3 });
    expect((await client.push(c, ofB.slice(1))).body).toMatchObject({ stored: 0, duplicate: 2 });
    const frontier = await client.send({ method: 'GET', path: `/v1/motebits/${a.motebit.motebitId}/frontier` }, a.token(relay.audience, { method: 'GET', path: `/v1/motebits/${a.motebit.motebitId}/frontier` }));
    expect(frontier.status).toBe(200);
    expect(frontier.body).toEqual({ epoch: expect.stringMatching(/^ep_/), head: 3, devices: [{ device_id: b.deviceId, seq: 3 }], at: null });
    const atPath = `/v1/motebits/${a.motebit.motebitId}/frontier?at=2`;
    const at = await client.send<{ at: unknown }>({ method: 'GET', path: atPath }, a.token(relay.audience, { method: 'GET', path: atPath }));
    expect(at.body.at).toEqual({ seq: 2, event_id: ofB[1]!.event_id });
  });

  it('a restart on the same database loses nothing and keeps cursors valid', async () => {
    const dbPath = join(dir.dir, 'restart.db');
    let first = await startTestRelay(dbPath);
    let c = new RelayClient(first);
    const { devices } = await enrolledMotebit(c, 2);
    const [a, b] = devices as [NonNullable<(typeof devices)[0]>, NonNullable<(typeof devices)[1]>];
    const batch = a.events(10);
    await c.push(a, batch);
    const before = await c.pull(b, 0, 4);
    expect(before.body.next).toBe(4);
    await first.close();

    // Same database, new port: tokens name the new audience; enrolment, events and cursors are all there.
    first = await startTestRelay(dbPath);
    c = new RelayClient(first);
    try {
      const after = await c.pullAll(b, before.body.next);
      expect(after.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10]);
      expect([...before.body.events, ...after].map((e) => e.event_id)).toEqual(batch.map((e) => e.event_id));
      const more = await c.push(b, b.events(1));
      expect(more.body.results[0]).toMatchObject({ status: 'stored', seq: 11 });
      // The retry after the restart is still a duplicate with the same seq.
      expect((await c.push(a, batch.slice(0, 1))).body.results[0]).toMatchObject({ status: 'duplicate', seq: 1 });
      const socket = await WsClient.connect(first.url, a, first.audience, 10);
      expect((await socket.waitForEvents(1))[0]?.seq).toBe(11);
      await socket.close();
    } finally {
      await first.close();
    }
  });
});
